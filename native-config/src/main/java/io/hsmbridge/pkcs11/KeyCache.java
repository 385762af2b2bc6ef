package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * Key id -> handles, filled by one scan at start-up and kept current by every mutation this process
 * makes, so a request never runs C_FindObjects (which slows down sharply as objects accumulate).
 *
 * <p>Only objects that look like hsmbridge user keys are cached: 16-byte CKA_ID, a known spec, one
 * clear usage, not trusted. Anything else on the token (internal objects, foreign keys) is ignored.
 *
 * <p>Spec records: a token may leave CKA_VALUE_LEN of an unwrapped secret key at 0 (SoftHSM2 2.6 does,
 * and refuses CKA_VALUE_LEN in the unwrap template), so the size of an imported AES or HMAC key cannot
 * be read back. {@link KeyManager#importWrapped} measures it and stores the spec in a private data
 * object (CKA_APPLICATION {@value #SPEC_RECORD_APPLICATION}, CKA_LABEL = key id, CKA_VALUE = spec
 * name), which is used only when the key's own CKA_VALUE_LEN says nothing.
 */
final class KeyCache {
  static final int ID_BYTES = 16;
  static final String SPEC_RECORD_APPLICATION = "hsmbridge.keyspec";
  private static final Logger LOG = Logger.getLogger(KeyCache.class.getName());
  private static final HexFormat HEX = HexFormat.of();

  private final Map<String, KeyEntry> byId = new ConcurrentHashMap<>();
  /**
   * Change numbers, for reading the token at one applied index without holding the applier for a scan
   * (KeyManager.settle): every put and remove takes the next number and records it for its key id; a
   * reload, which replaces everything with what the token holds, takes one for all keys.
   */
  private final java.util.concurrent.atomic.AtomicLong changes = new java.util.concurrent.atomic.AtomicLong();
  private final Map<String, Long> changedAt = new ConcurrentHashMap<>();
  private volatile long reloadedAt;

  static String keyId(byte[] id) {
    return HEX.formatHex(id);
  }

  /** Parses a client key id; null when it is not 32 hex characters. */
  static byte[] parseKeyId(String keyId) {
    if (keyId == null || keyId.length() != 2 * ID_BYTES) {
      return null;
    }
    try {
      return HEX.parseHex(keyId.toLowerCase(java.util.Locale.ROOT));
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  KeyEntry get(String keyId) {
    KeyEntry e = keyId == null ? null : byId.get(keyId.toLowerCase(java.util.Locale.ROOT));
    if (e == null) {
      throw HsmException.unknownKey(keyId == null ? "(none)" : keyId);
    }
    return e;
  }

  /** The entry for a key id, or null. */
  KeyEntry find(String keyId) {
    return keyId == null ? null : byId.get(keyId.toLowerCase(java.util.Locale.ROOT));
  }

  void put(KeyEntry entry) {
    byId.put(entry.info().keyId(), entry);
    changedAt.put(entry.info().keyId(), changes.incrementAndGet());
  }

  void remove(String keyId) {
    byId.remove(keyId);
    changedAt.put(keyId, changes.incrementAndGet());
  }

  /** The number of the latest change: a later {@link #changedSince} tells which keys changed after it. */
  long mark() {
    return changes.get();
  }

  /** Whether this process changed the key (or re-read the whole token) after {@code mark}. */
  boolean changedSince(String keyId, long mark) {
    if (reloadedAt > mark) {
      return true;
    }
    Long at = changedAt.get(keyId);
    return at != null && at > mark;
  }

  int size() {
    return byId.size();
  }

  List<KeyInfo> list() {
    List<KeyInfo> out = new ArrayList<>();
    byId.values().forEach(e -> out.add(e.info()));
    out.sort(Comparator.comparing(KeyInfo::label).thenComparing(KeyInfo::keyId));
    return out;
  }

  /**
   * Finds the objects of every cached key again after SO work, reading one attribute (CKA_ID) per key object
   * instead of a whole {@link #reload}: SoftHSM2 gives private objects new handles once the User logs in
   * again, and SO work changes no user key. The pool holds every session meanwhile (a backup's two SO steps
   * held them for a reload of ~2 ms per key: 0.7 s with 350 keys, a stall every request felt).
   *
   * @return false, changing nothing, when some cached key's object is missing or not alone with its id
   *     (the caller then reloads)
   */
  boolean rebind(Session session) throws TokenException {
    Map<String, Long> keyObjects = handlesById(session, CKO_SECRET_KEY, CKO_PRIVATE_KEY);
    Map<String, Long> publicObjects = handlesById(session, CKO_PUBLIC_KEY);
    Map<String, KeyEntry> rebound = new HashMap<>();
    for (KeyEntry e : byId.values()) {
      String keyId = e.info().keyId();
      Long handle = keyObjects.get(keyId);
      Long pub = e.publicHandle() == KeyEntry.NONE ? Long.valueOf(KeyEntry.NONE) : publicObjects.get(keyId);
      if (handle == null || handle == AMBIGUOUS || pub == null || pub == AMBIGUOUS) {
        LOG.fine(() -> "key " + keyId + " not found alone after SO work: reloading the key cache");
        return false;
      }
      rebound.put(keyId, new KeyEntry(e.info(), handle, pub));
    }
    byId.putAll(rebound); // same keys, same descriptions: no change number taken
    return true;
  }

  /** A key id held by more than one object of the classes searched. */
  private static final long AMBIGUOUS = Long.MIN_VALUE;

  /** Token objects of the given classes by key id (16-byte CKA_ID); {@link #AMBIGUOUS} when an id repeats. */
  private static Map<String, Long> handlesById(Session session, long... classes) throws TokenException {
    Map<String, Long> out = new HashMap<>();
    for (long cls : classes) {
      for (long h : SearchGuard.find(session, new AttributeVector().class_(cls).token(true))) {
        byte[] id = session.getAttrValues(h, CKA_ID).id();
        if (id != null && id.length == ID_BYTES) {
          out.merge(keyId(id), h, (a, b) -> AMBIGUOUS);
        }
      }
    }
    return out;
  }

  /** Replaces the cache with what the token holds now. */
  void reload(Session session) throws TokenException {
    Map<String, KeyEntry> fresh = scan(session);
    // Entries replaced, then the gone ones removed: a concurrent reader never finds an existing key missing.
    byId.putAll(fresh);
    byId.keySet().retainAll(fresh.keySet());
    reloadedAt = changes.incrementAndGet();
    changedAt.clear(); // reloadedAt covers every key up to here
  }

  /** What the token holds now, by key id, without touching the cache; any unreadable object fails it. */
  Map<String, KeyEntry> scan(Session session) throws TokenException {
    return scan(session, null);
  }

  /**
   * As {@link #scan(Session)}, beside concurrent writers when {@code gaps} is given: an object that cannot be
   * read (destroyed since the search, or invalid for an instant) is left out and noted in {@code gaps}.
   */
  Map<String, KeyEntry> scan(Session session, ScanGaps gaps) throws TokenException {
    Map<String, KeySpec> recorded = readSpecRecords(session);
    Map<String, Long> publics = new HashMap<>();
    for (long h : SearchGuard.find(session, new AttributeVector().class_(CKO_PUBLIC_KEY).token(true))) {
      byte[] id = idOf(session, h, gaps);
      if (id != null && id.length == ID_BYTES) {
        publics.put(keyId(id), h);
      }
    }
    Map<String, KeyEntry> fresh = new HashMap<>();
    for (long cls : new long[] {CKO_SECRET_KEY, CKO_PRIVATE_KEY}) {
      for (long h : SearchGuard.find(session, new AttributeVector().class_(cls).token(true))) {
        KeyEntry entry = readIfPresent(session, h, publics, recorded, gaps);
        if (entry != null) {
          fresh.put(entry.info().keyId(), entry);
        }
      }
    }
    return fresh;
  }

  /** One key as the token holds it now (null when the token has no such user key): confirms a drift. */
  KeyEntry readOne(Session session, String keyId) throws TokenException {
    byte[] id = parseKeyId(keyId);
    if (id == null) {
      return null;
    }
    Map<String, Long> publics = new HashMap<>();
    for (long h : SearchGuard.find(session, new AttributeVector().class_(CKO_PUBLIC_KEY).token(true).id(id))) {
      publics.put(keyId(id), h);
    }
    Map<String, KeySpec> recorded = new HashMap<>();
    for (long h : SearchGuard.find(session, specRecordsOf(keyId(id)))) {
      try {
        recorded.put(keyId(id), KeySpec.valueOf(new String(session.getAttrValues(h, CKA_VALUE).value(),
            java.nio.charset.StandardCharsets.US_ASCII)));
      } catch (RuntimeException e) {
        LOG.warning("ignoring an unreadable key spec record for " + keyId(id));
      }
    }
    for (long cls : new long[] {CKO_SECRET_KEY, CKO_PRIVATE_KEY}) {
      for (long h : SearchGuard.find(session, new AttributeVector().class_(cls).token(true).id(id))) {
        KeyEntry entry = read(session, h, publics, recorded);
        if (entry != null) {
          return entry;
        }
      }
    }
    return null;
  }

  private static byte[] idOf(Session session, long handle, ScanGaps gaps) throws TokenException {
    try {
      return session.getAttrValues(handle, CKA_ID).id();
    } catch (org.xipki.pkcs11.wrapper.PKCS11Exception e) {
      ScanGaps.note(gaps, e);
      return null;
    }
  }

  private static KeyEntry readIfPresent(Session session, long handle, Map<String, Long> publics,
      Map<String, KeySpec> recorded, ScanGaps gaps) throws TokenException {
    try {
      return read(session, handle, publics, recorded);
    } catch (org.xipki.pkcs11.wrapper.PKCS11Exception e) {
      ScanGaps.note(gaps, e);
      return null;
    }
  }

  /** The cached entries by key id, copied: what this process believes the token holds. */
  Map<String, KeyEntry> snapshot() {
    return new HashMap<>(byId);
  }

  /** The template of the spec record for a secret key (see the class comment). */
  static AttributeVector specRecord(String keyId, KeySpec spec) {
    return specRecordsOf(keyId).private_(true).modifiable(false)
        .value(spec.name().getBytes(java.nio.charset.StandardCharsets.US_ASCII));
  }

  /** Search template for the spec records of one key. */
  static AttributeVector specRecordsOf(String keyId) {
    return new AttributeVector().class_(CKO_DATA).token(true).application(SPEC_RECORD_APPLICATION).label(keyId);
  }

  private static Map<String, KeySpec> readSpecRecords(Session session) throws TokenException {
    Map<String, KeySpec> out = new HashMap<>();
    AttributeVector all = new AttributeVector().class_(CKO_DATA).token(true).application(SPEC_RECORD_APPLICATION);
    for (long h : SearchGuard.find(session, all)) {
      AttributeVector a = session.getAttrValues(h, CKA_LABEL, CKA_VALUE);
      try {
        out.put(a.label(), KeySpec.valueOf(new String(a.value(), java.nio.charset.StandardCharsets.US_ASCII)));
      } catch (RuntimeException e) {
        LOG.warning("ignoring an unreadable key spec record for " + a.label());
      }
    }
    return out;
  }

  /** Reads one secret/private key object into an entry, or null when it is not a user key. */
  static KeyEntry read(Session session, long handle, Map<String, Long> publics) throws TokenException {
    return read(session, handle, publics, Map.of());
  }

  /** As above; {@code recorded} holds spec records by key id. */
  static KeyEntry read(Session session, long handle, Map<String, Long> publics, Map<String, KeySpec> recorded)
      throws TokenException {
    AttributeVector a = session.getAttrValues(handle, CKA_CLASS, CKA_ID, CKA_LABEL, CKA_KEY_TYPE, CKA_ENCRYPT,
        CKA_DECRYPT, CKA_SIGN, CKA_UNWRAP, CKA_EXTRACTABLE, CKA_SENSITIVE, CKA_WRAP_WITH_TRUSTED, CKA_TRUSTED);
    byte[] id = a.id();
    if (id == null || id.length != ID_BYTES || Boolean.TRUE.equals(a.trusted())) {
      return null;
    }
    KeySpec spec = specOf(session, handle, a.class_(), a.keyType(), recorded.get(keyId(id)));
    boolean secret = a.class_() == CKO_SECRET_KEY;
    boolean encrypt = Boolean.TRUE.equals(a.decrypt()) || (secret && Boolean.TRUE.equals(a.encrypt()));
    KeyUsage usage = KeyEntry.usageOf(encrypt, Boolean.TRUE.equals(a.sign()), Boolean.TRUE.equals(a.unwrap()));
    String keyId = keyId(id);
    if (spec == null || usage == null) {
      LOG.fine(() -> "ignoring object " + keyId + ": not an hsmbridge key spec/usage");
      return null;
    }
    long pub = KeyEntry.NONE;
    if (!secret) {
      Long p = publics.get(keyId);
      if (p == null) {
        LOG.warning("private key " + keyId + " has no public key object; ignoring it");
        return null;
      }
      pub = p;
    }
    boolean extractable = Boolean.TRUE.equals(a.extractable());
    boolean exportable = extractable && !Boolean.TRUE.equals(a.wrapWithTrusted());
    String label = a.label() == null ? "" : a.label();
    KeyInfo info = new KeyInfo(keyId, label, spec, usage, exportable, extractable, Boolean.TRUE.equals(a.sensitive()));
    return new KeyEntry(info, handle, pub);
  }

  private static KeySpec specOf(Session session, long handle, Long cls, Long keyType, KeySpec recorded)
      throws TokenException {
    if (cls == null || keyType == null) {
      return null;
    }
    if (keyType == CKK_AES || keyType == CKK_GENERIC_SECRET) {
      KeySpec.Family family = keyType == CKK_AES ? KeySpec.Family.AES : KeySpec.Family.HMAC;
      Integer len = session.getAttrValues(handle, CKA_VALUE_LEN).valueLen();
      if (len == null || len == 0) {
        // the token did not record the size (unwrapped key): use the spec measured at import
        return recorded != null && recorded.family() == family ? recorded : null;
      }
      for (KeySpec s : KeySpec.values()) {
        if (s.family() == family && s.bits() == 8 * len) {
          return s;
        }
      }
      return null;
    }
    if (keyType == CKK_RSA) {
      java.math.BigInteger n = session.getAttrValues(handle, CKA_MODULUS).modulus();
      int bits = n == null ? 0 : n.bitLength();
      return bits == 2048 ? KeySpec.RSA_2048 : bits == 3072 ? KeySpec.RSA_3072 : bits == 4096 ? KeySpec.RSA_4096 : null;
    }
    if (keyType == CKK_EC || keyType == CKK_EC_EDWARDS) {
      byte[] params = session.getAttrValues(handle, CKA_EC_PARAMS).ecParams();
      return params == null ? null : Curves.specOf(params);
    }
    return null;
  }
}
