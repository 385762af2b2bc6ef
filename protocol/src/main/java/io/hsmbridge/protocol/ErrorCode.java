package io.hsmbridge.protocol;

import java.util.HashMap;
import java.util.Map;

/**
 * Stable error codes shared by every API (event bus {@code ReplyException.failureCode()}, TCP bridge
 * {@code failureCode}, CLI exit messages). Numbers never change once released; add new ones at the end
 * of their range.
 *
 * <p>Crypto failures (a tag that does not verify, a padding error, a bad signature on verify) are all
 * reported as {@link #CRYPTO_FAILURE} with no detail, so that a client cannot use error differences as an
 * oracle. The detail stays in the server log.
 */
public enum ErrorCode {
  // 4xx: the caller's fault, nothing was changed.
  BAD_REQUEST(400, "malformed request"),
  UNKNOWN_OPERATION(401, "unknown operation"),
  UNKNOWN_KEY(404, "no such key"),
  WRONG_KEY_TYPE(409, "key type or usage does not allow this operation"),
  INVALID_PARAMETER(422, "invalid parameter"),
  INPUT_TOO_LARGE(413, "input too large"),
  CRYPTO_FAILURE(460, "cryptographic operation failed"),
  NOT_ALLOWED_BY_POLICY(403, "not allowed by key policy"),
  /** No session, or an unknown, expired or logged-out session token: log in first. */
  NOT_AUTHENTICATED(470, "not logged in or session expired"),
  /** The user's role (or the key's owner/shares) does not allow the operation; nothing was changed. */
  ACCESS_DENIED(471, "access denied"),
  /** Wrong user name or password (which one is never said); counted towards the lockout. */
  LOGIN_FAILED(472, "wrong user name or password"),
  /** Locked after consecutive failed logins: an admin must unlock the user. */
  USER_LOCKED(473, "user is locked"),
  /** The operation needs M valid, unexpired, distinct quorum approvals and the request has fewer. */
  QUORUM_NOT_MET(474, "quorum approvals missing or invalid"),

  // 5xx: the server's or the token's state.
  INTERNAL(500, "internal error"),
  TOKEN_NOT_FOUND(503, "token not found"),
  TOKEN_LOGIN_FAILED(504, "token login failed"),
  TOKEN_PROFILE_MISMATCH(505, "token contradicts its vendor profile"),
  TOKEN_UNAVAILABLE(506, "token unavailable"),
  SESSION_POOL_EXHAUSTED(507, "no token session available in time"),
  TOKEN_CORRUPTED(508, "token holds unreadable objects"),
  CONFIG_INVALID(509, "invalid configuration"),
  TIMEOUT(510, "request timed out"),
  NO_HSM_AVAILABLE(511, "no HSM available"),
  /** Too few healthy HSMs to apply a mutation on min(durability, cluster size) of them; nothing was changed. */
  KEY_AVAILABILITY(512, "key availability requirement not met"),
  /** The HSM is catching up with the cluster's mutation log and does not serve yet. */
  HSM_NOT_READY(513, "HSM is not ready"),
  /**
   * A mutation reached the cluster's log but its commit was not seen in time (or the connection was lost
   * while it was in flight): it may still be applied. Sent again with the same {@code requestId}, a
   * retry-safe mutation ({@link Op#isRetrySafe()}) returns its one outcome.
   */
  OUTCOME_UNKNOWN(514, "outcome unknown: send it again with the same requestId");

  private static final Map<Integer, ErrorCode> BY_CODE = new HashMap<>();

  static {
    for (ErrorCode c : values()) {
      if (BY_CODE.put(c.code, c) != null) {
        throw new ExceptionInInitializerError("duplicate error code " + c.code);
      }
    }
  }

  private final int code;
  private final String summary;

  ErrorCode(int code, String summary) {
    this.code = code;
    this.summary = summary;
  }

  /** The stable numeric code carried on the wire. */
  public int code() {
    return code;
  }

  /** A short, secret-free human summary. */
  public String summary() {
    return summary;
  }

  /** Whether the caller caused the error (as opposed to server or token state). */
  public boolean isClientError() {
    return code < 500;
  }

  /** Maps a wire code back to the enum; unknown codes become {@link #INTERNAL}. */
  public static ErrorCode fromCode(int code) {
    return BY_CODE.getOrDefault(code, INTERNAL);
  }
}
