package io.hsmbridge.bridge.auth;

import java.security.SecureRandom;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * Short-lived values the bridge hands out and later takes back once: MFA login challenges and quorum
 * tokens. Each has a random id, an owner (the user it was issued to), an expiry and a payload; taking it
 * back for another user, after expiry or a second time fails. Bounded in number; event-loop confined.
 */
public final class OneTimeTokens<T> {
  /** One issued value. */
  public record Issued<T>(String id, String owner, long expiresAt, T payload) {}

  static final int MAX_OUTSTANDING = 10_000;
  private static final SecureRandom RANDOM = new SecureRandom();

  private final Map<String, Issued<T>> byId = new HashMap<>();
  private final LongSupplier clock;

  public OneTimeTokens(LongSupplier clockMillis) {
    this.clock = clockMillis;
  }

  public static String randomId() {
    byte[] b = new byte[18];
    RANDOM.nextBytes(b);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
  }

  /** Issues a value under {@code id} (a fresh {@link #randomId()}). */
  public Issued<T> issue(String id, String owner, long ttlMillis, T payload) {
    long now = clock.getAsLong();
    byId.values().removeIf(i -> i.expiresAt <= now);
    if (byId.size() >= MAX_OUTSTANDING) {
      throw new IllegalStateException("too many outstanding tokens");
    }
    Issued<T> i = new Issued<>(id, owner, now + ttlMillis, payload);
    byId.put(id, i);
    return i;
  }

  /**
   * The value issued under {@code id} to {@code owner}, without using it up.
   *
   * @return null when there is none, it is someone else's or it has expired (the reason goes to {@code why})
   */
  public Issued<T> peek(Object id, String owner, StringBuilder why) {
    Issued<T> i = id instanceof String ? byId.get(id) : null;
    if (i == null) {
      why.append("unknown or already used (tokens live in the bridge's memory and serve once)");
      return null;
    }
    if (!i.owner.equals(owner)) {
      why.append("issued to another user");
      return null;
    }
    if (i.expiresAt <= clock.getAsLong()) {
      byId.remove(i.id);
      why.append("expired");
      return null;
    }
    return i;
  }

  /**
   * The value issued under {@code id} to {@code owner}, used up in the same step: whoever takes it first
   * has it, every later presentation fails (callers are event-loop confined, so check and removal are one
   * atomic step).
   *
   * @return null when there is none, it is someone else's or it has expired (the reason goes to {@code why});
   *     someone else's value stays for its owner
   */
  public Issued<T> take(Object id, String owner, StringBuilder why) {
    Issued<T> i = peek(id, owner, why);
    if (i != null) {
      byId.remove(i.id);
    }
    return i;
  }

  /**
   * Puts back a value {@link #take taken} by a request that was refused before it did anything (the
   * value's owner may present it again); an expired one stays gone.
   */
  public void giveBack(Issued<T> i) {
    if (i.expiresAt > clock.getAsLong() && byId.size() < MAX_OUTSTANDING) {
      byId.putIfAbsent(i.id, i);
    }
  }
}
