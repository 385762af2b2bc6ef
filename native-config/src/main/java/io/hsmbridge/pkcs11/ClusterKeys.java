package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.X509EncodedKeySpec;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.KeyPairTemplate;
import org.xipki.pkcs11.wrapper.Mechanism;
import org.xipki.pkcs11.wrapper.PKCS11KeyPair;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * The cluster wrapping key and what it is for: every HSM of a cluster holds the same AES-256 key,
 * created inside the first HSM as a trusted key, reaching the others only wrapped under a joiner's
 * transport key; user keys then travel between HSMs wrapped under it ({@link ReplicaBlob}). No key
 * exists in plaintext outside a token at any step.
 *
 * <p>Token facts this relies on (SoftHSM2, see the vendor profile): only the SO may set CKA_TRUSTED, only
 * at creation and only on a public object, so the SO creates the cluster key and the transport objects;
 * a key with CKA_WRAP_WITH_TRUSTED can be wrapped only by a trusted key; the cluster key's
 * CKA_UNWRAP_TEMPLATE forces what it unwraps to be sensitive, private and wrap-with-trusted, and the
 * token does not merge it, so every unwrap template here repeats those three.
 *
 * <p>Steps: the first HSM calls {@link #createClusterKey()}; a joiner calls {@link #createTransportKey()}
 * and sends the returned public key to a member, which calls {@link #wrapClusterKeyFor(byte[])} and sends
 * the blob back; the joiner calls {@link #installClusterKey(byte[])}. SO steps need the token's SO PIN.
 *
 * <p>Exportable user keys (CKA_WRAP_WITH_TRUSTED false) are not replicated by this key: its unwrap
 * template would turn them non-exportable. They travel under the cluster's <b>export key</b> instead
 * ({@link #EXPORT_KEY_ID}): an ordinary AES-256 wrapping key, itself replicated under the cluster key (so
 * it is wrap-with-trusted and leaves a token only under the cluster key), whose own unwrap template forces
 * what it unwraps to be sensitive. It cannot wrap a non-exportable key (it is not trusted), so it widens
 * nothing: it moves keys that their owner may export anyway, with their attributes intact.
 * Thread-safe; every method blocks on the token.
 */
public final class ClusterKeys {
  static final byte[] CLUSTER_KEY_ID = "hsmbridge.cluster-key.v1".getBytes(StandardCharsets.US_ASCII);
  static final byte[] TRANSPORT_KEY_ID = "hsmbridge.transport-key.v1".getBytes(StandardCharsets.US_ASCII);
  static final byte[] PEER_TRANSPORT_ID = "hsmbridge.peer-transport.v1".getBytes(StandardCharsets.US_ASCII);
  private static final int TRANSPORT_RSA_BITS = 3072;

  /**
   * The cluster key's generations (rotation: docs/replication.md, "Rotating the cluster key"). New replicas
   * are wrapped under the newest; a replica's blob names the generation it was wrapped under
   * ({@link #markGeneration}), so an HSM unwraps it under exactly that one, never by trial.
   */
  static final KeyGenerations CLUSTER_KEYS = new KeyGenerations("cluster key", CLUSTER_KEY_ID, "hsmbridge.cluster-key.g",
      "hsmbridge cluster key", ClusterKeys::clusterKeyTemplate);
  /**
   * A replica wrapped under cluster key generation g > 1 starts with these two bytes and g (2 bytes): 4 bytes,
   * so its length is 4 modulo 8, which no AES key wrap output is (a multiple of 8). A blob without them (every
   * blob made before rotation existed) was wrapped under generation 1.
   */
  private static final byte MARK_0 = (byte) 0xC7;
  private static final byte MARK_1 = (byte) 'G';

  /** The export key's id: the ASCII bytes of "hsmbridgeexportk" in hex (a reserved id, as the session-proof key's). */
  public static final String EXPORT_KEY_ID = "68736d6272696467656578706f72746b";
  static final String EXPORT_KEY_LABEL = "hsmbridge export key";

  private final SessionPool pool;
  private final KeyManager keys;
  private final PinSource soPin;
  private final VendorProfile profile;
  /** Each generation's handle, looked up once and then only checked. */
  private final java.util.Map<Integer, CachedHandle> clusterKeyHandles = new java.util.concurrent.ConcurrentHashMap<>();
  /** The newest generation this token holds (0: not read yet); raised when a rotation is installed. */
  private volatile int newestClusterKey;
  private final CachedHandle exportKeyHandle =
      new CachedHandle(CKO_SECRET_KEY, KeyCache.parseKeyId(EXPORT_KEY_ID), "this token holds no export key yet");

  ClusterKeys(SessionPool pool, KeyManager keys, PinSource soPin, VendorProfile profile) {
    this.pool = pool;
    this.keys = keys;
    this.soPin = soPin;
    this.profile = profile;
  }

  /** Whether this token holds the cluster key. */
  public boolean hasClusterKey() {
    return pool.call("find cluster key", s -> find(s, CKO_SECRET_KEY, CLUSTER_KEY_ID) != KeyEntry.NONE);
  }

  /** First HSM of a cluster: the SO generates the trusted cluster key inside the token. */
  public void createClusterKey() {
    requireNoClusterKey();
    pool.callAsSecurityOfficer(soPin, "create cluster key", s -> {
      s.generateKey(new Mechanism(CKM_AES_KEY_GEN), clusterKeyTemplate(1, CLUSTER_KEYS.label(1)).valueLen(32));
      newestClusterKey = 0;
      return null;
    });
    // The key cache is read again after every piece of SO work (SessionPool.afterSecurityOfficer).
  }

  /**
   * Joiner, step 1: the SO makes an RSA transport key pair (public objects, so the SO can use the
   * private half later; sensitive and never extractable). Returns the public key as SubjectPublicKeyInfo.
   */
  public byte[] createTransportKey() {
    requireNoClusterKey();
    byte[] spki = pool.callAsSecurityOfficer(soPin, "create transport key", s -> {
      destroyAll(s, CKO_PRIVATE_KEY, TRANSPORT_KEY_ID);
      destroyAll(s, CKO_PUBLIC_KEY, TRANSPORT_KEY_ID);
      // Public objects: the SO uses the private half later.
      return unwrappingPair(s, TRANSPORT_KEY_ID, "hsmbridge transport key", false);
    });
    return spki;
  }

  /**
   * Joiner: the public half of the transport key this token already holds (SubjectPublicKeyInfo), or null when
   * it holds none (or only half of one). A joiner keeps its transport key across restarts: the cluster CA
   * certifies that very key (the transport key certificate) before any member wraps the cluster key to it.
   */
  public byte[] transportPublicKey() {
    return pool.call("read transport key", s -> {
      long pub = find(s, CKO_PUBLIC_KEY, TRANSPORT_KEY_ID);
      if (pub == KeyEntry.NONE || find(s, CKO_PRIVATE_KEY, TRANSPORT_KEY_ID) == KeyEntry.NONE) {
        return null;
      }
      AttributeVector a = s.getAttrValues(pub, CKA_MODULUS, CKA_PUBLIC_EXPONENT);
      return PublicKeys.rsa(a.modulus(), a.publicExponent());
    });
  }

  /** Bytes of a cluster key check value ({@link #clusterKeyCheckValue}). */
  public static final int CHECK_VALUE_BYTES = 16;
  /** The fixed, public AES key a check value wraps: 32 zero bytes (a check value reveals nothing else). */
  private static final byte[] CHECK_KEY_VALUE = new byte[32];

  /**
   * The cluster key's check value: the first {@value #CHECK_VALUE_BYTES} bytes of SHA-256 over a fixed, public
   * AES key wrapped (AES-KWP, deterministic) under generation 1. Equal values mean the same key; the value says
   * nothing else about it. A joiner's transport key certificate carries it, so that a joiner installs only the
   * cluster's own key, whoever answers its request ({@link #installClusterKey(JoinerKeys, byte[])}).
   */
  public byte[] clusterKeyCheckValue() {
    return pool.call("cluster key check value", s -> checkValue(s, clusterKeyGeneration(s, 1)));
  }

  private static byte[] checkValue(Session s, long clusterKey) throws TokenException {
    long known = s.createObject(new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_AES).token(false)
        .private_(false).sensitive(false).extractable(true).value(CHECK_KEY_VALUE).encrypt(false).decrypt(false)
        .sign(false).verify(false).wrap(false).unwrap(false).derive(false));
    try {
      byte[] digest = java.security.MessageDigest.getInstance("SHA-256").digest(
          s.wrapKey(Mechanisms.aesKeyWrapPad(), clusterKey, known));
      return java.util.Arrays.copyOf(digest, CHECK_VALUE_BYTES);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    } finally {
      s.destroyObject(known);
    }
  }

  /**
   * Member: wraps the cluster key for a joiner. The SO imports the joiner's transport public key as a
   * trusted key (only a trusted key may wrap the cluster key), the User wraps with RSA-OAEP, and the
   * imported key is destroyed whatever happens. Synchronized: the imported key has a fixed id, so two
   * joiners served at once got the cluster key wrapped to the other's key (seen at {@code up --hsms 3}).
   */
  public byte[] wrapClusterKeyFor(byte[] joinerTransportSpki) {
    return wrapForJoiner(joinerTransportSpki).clusterKey();
  }

  /**
   * What a joiner receives, each wrapped to its transport key: the cluster key, every generation of the backup
   * key (PBK) this token holds (empty when none), and the backup key carrier (null when none).
   */
  public record JoinerKeys(byte[] clusterKey, java.util.List<WrappedGeneration> newerClusterKeys,
      java.util.List<WrappedGeneration> backupKeys, byte[] carrier) {
    /** A cluster key and backup keys without later cluster key generations. */
    public JoinerKeys(byte[] clusterKey, java.util.List<WrappedGeneration> backupKeys, byte[] carrier) {
      this(clusterKey, java.util.List.of(), backupKeys, carrier);
    }

    @Override
    public String toString() {
      return "JoinerKeys[wrapped, " + (1 + newerClusterKeys.size()) + " cluster key generations, " + backupKeys.size()
          + " backup key generations" + (carrier == null ? ", no carrier" : "") + "]";
    }
  }

  /** One PBK generation as it travels to a joiner: its number, its label (the rotation's id) and the blob. */
  public record WrappedGeneration(int generation, String label, byte[] wrapped) {
    @Override
    public String toString() {
      return "WrappedGeneration[" + generation + "]";
    }
  }

  /**
   * {@link #wrapClusterKeyFor} and the backup keys (every PBK generation) and the carrier with it, under one
   * import of the joiner's transport key: they travel exactly as the cluster key does (BackupKeys).
   */
  public JoinerKeys wrapForJoiner(byte[] joinerTransportSpki) {
    return underTrustedPeerKey(joinerTransportSpki, "joiner transport key", (s, peer, oaep) -> {
      java.util.List<WrappedGeneration> newer = wrapGenerations(s, CLUSTER_KEYS, peer, oaep);
      newer.removeIf(g -> g.generation() == 1); // travels as clusterKey
      long carrier = find(s, CKO_SECRET_KEY, BackupKeys.CARRIER_ID);
      return new JoinerKeys(s.wrapKey(oaep, peer, clusterKeyGeneration(s, 1)), newer,
          wrapGenerations(s, BackupKeys.PBKS, peer, oaep), carrier == KeyEntry.NONE ? null : s.wrapKey(oaep, peer, carrier));
    });
  }

  /** Every generation of {@code keys} this token holds, each wrapped to the peer, with its label. */
  private static java.util.List<WrappedGeneration> wrapGenerations(Session s, KeyGenerations keys, long peer, Mechanism oaep)
      throws TokenException {
    java.util.List<WrappedGeneration> wrapped = new java.util.ArrayList<>();
    for (java.util.Map.Entry<Integer, Long> g : keys.held(s).entrySet()) {
      wrapped.add(new WrappedGeneration(g.getKey(), s.getAttrValues(g.getValue(), CKA_LABEL).label(),
          s.wrapKey(oaep, peer, g.getValue())));
    }
    return wrapped;
  }

  /** Wraps with RSA-OAEP under a peer's public key that the SO imported as trusted for the call. */
  interface PeerWrap<T> {
    T wrap(Session s, long peerKey, Mechanism oaep) throws TokenException;
  }

  /**
   * The SO imports {@code spki} (an RSA public key) as a trusted wrapping key (only a trusted key may wrap
   * the cluster key, the PBK or anything else created wrap-with-trusted), the User runs {@code wrap} with
   * it, and the imported key is destroyed whatever happens. Synchronized: the imported key has a fixed id,
   * so two peers served at once got the cluster key wrapped to the other's key (seen at {@code up --hsms 3}).
   */
  synchronized <T> T underTrustedPeerKey(byte[] spki, String what, PeerWrap<T> wrap) {
    RSAPublicKey peer = parseRsa(spki, what);
    Mechanism oaep = Mechanisms.oaep(profile.oaepHashes().get(0));
    pool.callAsSecurityOfficer(soPin, "import " + what, s -> {
      destroyAll(s, CKO_PUBLIC_KEY, PEER_TRANSPORT_ID);
      s.createObject(new AttributeVector().class_(CKO_PUBLIC_KEY).keyType(CKK_RSA).token(true).private_(false)
          .trusted(true).id(PEER_TRANSPORT_ID).label("hsmbridge " + what).wrap(true).encrypt(false)
          .verify(false).modulus(peer.getModulus()).publicExponent(peer.getPublicExponent()));
      return null;
    });
    try {
      return pool.call("wrap under the " + what, s ->
          wrap.wrap(s, findOrFail(s, CKO_PUBLIC_KEY, PEER_TRANSPORT_ID, "the " + what + " vanished"), oaep));
    } finally {
      pool.callAsSecurityOfficer(soPin, "remove " + what, s -> {
        destroyAll(s, CKO_PUBLIC_KEY, PEER_TRANSPORT_ID);
        return null;
      });
    }
  }

  /** Joiner, step 2: the SO unwraps the cluster key with the transport key, as a trusted key; the transport pair is destroyed. */
  public void installClusterKey(byte[] wrappedClusterKey) {
    installClusterKey(new JoinerKeys(wrappedClusterKey, java.util.List.of(), null));
  }

  /** {@link #installClusterKey(byte[])} and the backup keys and carrier wrapped beside it ({@link #wrapForJoiner}). */
  public void installClusterKey(JoinerKeys keys) {
    installClusterKey(keys, null);
  }

  /**
   * As {@link #installClusterKey(JoinerKeys)}, but first, inside the token, the received cluster key's check value
   * is compared with {@code expectedCheckValue} (from the joiner's transport key certificate): a key of anyone
   * else's choosing is refused ({@link ErrorCode#ACCESS_DENIED}) before anything is written.
   *
   * @param expectedCheckValue {@link #clusterKeyCheckValue()} of the cluster's key; null: not checked
   */
  public void installClusterKey(JoinerKeys keys, byte[] expectedCheckValue) {
    requireNoClusterKey();
    String hash = profile.oaepHashes().get(0);
    try {
      pool.callAsSecurityOfficer(soPin, "install cluster key", s -> {
        long transport = findOrFail(s, CKO_PRIVATE_KEY, TRANSPORT_KEY_ID, "no transport key: call createTransportKey first");
        if (expectedCheckValue != null) {
          requireCheckValue(s, transport, keys.clusterKey(), hash, expectedCheckValue);
        }
        installGenerations(s, BackupKeys.PBKS, keys.backupKeys(), transport, hash);
        if (keys.carrier() != null && find(s, CKO_SECRET_KEY, BackupKeys.CARRIER_ID) == KeyEntry.NONE) {
          s.unwrapKey(Mechanisms.oaep(hash), transport, keys.carrier(), BackupKeys.carrierTemplate());
        }
        installGenerations(s, CLUSTER_KEYS, keys.newerClusterKeys(), transport, hash);
        s.unwrapKey(Mechanisms.oaep(hash), transport, keys.clusterKey(), clusterKeyTemplate(1, CLUSTER_KEYS.label(1)));
        newestClusterKey = 0; // read again at the next wrap: the joiner may hold later generations now
        destroyAll(s, CKO_PRIVATE_KEY, TRANSPORT_KEY_ID);
        destroyAll(s, CKO_PUBLIC_KEY, TRANSPORT_KEY_ID);
        return null;
      });
    } catch (HsmException e) {
      throw unwrapFailure(e, "cluster key unwrap failed");
    }
  }

  /** Unwraps the received key as a session object only, compares its check value, and destroys it. */
  private static void requireCheckValue(Session s, long transport, byte[] wrapped, String hash, byte[] expected)
      throws TokenException {
    long probe = s.unwrapKey(Mechanisms.oaep(hash), transport, wrapped, new AttributeVector().class_(CKO_SECRET_KEY)
        .keyType(CKK_AES).token(false).private_(false).sensitive(true).extractable(false).wrap(true).unwrap(false)
        .encrypt(false).decrypt(false).sign(false).verify(false).derive(false));
    try {
      if (!java.security.MessageDigest.isEqual(checkValue(s, probe), expected)) {
        throw new HsmException(ErrorCode.ACCESS_DENIED, "the cluster key received does not match the check value"
            + " in this HSM's transport key certificate: the member that answered does not hold this cluster's key");
      }
    } finally {
      s.destroyObject(probe);
    }
  }

  private static void installGenerations(Session s, KeyGenerations keys, java.util.List<WrappedGeneration> generations,
      long transport, String hash) throws TokenException {
    for (WrappedGeneration g : generations) {
      if (find(s, CKO_SECRET_KEY, keys.id(g.generation())) == KeyEntry.NONE) {
        s.unwrapKey(Mechanisms.oaep(hash), transport, g.wrapped(), keys.template(g.generation(), g.label()));
      }
    }
  }

  // ------------------------------------------------------------------------------- rotation

  /** The cluster key generations this token holds, oldest first. */
  public java.util.List<Integer> clusterKeyGenerations() {
    return pool.call("list cluster keys", CLUSTER_KEYS::list);
  }

  /**
   * Origin of a cluster key rotation: the SO makes the next generation as a session object, wrapped under the
   * carrier; every HSM installs it from the mutation log ({@link #installClusterKeyGeneration}).
   */
  public NextGeneration prepareClusterKeyRotation() {
    return CLUSTER_KEYS.prepare(pool, soPin);
  }

  /**
   * Every HSM, applying a cluster key rotation (see {@link KeyGenerations#install}); from then on this token
   * wraps new replicas under it. Replicas wrapped under older generations still install: their blobs say
   * which.
   */
  public boolean installClusterKeyGeneration(int generation, String label, byte[] wrapped) {
    boolean installed = CLUSTER_KEYS.install(pool, soPin, generation, label, wrapped);
    newestClusterKey = 0; // read again at the next wrap
    return installed;
  }

  /**
   * A blob wrapped under cluster key generation {@code generation}: unchanged for 1, else with the generation's
   * 4-byte mark in front ({@link #MARK_0}).
   */
  static byte[] markGeneration(int generation, byte[] wrapped) {
    if (generation == 1) {
      return wrapped;
    }
    byte[] marked = new byte[wrapped.length + 4];
    marked[0] = MARK_0;
    marked[1] = MARK_1;
    marked[2] = (byte) (generation >>> 8);
    marked[3] = (byte) generation;
    System.arraycopy(wrapped, 0, marked, 4, wrapped.length);
    return marked;
  }

  /** The cluster key generation a replica's blob was wrapped under (1 when it carries no mark). */
  static int blobGeneration(byte[] wrapped) {
    if (wrapped.length % 8 != 4) {
      return 1;
    }
    if (wrapped[0] != MARK_0 || wrapped[1] != MARK_1) {
      throw HsmException.badParam("a replica's wrapped key is neither an AES key wrap nor one marked with its cluster key generation");
    }
    int generation = ((wrapped[2] & 0xff) << 8) | (wrapped[3] & 0xff);
    if (generation < 2) {
      throw HsmException.badParam("a replica's wrapped key is marked with cluster key generation " + generation);
    }
    return generation;
  }

  /**
   * A blob the token could not unwrap (SoftHSM2 often says only CKR_GENERAL_ERROR or a template error):
   * CRYPTO_FAILURE with {@code reason}; any other failure as it is.
   */
  static HsmException unwrapFailure(HsmException e, String reason) {
    if (e.ckr() != null && (e.code() == ErrorCode.INTERNAL || e.code() == ErrorCode.INVALID_PARAMETER)) {
      return new HsmException(ErrorCode.CRYPTO_FAILURE, reason, e.ckr(), reason + " (" + e.serverDetail() + ")", e);
    }
    return e;
  }

  /**
   * Wraps a user key, with the metadata to recreate it elsewhere: under the cluster key, or, for an
   * exportable key, under the export key (install it with {@link #installExportableReplica}).
   */
  public ReplicaBlob wrapForReplication(String keyId) {
    KeyEntry e = keys.entry(keyId);
    if (!e.info().extractable()) {
      // The token would say CKR_KEY_UNEXTRACTABLE: no key, trusted or not, may wrap it.
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "key " + e.info().keyId()
          + " is never extractable (CKA_EXTRACTABLE=false): a never-extractable key cannot be replicated to other HSMs");
    }
    boolean exportable = e.info().exportable();
    return pool.call("wrap key for replication", s -> {
      if (exportable) {
        return replicaBlob(s, keys.live(keyId), exportKey(s));
      }
      int generation = newestClusterKey(s);
      ReplicaBlob b = replicaBlob(s, keys.live(keyId), clusterKeyGeneration(s, generation));
      return new ReplicaBlob(b.keyId(), b.label(), b.spec(), b.usage(), markGeneration(generation, b.wrapped()), b.ecPoint());
    });
  }

  /**
   * {@code e} wrapped (AES key wrap with padding) under {@code wrappingKey}, with its metadata and EC point;
   * {@code e} read inside the same session work ({@link KeyManager#live}).
   */
  static ReplicaBlob replicaBlob(Session s, KeyEntry e, long wrappingKey) throws TokenException {
    byte[] wrapped = wrapUnderClusterKey(s, wrappingKey, e.handle(), e.spec());
    byte[] point = hasPoint(e.spec()) ? s.getAttrValues(e.publicHandle(), CKA_EC_POINT).ecPoint() : null;
    return new ReplicaBlob(e.info().keyId(), e.info().label(), e.spec(), e.info().usage(), wrapped, point);
  }

  /**
   * How a cluster creates a key: generates it inside this token as SESSION objects (CKA_TOKEN=false, with
   * exactly the policy of a non-exportable token key: sensitive, extractable only under a trusted key,
   * private, explicit usage flags), wraps it under the cluster key, and destroys the session objects
   * whatever happens. Nothing is written to the token. The blob then goes through the mutation log and
   * every HSM, this one included, installs it with {@link #installReplica}: a key exists on the token of
   * no HSM before the cluster has ordered its creation.
   *
   * @param keyId the new key's id, 32 hex characters (16 bytes of CKA_ID), chosen by the caller so that
   *     a retried request names the same key
   * @throws HsmException INVALID_PARAMETER for a bad key id, label or usage; NOT_ALLOWED_BY_POLICY when
   *     this token holds no cluster key or cannot wrap keys of this spec (SoftHSM2 2.6.1: Ed25519)
   */
  public ReplicaBlob generateForReplication(KeySpec spec, KeyUsage usage, String label, String keyId) {
    return generateForReplication(spec, usage, label, keyId, false);
  }

  /**
   * {@link #generateForReplication(KeySpec, KeyUsage, String, String)} of an exportable key: made with
   * the policy of an exportable token key (sensitive, extractable by any wrapping key) and wrapped under
   * the export key, for {@link #installExportableReplica}.
   *
   * @throws HsmException NOT_ALLOWED_BY_POLICY when this token holds no export key yet
   */
  public ReplicaBlob generateExportableForReplication(KeySpec spec, KeyUsage usage, String label, String keyId) {
    return generateForReplication(spec, usage, label, keyId, true);
  }

  /** Whether this token holds the cluster's export key (installed through the log). */
  public boolean hasExportKey() {
    return keys.holds(EXPORT_KEY_ID);
  }

  /**
   * A new export key, generated inside this token and wrapped under the cluster key, for an
   * INSTALL_REPLICA entry that puts it into every HSM; nothing is written to the token.
   */
  public ReplicaBlob newExportKey() {
    return generateForReplication(KeySpec.AES_256, KeyUsage.WRAP_UNWRAP, EXPORT_KEY_LABEL, EXPORT_KEY_ID, false);
  }

  /** Recreates an exportable key from a blob wrapped under the export key (see {@link #generateExportableForReplication}). */
  public KeyInfo installExportableReplica(ReplicaBlob blob) {
    return keys.installReplica(blob, this::exportKey, true);
  }

  private long exportKey(Session s) throws TokenException {
    return exportKeyHandle.get(s);
  }

  private ReplicaBlob generateForReplication(KeySpec spec, KeyUsage usage, String label, String keyId, boolean exportable) {
    byte[] id = KeyCache.parseKeyId(keyId);
    if (id == null) {
      throw HsmException.badParam("key id must be 32 hex characters");
    }
    if (spec == null || usage == null || label == null) {
      throw HsmException.badParam("spec, usage and label are required");
    }
    KeyManager.checkUsage(spec, usage);
    KeyTemplates.Request r = new KeyTemplates.Request(spec, usage, label, exportable, id).asSessionObjects();
    // Session objects never touch the token's object store, so this needs no object-write lock and runs in parallel.
    return pool.call("generate key for replication", s -> {
      int generation = exportable ? 1 : newestClusterKey(s);
      long clusterKey = exportable ? exportKey(s) : clusterKeyGeneration(s, generation);
      long key = KeyEntry.NONE;
      long pub = KeyEntry.NONE;
      try {
        if (spec.family().isAsymmetric()) {
          PKCS11KeyPair pair = s.generateKeyPair(KeyTemplates.generationMechanism(spec), KeyTemplates.keyPair(r));
          key = pair.getPrivateKey();
          pub = pair.getPublicKey();
        } else {
          key = s.generateKey(KeyTemplates.generationMechanism(spec), KeyTemplates.secretForGenerate(r));
        }
        byte[] wrapped = markGeneration(generation, wrapUnderClusterKey(s, clusterKey, key, spec));
        byte[] point = hasPoint(spec) ? s.getAttrValues(pub, CKA_EC_POINT).ecPoint() : null;
        return new ReplicaBlob(KeyCache.keyId(id), label, spec, usage, wrapped, point);
      } finally {
        // Closing the session would destroy them too, but the pool keeps sessions open.
        destroyQuietly(s, key);
        destroyQuietly(s, pub);
      }
    });
  }

  private static byte[] wrapUnderClusterKey(Session s, long clusterKey, long key, KeySpec spec) throws TokenException {
    try {
      return s.wrapKey(Mechanisms.aesKeyWrapPad(), clusterKey, key);
    } catch (org.xipki.pkcs11.wrapper.PKCS11Exception x) {
      if (x.getErrorCode() != CKR_KEY_NOT_WRAPPABLE) {
        throw x;
      }
      // e.g. SoftHSM2 2.6.1 cannot wrap Ed25519 private keys at all, even under a trusted key.
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "this token cannot wrap " + spec
          + " private keys (CKR_KEY_NOT_WRAPPABLE), so such a key cannot be replicated to other HSMs");
    }
  }

  private static boolean hasPoint(KeySpec spec) {
    return spec.family() == KeySpec.Family.EC || spec.family() == KeySpec.Family.EDWARDS;
  }

  private static void destroyQuietly(Session s, long handle) {
    if (handle == KeyEntry.NONE) {
      return;
    }
    try {
      s.destroyObject(handle);
    } catch (TokenException | RuntimeException ignored) {
      // a session object: it goes at the latest when its session is closed
    }
  }

  /**
   * Recreates a replicated key on this token, with the same id, label, spec, usage and policy, unwrapped under
   * the cluster key generation its blob names.
   */
  public KeyInfo installReplica(ReplicaBlob blob) {
    byte[] marked = blob.wrapped();
    int generation = blobGeneration(marked);
    ReplicaBlob plain = generation == 1 ? blob : new ReplicaBlob(blob.keyId(), blob.label(), blob.spec(), blob.usage(),
        java.util.Arrays.copyOfRange(marked, 4, marked.length), blob.ecPoint());
    return keys.installReplica(plain, s -> clusterKeyGeneration(s, generation), false);
  }

  /** A cluster key generation's handle, looked up once and then only checked ({@link CachedHandle}). */
  private long clusterKeyGeneration(Session s, int generation) throws TokenException {
    return clusterKeyHandles.computeIfAbsent(generation, g -> new CachedHandle(CKO_SECRET_KEY, CLUSTER_KEYS.id(g),
        g == 1 ? "this token holds no cluster key" : "this token holds no cluster key generation " + g
            + " (its rotation is not applied here yet)")).get(s);
  }

  /** The newest cluster key generation this token holds: the one new replicas are wrapped under. */
  private int newestClusterKey(Session s) throws TokenException {
    int newest = newestClusterKey;
    if (newest == 0) {
      java.util.TreeMap<Integer, Long> held = CLUSTER_KEYS.held(s);
      newest = held.isEmpty() ? 1 : held.lastKey(); // none: the lookup of generation 1 says so
      newestClusterKey = newest;
    }
    return newest;
  }

  /** A cluster key: trusted, public (SoftHSM2 sets CKA_TRUSTED only on public objects), sensitive, wraps only with trusted keys. */
  private static AttributeVector clusterKeyTemplate(int generation, String label) {
    return new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_AES).token(true).private_(false).trusted(true)
        .sensitive(true).extractable(true).wrapWithTrusted(true).id(CLUSTER_KEYS.id(generation))
        .label(label).wrap(true).unwrap(true).encrypt(false).decrypt(false).sign(false)
        .verify(false).derive(false).unwrapTemplate(replicaUnwrapTemplate());
  }

  /** What the cluster key forces on everything it unwraps; every replica template repeats it. */
  static AttributeVector replicaUnwrapTemplate() {
    return new AttributeVector().sensitive(true).private_(true).wrapWithTrusted(true);
  }

  /**
   * Makes an RSA-3072 pair that only wraps (public half) and unwraps (private half: sensitive, never
   * extractable, no decrypt or sign); returns the public half as SubjectPublicKeyInfo.
   *
   * @param privateObject whether the pair needs the User's login (else the SO can use it)
   */
  static byte[] unwrappingPair(Session s, byte[] id, String label, boolean privateObject) throws TokenException {
    AttributeVector pub = new AttributeVector().token(true).private_(false).id(id).label(label).encrypt(false)
        .wrap(true).verify(false).modulusBits(TRANSPORT_RSA_BITS).publicExponent(BigInteger.valueOf(65537));
    AttributeVector priv = new AttributeVector().token(true).private_(privateObject).id(id).label(label)
        .sensitive(true).extractable(false).decrypt(false).sign(false).unwrap(true).derive(false);
    PKCS11KeyPair pair = s.generateKeyPair(new Mechanism(CKM_RSA_PKCS_KEY_PAIR_GEN), new KeyPairTemplate(priv, pub));
    AttributeVector a = s.getAttrValues(pair.getPublicKey(), CKA_MODULUS, CKA_PUBLIC_EXPONENT);
    return PublicKeys.rsa(a.modulus(), a.publicExponent());
  }

  /** The OAEP hash this token's profile wraps with (the first it lists). */
  String oaepHash() {
    return profile.oaepHashes().get(0);
  }

  private void requireNoClusterKey() {
    if (hasClusterKey()) {
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "this token already holds a cluster key");
    }
  }

  private static RSAPublicKey parseRsa(byte[] spki, String what) {
    try {
      return (RSAPublicKey) KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(spki));
    } catch (Exception e) {
      throw HsmException.badParam("the " + what + " is not an RSA SubjectPublicKeyInfo");
    }
  }

  static long find(Session s, long cls, byte[] id) throws TokenException {
    long[] found = s.findObjectsSingle(new AttributeVector().class_(cls).id(id), 2);
    return found.length == 0 ? KeyEntry.NONE : found[0];
  }

  static long findOrFail(Session s, long cls, byte[] id, String message) throws TokenException {
    long h = find(s, cls, id);
    if (h == KeyEntry.NONE) {
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, message);
    }
    return h;
  }

  static void destroyAll(Session s, long cls, byte[] id) throws TokenException {
    for (long h : SearchGuard.find(s, new AttributeVector().class_(cls).id(id))) {
      s.destroyObject(h);
    }
  }
}
