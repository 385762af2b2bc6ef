package io.hsmbridge.agent.replication;

import java.util.List;
import java.util.Locale;

/** The names of the cluster settings hsmbridge keeps in the tokens ({@code ClusterSettings}), in one place. */
public final class Settings {
  /** M of the admin services' M-of-N quorum (1 = no quorum). */
  public static final String ADMIN_QUORUM = "quorum.admin";

  private Settings() {}

  /** M for a key's management operations (delete, relabel, wrap, share, unshare, quorum change). */
  public static String keyManagementQuorum(String keyId) {
    return "quorum.key." + keyId.toLowerCase(Locale.ROOT) + ".management";
  }

  /** M for a key's crypto operations. */
  public static String keyUsageQuorum(String keyId) {
    return "quorum.key." + keyId.toLowerCase(Locale.ROOT) + ".usage";
  }

  /** Whether the user must complete each login with a token-sign challenge (1) or not (absent/0). */
  public static String mfa(String user) {
    return "mfa." + user.toLowerCase(Locale.ROOT); // user names are canonical in lowercase
  }

  /** Prefix of the settings that record a logged-out session (value: the session's expiry, epoch millis). */
  public static final String REVOKED_SESSION_PREFIX = "session.revoked.";

  /**
   * The setting that says a session was logged out, on every HSM: its proof no longer admits a request
   * anywhere. Kept until the session would have expired anyway, then pruned.
   */
  public static String revokedSession(String sessionId) {
    return REVOKED_SESSION_PREFIX + sessionId;
  }

  /**
   * When {@code user}'s password last changed (the change's log timestamp): its sessions issued before are
   * refused, except the one that made the change ({@link #sessionKept}).
   */
  public static String sessionsNotBefore(String user) {
    return "session.notbefore." + user.toLowerCase(Locale.ROOT);
  }

  /** The issue time of the session that changed {@code user}'s password last: it goes on. */
  public static String sessionKept(String user) {
    return "session.kept." + user.toLowerCase(Locale.ROOT);
  }

  /** Prefix of the settings that record a request's outcome ({@link Mutation.Once}). */
  public static final String OUTCOME_PREFIX = "outcome.";

  /** How long the log remembers a request's outcome: far longer than any client retries a request. */
  public static final java.time.Duration OUTCOME_KEPT = java.time.Duration.ofHours(24);

  /**
   * The setting that says {@code user}'s request {@code requestId} was applied (value: the applying
   * entry's timestamp). Bound to the user, so that one user's request id never answers another's
   * request; hashed, so that a request id of any characters makes a valid setting name.
   */
  public static String outcome(String user, String requestId) {
    return OUTCOME_PREFIX + userBound(user, requestId);
  }

  /** Prefix of the settings that record a used one-time credential ({@link Mutation.Consume}). */
  public static final String CONSUMED_PREFIX = "consumed.";

  /** The setting that says {@code user}'s one-time credential {@code id} was used (value: its expiry). */
  public static String consumed(String user, String id) {
    return CONSUMED_PREFIX + userBound(user, id);
  }

  /** 16 bytes of SHA-256(user \0 id) in hex: a setting name for any id, bound to one user. */
  private static String userBound(String user, String id) {
    try {
      java.security.MessageDigest sha = java.security.MessageDigest.getInstance("SHA-256");
      sha.update(user.toLowerCase(Locale.ROOT).getBytes(java.nio.charset.StandardCharsets.UTF_8));
      sha.update((byte) 0);
      byte[] h = sha.digest(id.getBytes(java.nio.charset.StandardCharsets.UTF_8));
      return java.util.HexFormat.of().formatHex(h, 0, 16);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }

  /** Every setting that belongs to a user (removed with it). */
  static List<String> ofUser(String user) {
    return List.of(mfa(user), sessionsNotBefore(user), sessionKept(user));
  }

  /** Every setting that belongs to a key (removed with it). */
  static List<String> ofKey(String keyId) {
    return List.of(keyManagementQuorum(keyId), keyUsageQuorum(keyId));
  }
}
