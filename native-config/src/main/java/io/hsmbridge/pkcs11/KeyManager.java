package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Mechanism;
import org.xipki.pkcs11.wrapper.PKCS11KeyPair;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * Key lifecycle on one token: generate, list, describe, relabel, delete, public key, import of a
 * wrapped key and export (wrap) where the key's policy allows. Every creation either completes (object
 * made, cache updated) or destroys what it made before reporting the error: nothing is left half-done.
 *
 * <p>Thread-safe; every method blocks on the token.
 */
public final class KeyManager {
  private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(KeyManager.class.getName());
  private static final SecureRandom RANDOM = new SecureRandom();

  private final SessionPool pool;
  private final KeyCache cache;
  /**
   * Serialises changes to the token's objects (create, destroy, set attribute). SoftHSM2 2.6.1's file
   * object store is not safe for concurrent token-object writes: two threads generating and deleting
   * token keys at once failed ~2% of the time with CKR_GENERAL_ERROR or CKR_TEMPLATE_INCONSISTENT
   * (measured). Key creation is rare next to crypto, which stays fully parallel.
   */
  private final java.util.concurrent.locks.ReentrantLock objectWrites = new java.util.concurrent.locks.ReentrantLock();
  /** Differences from the token that a settle saw once and has not adopted yet, all stores of this token together. */
  private final java.util.concurrent.atomic.AtomicLong unconfirmedDrifts = new java.util.concurrent.atomic.AtomicLong();
  private final DriftSuspicions<KeyEntry> keySuspicions = new DriftSuspicions<>(unconfirmedDrifts);
  private volatile RewriteJournal rewrites = RewriteJournal.NONE;

  KeyManager(SessionPool pool, KeyCache cache) {
    // Not under objectWrites: a writer waiting for a session may hold it, and no writer runs meanwhile.
    pool.afterSecurityOfficer(s -> {
      if (!cache.rebind(s)) {
        cache.reload(s);
      }
      return null;
    });
    this.pool = pool;
    this.cache = cache;
  }

  /** Generates a token key; as {@link #generate(KeySpec, KeyUsage, String, boolean, boolean)} with neverExtractable false. */
  public KeyInfo generate(KeySpec spec, KeyUsage usage, String label, boolean exportable) {
    return generate(spec, usage, label, exportable, false);
  }

  /** Whether this token holds the key (any failure other than an unknown key is thrown). */
  public boolean holds(String keyId) {
    try {
      describe(keyId);
      return true;
    } catch (HsmException e) {
      if (e.code() == ErrorCode.UNKNOWN_KEY) {
        return false;
      }
      throw e;
    }
  }

  /**
   * Generates a token key.
   *
   * @param exportable whether {@link #wrap} may export it under any wrapping key (else only trusted keys
   *     may wrap it: the cluster key for replication, a backup key)
   * @param neverExtractable CKA_EXTRACTABLE=false: no key at all may wrap it, so it can be neither
   *     replicated to another HSM nor backed up; it lives and dies on this token. Excludes exportable.
   * @throws HsmException INVALID_PARAMETER when both exportable and neverExtractable are asked for
   */
  public KeyInfo generate(KeySpec spec, KeyUsage usage, String label, boolean exportable, boolean neverExtractable) {
    checkUsage(spec, usage);
    if (exportable && neverExtractable) {
      throw HsmException.badParam("a key cannot be both exportable and never extractable");
    }
    KeyTemplates.Request r = new KeyTemplates.Request(spec, usage, label, exportable, newId(), neverExtractable, false);
    KeyEntry entry = writeObjects("generate " + spec, s -> {
      if (!spec.family().isAsymmetric()) {
        long h = VerifiedCreation.generateKey(s, KeyTemplates.generationMechanism(spec), KeyTemplates.secretForGenerate(r));
        return cached(readBack(s, h, KeyEntry.NONE));
      }
      PKCS11KeyPair pair = VerifiedCreation.generateKeyPair(s, KeyTemplates.generationMechanism(spec), KeyTemplates.keyPair(r));
      return cached(readBack(s, pair.getPrivateKey(), pair.getPublicKey()));
    });
    return entry.info();
  }

  public List<KeyInfo> list() {
    return cache.list();
  }

  public int count() {
    return cache.size();
  }

  public KeyInfo describe(String keyId) {
    return cache.get(keyId).info();
  }

  KeyEntry entry(String keyId) {
    return cache.get(keyId);
  }

  /**
   * A key's entry as the cache holds it now, for use inside session work: SO work kills handles to private
   * objects, and the pool re-reads the cache before it lets session work in again (SessionPool), so an
   * entry read while holding a session is valid until the session is returned; one read before may not be.
   */
  KeyEntry live(String keyId) {
    return cache.get(keyId);
  }

  /** The cache's entries, copied, handles included: what this process believes the token holds. */
  Map<String, KeyEntry> cachedEntries() {
    return cache.snapshot();
  }

  /**
   * Puts an entry made inside session work into the cache, still inside it: its handles are valid only
   * until SO work logs the User out, and SO work re-reads only what the cache holds (an entry put after
   * the session was returned could carry a handle SO work killed meanwhile).
   */
  private KeyEntry cached(KeyEntry entry) {
    cache.put(entry);
    return entry;
  }

  public void delete(String keyId) {
    KeyEntry known = cache.get(keyId);
    writeObjects("delete key", s -> {
      KeyEntry e = live(keyId);
      if (e.publicHandle() != KeyEntry.NONE) {
        s.destroyObject(e.publicHandle());
      }
      s.destroyObject(e.handle());
      if (e.publicHandle() == KeyEntry.NONE) {
        for (long record : SearchGuard.find(s, KeyCache.specRecordsOf(e.info().keyId()))) {
          s.destroyObject(record);
        }
      }
      return null;
    });
    cache.remove(known.info().keyId());
  }

  /** Where in-place rewrites of existing objects are announced (see {@link RewriteJournal}); NONE by default. */
  public void rewriteJournal(RewriteJournal journal) {
    this.rewrites = java.util.Objects.requireNonNull(journal);
  }

  public KeyInfo setLabel(String keyId, String label) {
    cache.get(keyId); // UNKNOWN_KEY before taking the write lock
    KeyEntry updated = writeObjects("set label", s -> {
      KeyEntry now = live(keyId);
      // The one in-place rewrite of an existing key: a crash part-way may lose the key's object file.
      try (RewriteJournal.Scope rewrite = rewrites.begin("label of key " + keyId)) {
        s.setAttributeValues(now.handle(), new AttributeVector().label(label));
        if (now.publicHandle() != KeyEntry.NONE) {
          s.setAttributeValues(now.publicHandle(), new AttributeVector().label(label));
        }
      }
      return cached(now.withLabel(label));
    });
    return updated.info();
  }

  /** The public key as DER SubjectPublicKeyInfo. */
  public byte[] publicKey(String keyId) {
    KeyEntry e = cache.get(keyId);
    long pub = e.publicOrFail();
    return pool.call("read public key", s -> {
      if (e.spec().family() == KeySpec.Family.RSA) {
        AttributeVector a = s.getAttrValues(pub, CKA_MODULUS, CKA_PUBLIC_EXPONENT);
        return PublicKeys.rsa(a.modulus(), a.publicExponent());
      }
      return PublicKeys.ec(e.spec(), s.getAttrValues(pub, CKA_EC_POINT).ecPoint());
    });
  }

  /**
   * Exports {@code keyId} wrapped under {@code wrappingKeyId}. Only keys created exportable may be
   * exported; the token enforces the same rule (CKA_WRAP_WITH_TRUSTED).
   */
  public byte[] wrap(String keyId, String wrappingKeyId, Algorithm alg) {
    KeyEntry target = cache.get(keyId);
    KeyEntry wrapping = cache.get(wrappingKeyId);
    wrapping.require(alg);
    if (!target.info().exportable()) {
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "key " + keyId + " is not exportable");
    }
    return pool.call("wrap key", s -> s.wrapKey(wrapMechanism(alg),
        alg == Algorithm.RSA_OAEP_WRAP ? wrapping.publicOrFail() : live(wrappingKeyId).handle(), live(keyId).handle()));
  }

  /**
   * Unwraps a key made elsewhere into a new token key. The wrapped blob carries no attributes: spec,
   * usage and policy come from the caller, and the result is checked against the spec. RSA keys get
   * their public half from the unwrapped private key's public attributes. EC keys cannot be imported
   * this way because their public point is not in the blob.
   */
  public KeyInfo importWrapped(String wrappingKeyId, Algorithm alg, byte[] wrapped, KeySpec spec, KeyUsage usage,
      String label, boolean exportable) {
    checkUsage(spec, usage);
    if (spec.family() == KeySpec.Family.EC || spec.family() == KeySpec.Family.EDWARDS) {
      throw HsmException.badParam("import of " + spec + " keys is not supported: the wrapped blob has no public point");
    }
    KeyEntry wrapping = cache.get(wrappingKeyId);
    wrapping.require(alg);
    KeyTemplates.Request r = new KeyTemplates.Request(spec, usage, label, exportable, newId());
    AttributeVector template = spec.family() == KeySpec.Family.RSA ? KeyTemplates.privateKey(r) : KeyTemplates.secret(r);
    KeyEntry entry;
    try {
      entry = unwrapAndRecord(wrapMechanism(alg), sess -> live(wrappingKeyId).handle(), wrapped, r, template, true, null);
    } catch (HsmException e) {
      // A blob the token cannot unwrap (SoftHSM2 often says only CKR_GENERAL_ERROR): one opaque answer.
      if (e.ckr() != null && (e.code() == ErrorCode.INTERNAL || e.code() == ErrorCode.INVALID_PARAMETER)) {
        throw new HsmException(ErrorCode.CRYPTO_FAILURE, "unwrap failed", e.ckr(), e.serverDetail(), e);
      }
      throw e;
    }
    return entry.info();
  }

  /** Finds a handle inside a session (e.g. the cluster key, looked up by id). */
  @FunctionalInterface
  interface HandleFinder {
    long find(Session s) throws TokenException;
  }

  /**
   * Recreates a key replicated from another HSM of the cluster: same id, label, spec, usage; sensitive and
   * private; wrap-with-trusted (as the cluster key's unwrap template demands), or, with {@code exportable}
   * (a blob wrapped under the cluster's export key), extractable by any wrapping key as the original was.
   * Idempotent: a key this token already holds is returned as it is (a retried replication must not fail
   * or duplicate).
   */
  KeyInfo installReplica(ReplicaBlob b, HandleFinder unwrappingKey, boolean exportable) {
    byte[] id = KeyCache.parseKeyId(b.keyId());
    if (id == null) {
      throw HsmException.badParam("replica key id must be 32 hex characters");
    }
    KeyEntry existing = cache.find(b.keyId());
    if (existing != null) {
      return existing.info();
    }
    KeyTemplates.Request r = new KeyTemplates.Request(b.spec(), b.usage(), b.label(), exportable, id);
    boolean secret = !b.spec().family().isAsymmetric();
    AttributeVector template = secret ? KeyTemplates.secret(r) : KeyTemplates.privateKey(r);
    return unwrapAndRecord(Mechanisms.aesKeyWrapPad(), unwrappingKey, b.wrapped(), r, template, false, b.ecPoint()).info();
  }

  /**
   * Unwraps {@code wrapped} into a token key and adds what the blob lacks: the public half (RSA: from
   * the private key's public attributes; EC: from {@code ecPoint}) and, for secret keys, the spec record
   * (SoftHSM2 leaves CKA_VALUE_LEN at 0 on unwrap). With {@code measure}, a secret key's size is checked
   * against the spec first. Anything made is destroyed again if a later step fails.
   */
  private KeyEntry unwrapAndRecord(Mechanism mechanism, HandleFinder unwrapping, byte[] wrapped,
      KeyTemplates.Request r, AttributeVector template, boolean measure, byte[] ecPoint) {
    KeySpec spec = r.spec();
    boolean secret = !spec.family().isAsymmetric();
    String keyId = KeyCache.keyId(r.id());
    if (!secret && spec.family() != KeySpec.Family.RSA && ecPoint == null) {
      throw HsmException.badParam("import of " + spec + " keys needs the public point");
    }
    return writeObjects("unwrap key", s -> {
      long unwrappingKey = unwrapping.find(s);
      if (secret && measure) {
        int length = secretLength(s, mechanism, unwrappingKey, wrapped, r);
        if (length != spec.bits() / 8) {
          throw HsmException.badParam("the wrapped key is " + (length < 0 ? "not a whole number of 8-byte blocks" : length + " bytes")
              + ", not a " + spec + " key");
        }
      }
      long h = VerifiedCreation.unwrapKey(s, mechanism, unwrappingKey, wrapped, template);
      long pub = KeyEntry.NONE;
      long record = KeyEntry.NONE;
      try {
        if (spec.family() == KeySpec.Family.RSA) {
          AttributeVector a = s.getAttrValues(h, CKA_MODULUS, CKA_PUBLIC_EXPONENT);
          pub = VerifiedCreation.createObject(s, KeyTemplates.publicKey(r).modulus(a.modulus()).publicExponent(a.publicExponent()));
        } else if (!secret) {
          pub = VerifiedCreation.createObject(s, KeyTemplates.publicKey(r).ecParams(Curves.ecParams(spec)).ecPoint(ecPoint));
        }
        if (secret) {
          record = VerifiedCreation.createObject(s, KeyCache.specRecord(keyId, spec));
        }
        KeyEntry made = readBack(s, h, pub, secret ? Map.of(keyId, spec) : Map.of());
        if (made.spec() != spec) {
          throw HsmException.badParam("the wrapped key is a " + made.spec() + " key, not " + spec);
        }
        return cached(made);
      } catch (TokenException | RuntimeException e) {
        destroyQuietly(s, h);
        if (pub != KeyEntry.NONE) {
          destroyQuietly(s, pub);
        }
        if (record != KeyEntry.NONE) {
          destroyQuietly(s, record);
        }
        throw e;
      }
    });
  }

  private static Mechanism wrapMechanism(Algorithm alg) {
    switch (alg) {
      case AES_KEY_WRAP_PAD: return Mechanisms.aesKeyWrapPad();
      case RSA_OAEP_WRAP: return Mechanisms.oaep(alg.hash());
      default: throw HsmException.badParam(alg.wireName() + " is not a key-wrap algorithm");
    }
  }

  /**
   * The size in bytes of the secret key in {@code wrapped}, or -1 when it is not a multiple of 8. The
   * token may not record the size of an unwrapped key (see {@link KeyCache}), so the blob is unwrapped
   * once more into a session object that may be wrapped (never a token object, destroyed at once) and
   * wrapped under a throw-away session key with CKM_AES_KEY_WRAP, whose output is 8 bytes longer than
   * its input.
   */
  private static int secretLength(Session s, Mechanism unwrapMechanism, long unwrappingKey, byte[] wrapped,
      KeyTemplates.Request r) throws TokenException {
    long probe = s.unwrapKey(unwrapMechanism, unwrappingKey, wrapped, KeyTemplates.measurable(r));
    long kek = KeyEntry.NONE;
    try {
      kek = s.generateKey(new Mechanism(CKM_AES_KEY_GEN), KeyTemplates.sessionKek());
      try {
        return s.wrapKey(new Mechanism(CKM_AES_KEY_WRAP), kek, probe).length - 8;
      } catch (org.xipki.pkcs11.wrapper.PKCS11Exception e) {
        if (e.getErrorCode() == CKR_KEY_SIZE_RANGE || e.getErrorCode() == CKR_DATA_LEN_RANGE) {
          return -1;
        }
        throw e;
      }
    } finally {
      destroyQuietly(s, probe);
      if (kek != KeyEntry.NONE) {
        destroyQuietly(s, kek);
      }
    }
  }

  private static KeyEntry readBack(Session s, long handle, long publicHandle) throws TokenException {
    return readBack(s, handle, publicHandle, Map.of());
  }

  /** Reads back what the token made; destroys it when it cannot be read as a user key. */
  private static KeyEntry readBack(Session s, long handle, long publicHandle, Map<String, KeySpec> recorded)
      throws TokenException {
    try {
      byte[] id = s.getAttrValues(handle, CKA_ID).id();
      Map<String, Long> publics = publicHandle == KeyEntry.NONE ? Map.of() : Map.of(KeyCache.keyId(id), publicHandle);
      KeyEntry e = KeyCache.read(s, handle, publics, recorded);
      if (e == null) {
        throw new HsmException(ErrorCode.INTERNAL, "token made a key hsmbridge cannot classify");
      }
      return e;
    } catch (TokenException | RuntimeException e) {
      destroyQuietly(s, handle);
      if (publicHandle != KeyEntry.NONE) {
        destroyQuietly(s, publicHandle);
      }
      throw e;
    }
  }

  private static void destroyQuietly(Session s, long handle) {
    try {
      s.destroyObject(handle);
    } catch (TokenException | RuntimeException ignored) {
      // the original error is what matters; the scan reports leftovers
    }
  }

  static void checkUsage(KeySpec spec, KeyUsage usage) {
    if (!KeyUsage.allowedFor(spec).contains(usage)) {
      throw HsmException.badParam("usage " + usage + " is not allowed for " + spec + "; allowed: " + KeyUsage.allowedFor(spec));
    }
  }

  private static byte[] newId() {
    byte[] id = new byte[KeyCache.ID_BYTES];
    RANDOM.nextBytes(id);
    return id;
  }

  /**
   * How many differences between the token and this process's caches settles have seen and not adopted
   * yet, since the token was opened (see {@link DriftSuspicions}): a digest whose settles raised it is not
   * final, and is asked for again.
   */
  public long unconfirmedDrifts() {
    return unconfirmedDrifts.get();
  }

  /** A record store's own suspicions, counted with this token's. */
  <E> DriftSuspicions<E> driftSuspicions() {
    return new DriftSuspicions<>(unconfirmedDrifts);
  }

  /** Runs {@code work} under the token-object write lock, without a session. */
  void objectWritesLocked(Runnable work) {
    objectWrites.lock();
    try {
      work.run();
    } finally {
      objectWrites.unlock();
    }
  }

  /** Runs {@code work} in a session without the write lock: reads that tolerate concurrent writers. */
  <T> T readObjects(String what, SessionPool.SessionWork<T> work) {
    return pool.call(what, work);
  }

  /** Runs {@code work} under the token-object write lock (see {@link #objectWrites}); other classes of this package use it too. */
  <T> T writeObjects(String what, SessionPool.SessionWork<T> work) {
    objectWrites.lock();
    try {
      return pool.call(what, work);
    } finally {
      objectWrites.unlock();
    }
  }

  /**
   * Re-reads the token's objects into the key cache and returns the keys, sorted as {@link #list()}: keys
   * deleted or added behind this process's back (another process on the same token, an operator's
   * pkcs11-tool, a restore) become visible. Runs under the object-write lock, so a key this process creates
   * meanwhile is not lost from the cache by the swap. Costs one C_FindObjects pass over the token and a
   * read of every object (about 2 ms a key on SoftHSM2): not for the request path, and not while holding
   * the applier (see {@link #scanToken} and {@link #settle} for that).
   */
  public List<KeyInfo> rescan() {
    reload();
    return list();
  }

  /**
   * The token's keys as it holds them now, read in one session without any lock: the slow half of reading
   * the token at one applied index (a digest, a backup), done while entries keep being applied. Keys this
   * process changes meanwhile may be missing or stale in it; {@link #settle} tells them apart.
   */
  public TokenScan scanToken() {
    long mark = cache.mark(); // before the scan: every change from here on is seen as one
    ScanGaps gaps = new ScanGaps();
    try {
      Map<String, KeyEntry> entries = readObjects("scan keys", s -> cache.scan(s, gaps));
      return new TokenScan(mark, entries, !gaps.any());
    } catch (HsmException e) {
      return new TokenScan(mark, Map.of(), false); // nothing to correct the cache with: it stands as it is
    }
  }

  /**
   * A scan of the token's keys, and the cache's change number before it began; incomplete when an object
   * could not be read (ScanGaps): then it corrects nothing.
   */
  public static final class TokenScan {
    final long mark;
    final Map<String, KeyEntry> entries;
    final boolean complete;

    TokenScan(long mark, Map<String, KeyEntry> entries, boolean complete) {
      this.mark = mark;
      this.entries = entries;
      this.complete = complete;
    }

    public int size() {
      return entries.size();
    }
  }

  /**
   * The token's keys at this moment, from a {@link #scanToken} taken a while ago: for a key this process
   * changed since the scan began (an entry applied meanwhile) the cache is right, for any other key the scan
   * is (it read the token while nothing of ours changed the key). So, called with applies held, it gives the
   * token's keys at one applied index in memory time. Where a complete scan and the cache disagree about a
   * key nobody here changed, the token may have changed behind this process's back: that key alone is read
   * again, and when a later settle sees the same difference ({@link DriftSuspicions}: SoftHSM2 can miss an
   * object for a moment) the cache takes the token's view, as {@link #rescan} would, so that the drift
   * reaches the digest, the request path and repair. A change behind our back during the scan itself is seen by the
   * next one.
   */
  public List<KeyInfo> settle(TokenScan scan) {
    objectWrites.lock(); // no write of ours between the cache's snapshot and the corrections below
    try {
      Map<String, KeyEntry> cached = cache.snapshot();
      java.util.Set<String> ids = new java.util.HashSet<>(scan.entries.keySet());
      ids.addAll(cached.keySet());
      List<String> drifted = new ArrayList<>();
      for (String id : ids) {
        KeyEntry inCache = cached.get(id);
        KeyEntry onToken = scan.entries.get(id);
        boolean same = sameKey(inCache, onToken);
        if (scan.complete && !same && !cache.changedSince(id, scan.mark)) {
          drifted.add(id);
        }
      }
      if (drifted.isEmpty()) {
        if (scan.complete) {
          keySuspicions.noDifferences();
        }
      } else {
        // Changed behind our back, or only a scan (or a search) that missed an object: see DriftSuspicions.
        pool.call("confirm key drift", s -> keySuspicions.settle(drifted, cached::get, id -> cache.readOne(s, id),
            KeyManager::sameKey, (id, now) -> {
              if (now == null) {
                cache.remove(id);
              } else {
                cache.put(now);
              }
            }, "keys"));
      }
      return cache.list();
    } finally {
      objectWrites.unlock();
    }
  }

  /** The same key as far as its metadata goes; null (no such key) only equals null. */
  private static boolean sameKey(KeyEntry a, KeyEntry b) {
    return a == null ? b == null : b != null && a.info().equals(b.info());
  }

  /** Rescans the token (start-up, or after something changed behind our back). */
  void reload() {
    writeObjects("scan keys", s -> {
      cache.reload(s);
      return null;
    });
  }
}
