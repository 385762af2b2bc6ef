package io.hsmbridge.agent.replication;

import java.util.Arrays;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * Whom a log entry acts for, with the proof that it authenticated; see {@link EntryProofs}.
 *
 * <ul>
 *   <li>A user ({@link Role#PRECO}, {@link Role#CO}, {@link Role#CU}): the session proof the agent that
 *       checked the user's password issued at login, an HMAC-SHA256 made inside the token over
 *       (user, role, session id, issued-at, expires-at) with the cluster's session-proof key. A front
 *       door keeps it with the session and cannot make one.</li>
 *   <li>An agent on its own ({@link Role#AGENT}, user = its HSM id, no session proof): login
 *       bookkeeping and repairs; the entry's seal ({@link Entry}) is its proof.</li>
 * </ul>
 *
 * <p>Times are epoch milliseconds. {@link #toString()} leaves the proof out.
 */
public record Actor(Role role, String user, String sessionId, long issuedAt, long expiresAt, byte[] proof) {
  /** Who can act in the log. */
  public enum Role {
    PRECO, CO, CU, AGENT;

    static Role parse(String name) {
      for (Role r : values()) {
        if (r.name().equals(name)) {
          return r;
        }
      }
      throw new IllegalArgumentException("unknown principal role in mutation entry");
    }
  }

  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_.-]{1,64}");
  private static final Pattern SESSION_ID = Pattern.compile("[A-Za-z0-9_-]{0,64}");
  /** An HMAC-SHA256 is 32 bytes; anything longer is not a proof. */
  static final int MAX_PROOF = 64;

  /**
   * @throws IllegalArgumentException for a name or session id of the wrong shape, or a proof over 64 bytes
   */
  public Actor {
    Objects.requireNonNull(role, "role");
    checkName(user);
    if (sessionId == null || !SESSION_ID.matcher(sessionId).matches()) {
      throw new IllegalArgumentException("bad session id in mutation entry");
    }
    if (proof != null && proof.length > MAX_PROOF) {
      throw new IllegalArgumentException("bad proof length in mutation entry");
    }
    proof = proof == null ? null : proof.clone();
  }

  /** A user name or HSM id as entries carry them: {@code [A-Za-z0-9_.-]{1,64}} (user names are at most 32, HSM ids 64). */
  static void checkName(String name) {
    if (name == null || !NAME.matcher(name).matches()) {
      throw new IllegalArgumentException("bad principal or submitter name in mutation entry");
    }
  }

  /** The actor of an entry an agent makes on its own (its HSM id; the entry's seal is the proof). */
  public static Actor agent(String hsmId, long timestamp) {
    return new Actor(Role.AGENT, hsmId, "", timestamp, timestamp, null);
  }

  @Override
  public byte[] proof() {
    return proof == null ? null : proof.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Actor a && role == a.role && user.equals(a.user) && sessionId.equals(a.sessionId)
        && issuedAt == a.issuedAt && expiresAt == a.expiresAt && Arrays.equals(proof, a.proof);
  }

  @Override
  public int hashCode() {
    return Objects.hash(role, user, sessionId, issuedAt, expiresAt, Arrays.hashCode(proof));
  }

  @Override
  public String toString() {
    return "Actor[" + user + ", " + role + (proof == null ? ", no proof" : "") + "]";
  }
}
