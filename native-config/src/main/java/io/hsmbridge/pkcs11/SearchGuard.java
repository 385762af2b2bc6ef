package io.hsmbridge.pkcs11;

import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * Keeps searches of the token (C_FindObjects) and the creation of token objects apart; every search and every
 * creation made with the User logged in goes through here ({@link VerifiedCreation} for creations).
 *
 * <p>Why: SoftHSM2 2.6.1 writes a new object's file several times while it creates it, and a search in another
 * thread meanwhile re-reads the object in memory (it re-reads every object whose file changed), which can make
 * the creation lose template attributes and store defaults in their place, or fail with CKR_GENERAL_ERROR (see
 * {@link VerifiedCreation}: without this guard, 2 objects in 2,121 in ObjectWriteRaceTest, and a key that passed
 * VerifiedCreation's check was missing from a later rescan; with it, none in 571). Other calls (crypto, attribute reads by handle) re-read only the object
 * they name, so they stay unguarded and fully parallel. Searches share the lock among themselves; a creation
 * waits for the searches under way (each a few ms to tens of ms: SoftHSM2 searches cost ~19 ms at 1,000
 * objects) and holds new ones off for its own few ms. Fair, so that a stream of scans cannot starve creations.
 *
 * <p>One lock for the JVM, not one per token: an agent opens one token; where a JVM opens several (tests, the
 * in-process bench) a creation on one token also waits for searches on another, which costs time only.
 * Creations made as SO need no guard: they hold every session of the pool, so nothing searches meanwhile.
 */
final class SearchGuard {
  private static final ReentrantReadWriteLock LOCK = new ReentrantReadWriteLock(true);

  private SearchGuard() {}

  /** C_FindObjects for {@code template}, never while this JVM creates a token object. */
  static long[] find(Session s, AttributeVector template) throws TokenException {
    LOCK.readLock().lock();
    try {
      return s.findAllObjectsSingle(template);
    } finally {
      LOCK.readLock().unlock();
    }
  }

  /** What makes one token object (or a key pair). */
  interface Creation<T> {
    T make() throws TokenException;
  }

  /** Runs {@code creation} with no search under way in this JVM. Must not be called while searching. */
  static <T> T creating(Creation<T> creation) throws TokenException {
    LOCK.writeLock().lock();
    try {
      return creation.make();
    } finally {
      LOCK.writeLock().unlock();
    }
  }
}
