package io.hsmbridge.pkcs11;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiConsumer;
import java.util.function.BiPredicate;
import java.util.function.Function;
import java.util.logging.Logger;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * Differences between the token and a cache that a settle found ({@link KeyManager#settle},
 * {@link DataRecordStore#settle}), adopted only when a later settle finds the same again.
 *
 * <p>Why not at once: SoftHSM2 2.6.1 can miss an object that exists. Its object store is re-indexed and
 * its object files re-read by whichever thread searches next (each thread's search, ours under the object-
 * write lock included, meets other threads' re-reads), and for that moment an existing object is invisible.
 * (The CI failure that first led here, an ACL written 10 ms earlier missing from a digest's scan and from the
 * search that was to confirm it, turned out to be another SoftHSM2 race: the record had been stored broken,
 * see {@link VerifiedCreation} and {@link SearchGuard}. A transient miss stays possible, so this stays.) A change made behind this process's back
 * (another process on the token, an operator's tool) stays; a miss of that kind does not. So a difference is
 * adopted when a settle at least {@link #CONFIRM_AFTER_NANOS} after the first sighting finds the token
 * showing the same; until then the cache stands, and {@link KeyManager#unconfirmedDrifts()} counts it, so
 * that a digest can say it is not final ({@code cluster check} then asks again).
 *
 * <p>Not thread-safe: call under the object-write lock.
 *
 * @param <E> what the token shows for one name (null: nothing)
 */
final class DriftSuspicions<E> {
  private static final Logger LOG = Logger.getLogger(DriftSuspicions.class.getName());
  /** Between two sightings of one difference; the anti-entropy rounds are 150 ms apart. */
  static final long CONFIRM_AFTER_NANOS = 100_000_000L;

  private record Sighting<E>(E onToken, long at) {}

  private final Map<String, Sighting<E>> seen = new HashMap<>();
  private final AtomicLong unconfirmed;

  /** @param unconfirmed counts every difference left unconfirmed (shared by a token's stores) */
  DriftSuspicions(AtomicLong unconfirmed) {
    this.unconfirmed = unconfirmed;
  }

  /** What the token holds for one name, read now (null: nothing). */
  interface Read<E> {
    E read(String name) throws TokenException;
  }

  /**
   * The end of a settle whose scan disagreed with the cache about {@code candidates}: each is read again
   * ({@code read}), and a difference from the cache ({@code cached}) that is confirmed ({@link #confirmed})
   * is handed to {@code adopt}; the others stay as the cache has them. Says in the log what it kept and
   * what it adopted ({@code what}: "keys", "hsmbridge.acl records", ...).
   *
   * @return how many differences it adopted
   */
  int settle(List<String> candidates, Function<String, E> cached, Read<E> read, BiPredicate<E, E> same,
      BiConsumer<String, E> adopt, String what) throws TokenException {
    Map<String, E> differences = new HashMap<>();
    for (String name : candidates) {
      E now = read.read(name);
      if (!same.test(cached.apply(name), now)) {
        differences.put(name, now);
      }
    }
    Map<String, E> confirmed = confirmed(differences, same);
    if (confirmed.size() < differences.size()) {
      LOG.info("the token showed " + (differences.size() - confirmed.size()) + " of its " + what
          + " other than this process holds; kept until a later settle sees the same");
    }
    confirmed.forEach(adopt);
    if (!confirmed.isEmpty()) {
      LOG.warning("the token's " + what + " changed behind this process's back: " + confirmed.size() + " read again");
    }
    return confirmed.size();
  }

  /**
   * The differences of this settle ({@code name -> what the token shows now}) that are confirmed: seen the
   * same at least {@link #CONFIRM_AFTER_NANOS} ago. The others are remembered, and counted as unconfirmed;
   * a name that no longer differs is forgotten.
   */
  private Map<String, E> confirmed(Map<String, E> differences, BiPredicate<E, E> same) {
    long now = System.nanoTime();
    Map<String, E> confirmed = new HashMap<>();
    Map<String, Sighting<E>> still = new HashMap<>();
    for (Map.Entry<String, E> d : differences.entrySet()) {
      Sighting<E> before = seen.get(d.getKey());
      if (before != null && same.test(before.onToken(), d.getValue())) {
        if (now - before.at() >= CONFIRM_AFTER_NANOS) {
          confirmed.put(d.getKey(), d.getValue());
          continue;
        }
        still.put(d.getKey(), before);
      } else {
        still.put(d.getKey(), new Sighting<>(d.getValue(), now));
      }
      unconfirmed.incrementAndGet();
    }
    seen.clear();
    seen.putAll(still);
    return confirmed;
  }

  /** A settle that found the token and the cache alike: every difference seen before was a miss. */
  void noDifferences() {
    seen.clear();
  }
}
