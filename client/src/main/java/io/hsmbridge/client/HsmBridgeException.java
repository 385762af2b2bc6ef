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

  /** Codes after which the same request may succeed later (a mutation with the same requestId). */
  private static final java.util.Set<ErrorCode> RETRYABLE = java.util.EnumSet.of(ErrorCode.TIMEOUT,
      ErrorCode.NO_HSM_AVAILABLE, ErrorCode.HSM_NOT_READY, ErrorCode.TOKEN_UNAVAILABLE,
      ErrorCode.SESSION_POOL_EXHAUSTED, ErrorCode.KEY_AVAILABILITY, ErrorCode.OUTCOME_UNKNOWN);

  private final ErrorCode code;
  private final boolean connectionLost;

  public HsmBridgeException(ErrorCode code, String detail) {
    this(code, detail, null);
  }

  public HsmBridgeException(ErrorCode code, String detail, Throwable cause) {
    this(code, detail, cause, false);
  }

  private HsmBridgeException(ErrorCode code, String detail, Throwable cause, boolean connectionLost) {
    super(format(code, detail), cause);
    this.code = code;
    this.connectionLost = connectionLost;
  }

  /**
   * A failure of this client's connection, not an answer of the cluster: no front door could be reached, or
   * the connection broke (with the request in flight: {@code OUTCOME_UNKNOWN}).
   */
  public static HsmBridgeException connectionLost(ErrorCode code, String detail, Throwable cause) {
    return new HsmBridgeException(code, detail, cause, true);
  }

  /**
   * True when the client lost (or could not make) its connection to the cluster; false when the cluster
   * answered, e.g. {@code NO_HSM_AVAILABLE} from a front door that has no HSM serving.
   */
  public boolean isConnectionLost() {
    return connectionLost;
  }

  /**
   * True when sending the same request again later may succeed: the cluster or the connection was not
   * ready (a timeout, no HSM serving, a lost connection); a mutation must keep its {@code requestId}. False
   * when the answer will be the same (a wrong key, a bad parameter, access denied, a failed tag check).
   */
  public boolean isRetryable() {
    return connectionLost || RETRYABLE.contains(code);
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
