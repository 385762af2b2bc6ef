package io.hsmbridge.client;

import io.hsmbridge.protocol.ErrorCode;

/**
 * A failed hsmbridge request, carrying the protocol's stable {@link ErrorCode}.
 *
 * <p>{@link #getMessage()} is always one line of the form {@code "<ERROR_NAME>: <detail>"} and never
 * holds key material or PINs: the detail comes from the server's already-sanitised message or from
 * the client's own transport state.
 */
public final class HsmBridgeException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private static final int MAX_DETAIL = 300;

  private final ErrorCode code;

  public HsmBridgeException(ErrorCode code, String detail) {
    this(code, detail, null);
  }

  public HsmBridgeException(ErrorCode code, String detail, Throwable cause) {
    super(format(code, detail), cause);
    this.code = code;
  }

  /** Builds the exception for a TCP-bridge {@code err} frame's fields; any field may be null. */
  public static HsmBridgeException fromFailure(Integer failureCode, String failureType, String message) {
    ErrorCode code;
    if ("TIMEOUT".equals(failureType)) {
      code = ErrorCode.TIMEOUT;
    } else if ("NO_HANDLERS".equals(failureType)) {
      code = ErrorCode.NO_HSM_AVAILABLE;
    } else if (failureCode == null) {
      code = ErrorCode.INTERNAL;
    } else {
      code = ErrorCode.fromCode(failureCode);
    }
    return new HsmBridgeException(code, message);
  }

  /** The stable error code. */
  public ErrorCode code() {
    return code;
  }

  private static String format(ErrorCode code, String detail) {
    String d = detail == null ? "" : oneLine(detail);
    // The server already sends "<NAME>: detail"; do not repeat the name.
    if (d.startsWith(code.name() + ":")) {
      d = d.substring(code.name().length() + 1).trim();
    }
    if (d.isEmpty()) {
      d = code.summary();
    }
    if (d.length() > MAX_DETAIL) {
      d = d.substring(0, MAX_DETAIL) + "...";
    }
    return code.name() + ": " + d;
  }

  private static String oneLine(String s) {
    StringBuilder b = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      b.append(Character.isISOControl(c) ? ' ' : c);
    }
    return b.toString().trim();
  }
}
