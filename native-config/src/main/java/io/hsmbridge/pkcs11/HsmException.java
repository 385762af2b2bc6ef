package io.hsmbridge.pkcs11;

import io.hsmbridge.protocol.ErrorCode;

/**
 * The one exception type of hsmbridge's PKCS#11 layer. It carries a stable {@link ErrorCode} for the
 * client, the token's CKR value when one caused it (for server logs and metrics), and a message that
 * is safe to show a client: never a PIN, key bytes, or plaintext.
 *
 * <p>For {@link ErrorCode#CRYPTO_FAILURE} the client-facing message is always the generic summary, so
 * that decrypt/unwrap failures cannot be told apart by a caller; {@link #serverDetail()} keeps the rest.
 */
public final class HsmException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final ErrorCode code;
  private final Long ckr;
  private final String serverDetail;

  public HsmException(ErrorCode code, String message) {
    this(code, message, null, null, null);
  }

  public HsmException(ErrorCode code, String message, Long ckr, String serverDetail, Throwable cause) {
    super(code == ErrorCode.CRYPTO_FAILURE ? code.summary() : message, cause, false, true);
    this.code = code;
    this.ckr = ckr;
    this.serverDetail = serverDetail;
  }

  public ErrorCode code() {
    return code;
  }

  /** The PKCS#11 return value behind this error, or null when it did not come from the token. */
  public Long ckr() {
    return ckr;
  }

  /** Extra detail for server logs only (CKR name, operation); may be null. */
  public String serverDetail() {
    return serverDetail;
  }

  /** One line for clients: {@code CODE_NAME: message}. */
  public String clientMessage() {
    return code.name() + ": " + getMessage();
  }

  public static HsmException badParam(String message) {
    return new HsmException(ErrorCode.INVALID_PARAMETER, message);
  }

  public static HsmException unknownKey(String keyId) {
    return new HsmException(ErrorCode.UNKNOWN_KEY, "no key with id " + keyId);
  }

  public static HsmException wrongKey(String message) {
    return new HsmException(ErrorCode.WRONG_KEY_TYPE, message);
  }
}
