package io.hsmbridge.bridge.auth;

import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonObject;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * The bridge's logged-in sessions: a random 256-bit token per login, valid until it has been idle for
 * {@code idle} or is {@code max} old, whichever comes first, or until logout. Held in the bridge's memory
 * only: a restarted bridge forgets every session and users log in again (their users, passwords and
 * keys live in the HSMs). Event-loop confined (not thread-safe).
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

    Session(String token, String user, Role role, JsonObject proof, long now) {
      this.token = token;
      this.user = user;
      this.role = role;
      this.proof = proof == null ? null : proof.copy();
      this.createdMillis = now;
      this.lastUsedMillis = now;
    }

    @Override
    public String toString() {
      return "Session[" + user + ", " + role + "]";
    }
  }

  /** Most sessions at once: a flood of logins cannot grow the bridge's memory without bound. */
  static final int MAX_SESSIONS = 100_000;
  private static final SecureRandom RANDOM = new SecureRandom();

  private final Map<String, Session> byToken = new HashMap<>();
  private final Duration idle;
  private final Duration max;
  private final LongSupplier clock;

  public Sessions(Duration idle, Duration max, LongSupplier clockMillis) {
    this.idle = idle;
    this.max = max;
    this.clock = clockMillis;
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
    byte[] b = new byte[32];
    RANDOM.nextBytes(b);
    String token = Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    Session s = new Session(token, user, role, proof, clock.getAsLong());
    byToken.put(token, s);
    return s;
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
      byToken.remove(token);
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

  public void close(Session s) {
    byToken.remove(s.token);
  }

  /** Ends every session of {@code user} (a deleted user). */
  public void closeUser(String user) {
    byToken.values().removeIf(s -> s.user.equals(user));
  }

  /** Ends every session of {@code role} (the PRECO's, after activation). */
  public void closeRole(Role role) {
    byToken.values().removeIf(s -> s.role == role);
  }

  private boolean expired(Session s, long now) {
    return now - s.lastUsedMillis >= idle.toMillis() || now - s.createdMillis >= max.toMillis();
  }

  private void sweep() {
    long now = clock.getAsLong();
    for (Iterator<Session> it = byToken.values().iterator(); it.hasNext(); ) {
      if (expired(it.next(), now)) {
        it.remove();
      }
    }
  }
}
