package io.hsmbridge.bridge.auth;

import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonObject;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * The front door's view of logged-in sessions. A session is cluster state: its token is the session proof
 * an agent issued at login ({@code hsb1.} + base64url of user, role and proof: an HMAC made inside the
 * tokens under the cluster's session-proof key), so every front door, and a restarted one, can take it;
 * agents verify the proof, the user's existence, role and lock, and whether the session was logged out
 * (recorded in the cluster's log), on every request. A token this front door has not seen yet is checked
 * by an agent once ({@link #unverified}, then {@link #adopt}) before it admits anything, also the
 * requests the front door answers itself; a held one is checked again before the front door answers an
 * operation itself ({@link #held}). Valid until it has been idle for {@code idle} at every front door
 * (they report the sessions they served every {@link #REPORT_MS}; one that ran out here is refused here until
 * it would have expired), is {@code max} old, its proof expires, or logout. Event-loop confined (not
 * thread-safe).
 */
public final class Sessions {
  /** One session; {@link #toString()} leaves the token out. */
  public static final class Session {
    final String token;
    public final String user;
    public final Role role;
    /**
     * The session proof the agent issued at login (see {@code Principal}), forwarded with every request
     * of the session; null when the agent gave none. Not a credential for clients: never sent to them.
     */
    final JsonObject proof;
    final long createdMillis;
    long lastUsedMillis;
    /** What {@link #usedSinceLastReport} last told the other front doors of this session's use. */
    long reportedUseMillis;
    /** SHA-256 of the token: how front doors name the session to each other (never the token itself). */
    final String digest;

    Session(String token, String digest, String user, Role role, JsonObject proof, long created, long now) {
      this.token = token;
      this.digest = digest;
      this.user = user;
      this.role = role;
      this.proof = proof == null ? null : proof.copy();
      this.createdMillis = created;
      this.lastUsedMillis = now;
    }

    @Override
    public String toString() {
      return "Session[" + user + ", " + role + "]";
    }
  }

  /** Most sessions at once: a flood of logins cannot grow the bridge's memory without bound. */
  static final int MAX_SESSIONS = 100_000;
  /** How a token that carries its session proof starts. */
  public static final String TOKEN_PREFIX = "hsb1.";
  /** A longer token is not one of ours (user, role and proof take about 300 characters). */
  static final int MAX_TOKEN_CHARS = 2_048;
  /**
   * Tokens an agent refused lately are refused here without asking again (a client repeating a forged or
   * logged-out token must not make the front door query an agent for every request); bounded, for a minute.
   */
  static final int MAX_REFUSED = 100_000;
  static final long REFUSED_TTL_MS = 60_000;
  /** By {@link #digestOf} the token: a digest, so that the bound holds in memory too (tokens are ~400 chars). */
  private final Map<String, Long> refusedUntil = new java.util.LinkedHashMap<>(16, 0.75f, false) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<String, Long> eldest) {
      return size() > MAX_REFUSED;
    }
  };
  private static final SecureRandom RANDOM = new SecureRandom();

  private final Map<String, Session> byToken = new HashMap<>();
  private final Map<String, Session> byDigest = new HashMap<>();
  /**
   * When a session this front door does not hold was last used at another front door (by digest, from their
   * reports): it is not taken here if it has been idle for the limit since. Bounded like the sessions.
   */
  private final Map<String, Long> usedElsewhere = new java.util.LinkedHashMap<>(16, 0.75f, false) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<String, Long> eldest) {
      return size() > MAX_SESSIONS;
    }
  };
  private final Duration idle;
  private final Duration max;
  private final LongSupplier clock;
  /**
   * When this front door started: nothing it learnt of a session's use before is known, so a session's idle
   * time here counts from this at the earliest (a session survives the restart of every process).
   */
  private final long startedMillis;

  /** How often front doors report the sessions they served (see {@link #usedSinceLastReport}). */
  public static final long REPORT_MS = 1_000;
  /** Most sessions named in one report message. */
  public static final int MAX_REPORTED = 5_000;

  public Sessions(Duration idle, Duration max, LongSupplier clockMillis) {
    this.idle = idle;
    this.max = max;
    this.clock = clockMillis;
    this.startedMillis = clockMillis.getAsLong();
  }

  private void hold(Session s) {
    byToken.put(s.token, s);
    byDigest.put(s.digest, s);
    usedElsewhere.remove(s.digest);
  }

  private void drop(Session s) {
    if (byToken.remove(s.token) != null) {
      byDigest.remove(s.digest);
    }
  }

  /**
   * The sessions used here since the last call, as token digest → last use (epoch millis), at most
   * {@link #MAX_REPORTED} (the rest in the next report). Front doors publish this every {@link #REPORT_MS}.
   */
  public Map<String, Long> usedSinceLastReport() {
    Map<String, Long> used = new java.util.LinkedHashMap<>();
    for (Session s : byToken.values()) {
      if (s.lastUsedMillis != s.reportedUseMillis && used.size() < MAX_REPORTED) {
        used.put(s.digest, s.lastUsedMillis);
        s.reportedUseMillis = s.lastUsedMillis;
      }
    }
    return used;
  }

  /**
   * Another front door served the session of {@code digest} at {@code atMillis}: its idle time here counts
   * from then. A time in the future counts as now (a clock ahead, or a lie, cannot make a session live on).
   */
  public void usedElsewhere(String digest, long atMillis) {
    long at = Math.min(atMillis, clock.getAsLong());
    Session held = byDigest.get(digest);
    if (held != null) {
      if (at > held.lastUsedMillis) {
        held.lastUsedMillis = at;
        held.reportedUseMillis = at; // the others know: not echoed back
      }
      return;
    }
    usedElsewhere.merge(digest, at, Math::max);
  }

  /** Opens a session without a session proof (its requests are refused by the agents). */
  public Session open(String user, Role role) {
    return open(user, role, null);
  }

  /** Opens a session that forwards {@code proof} (the agent's session proof) with each request. */
  public Session open(String user, Role role, JsonObject proof) {
    sweep();
    if (byToken.size() >= MAX_SESSIONS) {
      throw new IllegalStateException("too many sessions");
    }
    String token;
    if (proof == null) {
      byte[] b = new byte[32];
      RANDOM.nextBytes(b);
      token = Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    } else {
      JsonObject carried = new JsonObject().put("user", user).put("role", role.name()).put("proof", proof);
      token = TOKEN_PREFIX + Base64.getUrlEncoder().withoutPadding()
          .encodeToString(carried.encode().getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }
    long now = clock.getAsLong();
    Session s = new Session(token, digestOf(token), user, role, proof, now, now);
    hold(s);
    return s;
  }

  /**
   * A session this front door does not hold yet, read from a token that carries its proof (one issued
   * through another front door, or before this one restarted): NOT admitted until an agent has verified
   * it ({@link #adopt}). Null when {@code token} is not such a token, is malformed, is held already, or
   * has expired.
   */
  public Session unverified(Object token) {
    if (!(token instanceof String t) || !t.startsWith(TOKEN_PREFIX) || t.length() > MAX_TOKEN_CHARS
        || byToken.containsKey(t)) {
      return null;
    }
    String digest = digestOf(t);
    if (recentlyRefused(digest)) {
      return null;
    }
    try {
      JsonObject carried = new JsonObject(new String(Base64.getUrlDecoder().decode(t.substring(TOKEN_PREFIX.length())),
          java.nio.charset.StandardCharsets.UTF_8));
      String user = carried.getString("user");
      Role role = Role.valueOf(carried.getString("role"));
      JsonObject proof = carried.getJsonObject("proof");
      if (!io.hsmbridge.pkcs11.UserRecord.isValidName(user) || proof == null
          || !(proof.getValue("issuedAt") instanceof Number issued) || !(proof.getValue("expiresAt") instanceof Number ends)) {
        return null;
      }
      long now = clock.getAsLong();
      // Idle since its last use at any front door (their reports), or since this one started or the login.
      long lastUse = Math.max(Math.max(startedMillis, issued.longValue()), usedElsewhere.getOrDefault(digest, 0L));
      Session s = new Session(t, digest, io.hsmbridge.pkcs11.UserRecord.checkName(user), role, proof, issued.longValue(),
          Math.min(lastUse, now));
      if (now >= ends.longValue()) {
        return null;
      }
      if (expired(s, now)) {
        expire(s); // idle at every front door: refused here from now on, as a session that idled out here
        return null;
      }
      return s;
    } catch (RuntimeException e) {
      return null; // not base64, not JSON, a field of the wrong type: not a token of ours
    }
  }

  /**
   * An agent refused the session of {@code s}: it ends here (when held), and its token is refused for
   * {@link #REFUSED_TTL_MS} without asking an agent again.
   */
  public void refused(Session s) {
    drop(s);
    refusedUntil.put(s.digest, clock.getAsLong() + REFUSED_TTL_MS);
  }

  /** Whether the token of {@code key} ({@link #digestOf}) was refused lately. */
  private boolean recentlyRefused(String key) {
    Long until = refusedUntil.get(key);
    if (until == null) {
      return false;
    }
    if (until <= clock.getAsLong()) {
      refusedUntil.remove(key);
      return false;
    }
    return true;
  }

  /** SHA-256 of a token, base64: how refused tokens are kept and how front doors name sessions to each other. */
  /** The length of a {@link #digestOf} value: SHA-256 (32 bytes) in padded Base64. */
  static final int DIGEST_CHARS = 44;

  static String digestOf(String token) {
    try {
      return Base64.getEncoder().encodeToString(java.security.MessageDigest.getInstance("SHA-256")
          .digest(token.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is part of every JDK", e);
    }
  }

  /**
   * A session that ran out here (idle, or at its absolute limit) is refused here until its proof would have
   * expired: a token presented again is otherwise not held any more, read as one to adopt, and an agent,
   * which does not see idleness, would vouch for it (the idle limit would never end a session).
   */
  private void expire(Session s) {
    drop(s);
    long until = s.createdMillis + max.toMillis();
    if (s.proof != null && s.proof.getValue("expiresAt") instanceof Number ends) {
      until = Math.min(until, ends.longValue());
    }
    if (until > clock.getAsLong()) {
      refusedUntil.put(s.digest, until);
    }
  }

  /**
   * The live session of {@code token} that this front door holds, without restarting its idle timer: to be
   * checked again by an agent before this front door answers an operation itself (nothing else checks it
   * then). Null when not held or expired.
   */
  public Session held(Object token) {
    if (!(token instanceof String)) {
      return null;
    }
    Session s = byToken.get(token);
    if (s == null) {
      return null;
    }
    if (expired(s, clock.getAsLong())) {
      expire(s);
      return null;
    }
    return s;
  }

  /** Holds a session read by {@link #unverified} once an agent verified its proof. */
  public void adopt(Session s) {
    sweep();
    if (byToken.size() >= MAX_SESSIONS) {
      throw new IllegalStateException("too many sessions");
    }
    if (!byToken.containsKey(s.token)) {
      hold(s);
    }
  }

  /** The live session of {@code token} (its idle timer restarts), or null when unknown or expired. */
  public Session use(Object token) {
    if (!(token instanceof String)) {
      return null;
    }
    Session s = byToken.get(token);
    long now = clock.getAsLong();
    if (s == null) {
      return null;
    }
    if (expired(s, now)) {
      expire(s);
      return null;
    }
    s.lastUsedMillis = now;
    return s;
  }

  /** When the session ends at the latest (absolute limit), epoch millis. */
  public long expiresAt(Session s) {
    return Math.min(s.createdMillis + max.toMillis(), s.lastUsedMillis + idle.toMillis());
  }

  public long idleSeconds() {
    return idle.toSeconds();
  }

  /**
   * Ends a session here, and refuses its token for {@link #REFUSED_TTL_MS} without asking an agent: the
   * change that ended it (a logout, a deletion) is acknowledged once a majority applied it, so an agent
   * asked right after may not have applied it yet and would vouch for the session again (seen: a whoami
   * answered right after the logout).
   */
  public void close(Session s) {
    refused(s);
  }

  /** Ends every session of {@code user} (a deleted user). */
  public void closeUser(String user) {
    closeAll(s -> s.user.equals(user));
  }

  /** Ends every session of {@code role} (the PRECO's, after activation). */
  public void closeRole(Role role) {
    closeAll(s -> s.role == role);
  }

  private void closeAll(java.util.function.Predicate<Session> which) {
    for (Session s : List.copyOf(byToken.values())) {
      if (which.test(s)) {
        close(s);
      }
    }
  }

  private boolean expired(Session s, long now) {
    return now - s.lastUsedMillis >= idle.toMillis() || now - s.createdMillis >= max.toMillis();
  }

  private void sweep() {
    long now = clock.getAsLong();
    for (Session s : List.copyOf(byToken.values())) {
      if (expired(s, now)) {
        expire(s);
      }
    }
  }
}
