package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.ErrorCode;
import java.nio.charset.StandardCharsets;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Mechanism;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * The token's part of a backup (docs/backups.md): the persistent backup key (PBK), the ephemeral backup
 * key (EBK) of one backup, and the manifest seal. Every step runs inside the token; no key's value is
 * ever outside it.
 *
 * <p>Keys and why they are built so (SoftHSM2 facts in shared/PKCS11-FACTS.md):
 * <ul>
 *   <li><b>PBK</b>: AES-256, trusted, made by the SO beside the cluster key (a public object: SoftHSM2
 *       sets CKA_TRUSTED only on those) and carried to joiners the way the cluster key is. It wraps only
 *       EBKs. Its unwrap template demands CKA_TRUSTED=true of what it unwraps, so only the SO can unwrap
 *       an EBK: a User (the agent's PIN, or whoever stole it) cannot unwrap one as a key of its own making
 *       (without an unwrap template, or with DECRYPT for a raw-AES attack on the key wraps).</li>
 *   <li><b>EBK</b>: AES-256, fresh per backup, made by the SO as a trusted key so that it may wrap keys
 *       marked wrap-with-trusted; it wraps every non-exportable key, and the manifest key. Destroyed
 *       when the backup is written. On restore the SO unwraps it with the unwrap template every replica
 *       has (sensitive, private, wrap-with-trusted), so the keys it gives back are as protected as they
 *       were; it is destroyed when the restore ends, whatever happens.</li>
 *   <li><b>Manifest key</b>: AES-256 session object of the User, made per backup, sealing the manifest
 *       (users, ACLs, settings, the keys' metadata and the blobs' digests) with AES-GCM, and wrapped
 *       under the EBK. It never touches the token's object store.</li>
 * </ul>
 * Exportable keys are backed up as they are replicated, under the cluster's export key (itself backed up
 * under the EBK): their blobs keep them exportable, and the EBK never unwraps a key as exportable.
 *
 * <p><b>Generations</b> (rotation, docs/backups.md "Rotating the backup key"): the first PBK is generation 1
 * ({@link #PBK_ID}); each rotation adds the next ({@link #pbkId}) on every HSM and keeps the older ones, so
 * that older backups still open. A backup is made under the newest generation the token holds; a restore
 * tries them newest first (AES key wrap with padding tells a wrong key from the right one). A new generation
 * reaches the cluster's HSMs through the mutation log, wrapped under the <b>carrier</b> ({@link #CARRIER_ID}):
 * an AES-256 key made beside the first PBK and carried to joiners as the PBK is, whose only use is to carry
 * new generations of the PBK and of the cluster key (ClusterKeys). Its unwrap template demands of what it
 * unwraps what both are (trusted, public, sensitive, extractable only under a trusted key, no
 * encrypt/decrypt/sign/verify), so only the SO can unwrap with it,
 * and only a key that is as protected as a PBK.
 * Thread-safe: one backup or restore at a time per token (synchronized).
 */
public final class BackupKeys {
  /** Generation 1 of the PBK; generation n > 1 is {@code hsmbridge.backup-key.g<n>} ({@link #pbkId}). */
  static final byte[] PBK_ID = "hsmbridge.backup-key.v1".getBytes(StandardCharsets.US_ASCII);
  static final byte[] CARRIER_ID = "hsmbridge.backup-key-carrier.v1".getBytes(StandardCharsets.US_ASCII);
  static final String PBK_LABEL = "hsmbridge backup key";
  public static final int MAX_GENERATION = KeyGenerations.MAX_GENERATION;
  static final KeyGenerations PBKS = new KeyGenerations("backup key", PBK_ID, "hsmbridge.backup-key.g", PBK_LABEL,
      BackupKeys::pbkTemplate);
  static final byte[] EBK_ID = "hsmbridge.backup-ebk.v1".getBytes(StandardCharsets.US_ASCII);
  private static final int GCM_IV_BYTES = 12;

  private final SessionPool pool;
  private final KeyManager keys;
  private final ClusterKeys clusterKeys;
  private final PinSource soPin;
  private final CachedHandle ebk = new CachedHandle(CKO_SECRET_KEY, EBK_ID, "no backup or restore in progress");

  BackupKeys(SessionPool pool, KeyManager keys, ClusterKeys clusterKeys, PinSource soPin) {
    this.pool = pool;
    this.keys = keys;
    this.clusterKeys = clusterKeys;
    this.soPin = soPin;
  }

  /** Whether this token holds the cluster's persistent backup key (any generation). */
  public boolean hasBackupKey() {
    return pool.call("find backup key", s -> !held(s).isEmpty());
  }

  /** First HSM of a cluster (with the cluster key): the SO generates the PBK (generation 1) and the carrier inside the token. */
  public void createBackupKey() {
    if (hasBackupKey()) {
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "this token already holds a backup key");
    }
    pool.callAsSecurityOfficer(soPin, "create backup key", s -> {
      s.generateKey(new Mechanism(CKM_AES_KEY_GEN), pbkTemplate(1, PBK_LABEL).valueLen(32));
      s.generateKey(new Mechanism(CKM_AES_KEY_GEN), carrierTemplate().valueLen(32));
      return null;
    });
  }

  /**
   * A cluster's first HSM after a disaster recovery (which brings a PBK, not the old cluster's carrier): the
   * SO makes the new cluster's carrier. A no-op when the token holds one.
   */
  public void createCarrierIfMissing() {
    pool.callAsSecurityOfficer(soPin, "create backup key carrier", s -> {
      if (ClusterKeys.find(s, CKO_SECRET_KEY, CARRIER_ID) == KeyEntry.NONE) {
        s.generateKey(new Mechanism(CKM_AES_KEY_GEN), carrierTemplate().valueLen(32));
      }
      return null;
    });
  }

  /** Whether this token holds the carrier (clusters made before rotation existed do not). */
  public boolean hasCarrier() {
    return pool.call("find backup key carrier", s -> ClusterKeys.find(s, CKO_SECRET_KEY, CARRIER_ID) != KeyEntry.NONE);
  }

  /** The PBK of generation 1 (tests, and installs where only it exists). */
  static AttributeVector pbkTemplate() {
    return pbkTemplate(1, PBK_LABEL);
  }

  /** A PBK: trusted, public, sensitive, travels only under a trusted key, wraps and unwraps EBKs only. */
  static AttributeVector pbkTemplate(int generation, String label) {
    return new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_AES).token(true).private_(false).trusted(true)
        .sensitive(true).extractable(true).wrapWithTrusted(true).id(pbkId(generation)).label(label)
        .wrap(true).unwrap(true).encrypt(false).decrypt(false).sign(false).verify(false).derive(false)
        .unwrapTemplate(ebkUnwrapDemands());
  }

  /** The CKA_ID of a PBK generation (1 keeps the id it always had). */
  static byte[] pbkId(int generation) {
    return PBKS.id(generation);
  }

  /**
   * The carrier: as protected as a PBK; it carries new generations of the PBK and of the cluster key (its unwrap
   * template demands what both are: trusted, public, sensitive, no encrypt/decrypt/sign/verify/derive).
   */
  static AttributeVector carrierTemplate() {
    return new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_AES).token(true).private_(false).trusted(true)
        .sensitive(true).extractable(true).wrapWithTrusted(true).id(CARRIER_ID).label("hsmbridge backup key carrier")
        .wrap(true).unwrap(true).encrypt(false).decrypt(false).sign(false).verify(false).derive(false)
        .unwrapTemplate(pbkUnwrapDemands());
  }

  private static AttributeVector pbkUnwrapDemands() {
    return new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_AES).trusted(true).private_(false).sensitive(true)
        .extractable(true).wrapWithTrusted(true).encrypt(false).decrypt(false).sign(false).verify(false).derive(false);
  }

  /** The PBK generations this token holds, oldest first. */
  public java.util.List<Integer> generations() {
    return pool.call("list backup keys", PBKS::list);
  }

  /** The label of a generation this token holds (it names the rotation that made it), or null when it holds none such. */
  public String generationLabel(int generation) {
    return pool.call("read backup key label", s -> PBKS.labelOf(s, generation));
  }

  /** Generation to handle, in order, read from the token. */
  static java.util.TreeMap<Integer, Long> held(Session s) throws TokenException {
    return PBKS.held(s);
  }

  /**
   * Origin of a rotation: the SO makes the next PBK as a <em>session</em> object and wraps it under the
   * carrier; nothing is stored in this token yet. Every HSM, this one too, installs it when the mutation log
   * applies the rotation ({@link #installGeneration}), so all of them hold the same generations in the same
   * order. The label carries a random rotation id: two rotations racing for one generation are told apart.
   *
   * @throws HsmException NOT_ALLOWED_BY_POLICY when this token holds no PBK or no carrier
   */
  public NextGeneration prepareRotation() {
    return PBKS.prepare(pool, soPin);
  }

  /**
   * Every HSM, applying a rotation: the SO unwraps the generation under the carrier ({@link KeyGenerations#install}).
   *
   * @return false when the token held it already
   * @throws HsmException NOT_ALLOWED_BY_POLICY when the token holds this generation from another rotation (two
   *     rotations raced: the first one applied won), or holds no carrier; CRYPTO_FAILURE when the blob does not
   *     unwrap under the carrier
   */
  public boolean installGeneration(int generation, String label, byte[] wrapped) {
    return PBKS.install(pool, soPin, generation, label, wrapped);
  }

  /** What the PBK demands of every key it unwraps; the SO's EBK template repeats it (the token does not merge). */
  private static AttributeVector ebkUnwrapDemands() {
    return new AttributeVector().trusted(true).private_(false).sensitive(true).extractable(false)
        .encrypt(false).decrypt(false).sign(false).verify(false);
  }

  // ------------------------------------------------------------------------------- making a backup

  /**
   * Starts a backup: the SO makes a fresh EBK in the token, and the User wraps it under the PBK. Call
   * {@link #end()} when the backup is written, whatever happens.
   *
   * @return the EBK wrapped under the PBK (AES key wrap with padding)
   * @throws HsmException NOT_ALLOWED_BY_POLICY when this token holds no PBK
   */
  public byte[] begin() {
    return beginBackup().wrappedEbk();
  }

  /** A backup begun: the PBK generation its EBK is wrapped under (the newest held), and the wrapped EBK. */
  public record Begun(int generation, byte[] wrappedEbk) {
    @Override
    public String toString() {
      return "Begun[generation " + generation + "]";
    }
  }

  /** {@link #begin()}, saying which PBK generation wraps the EBK (the backup's header records it). */
  public synchronized Begun beginBackup() {
    requireBackupKey();
    ebk.clear();
    pool.callAsSecurityOfficer(soPin, "create ephemeral backup key", s -> {
      destroyAll(s, EBK_ID);
      s.generateKey(new Mechanism(CKM_AES_KEY_GEN), new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_AES)
          .token(true).private_(false).trusted(true).sensitive(true).extractable(true).wrapWithTrusted(true)
          .id(EBK_ID).label("hsmbridge ephemeral backup key").wrap(true).unwrap(false).encrypt(false)
          .decrypt(false).sign(false).verify(false).derive(false).valueLen(32));
      return null;
    });
    return pool.call("wrap ephemeral backup key", s -> {
      java.util.Map.Entry<Integer, Long> newest = newest(s);
      return new Begun(newest.getKey(), s.wrapKey(Mechanisms.aesKeyWrapPad(), newest.getValue(), ebk.get(s)));
    });
  }

  /**
   * One key for the backup: non-exportable keys wrapped under the EBK, exportable ones under the export
   * key (as replicated).
   *
   * @throws HsmException NOT_ALLOWED_BY_POLICY for a never-extractable key (nothing may wrap it)
   */
  public ReplicaBlob wrapKey(String keyId) {
    KeyEntry e = keys.entry(keyId);
    if (e.info().exportable()) {
      return clusterKeys.wrapForReplication(keyId);
    }
    if (!e.info().extractable()) {
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "key " + keyId + " is never extractable: it cannot be backed up");
    }
    return pool.call("wrap key for backup", s -> ClusterKeys.replicaBlob(s, keys.live(keyId), ebk.get(s)));
  }

  /**
   * Seals the manifest: a fresh manifest key (a session object) encrypts it with AES-GCM, {@code aad}
   * authenticated beside it, and is wrapped under the EBK.
   */
  public Sealed seal(byte[] manifest, byte[] aad) {
    return pool.call("seal backup manifest", s -> {
      long ebkHandle = ebk.get(s);
      long mk = s.generateKey(new Mechanism(CKM_AES_KEY_GEN), new AttributeVector().class_(CKO_SECRET_KEY)
          .keyType(CKK_AES).token(false).private_(true).sensitive(true).extractable(true).wrapWithTrusted(false)
          .encrypt(true).decrypt(false).wrap(false).unwrap(false).sign(false).verify(false).derive(false).valueLen(32));
      try {
        byte[] iv = s.generateRandom(GCM_IV_BYTES);
        byte[] ciphertext = s.encryptSingle(Mechanisms.gcm(iv, aad), mk, manifest);
        return new Sealed(s.wrapKey(Mechanisms.aesKeyWrapPad(), ebkHandle, mk), iv, ciphertext);
      } finally {
        s.destroyObject(mk);
      }
    });
  }

  /** The sealed manifest: its key wrapped under the EBK, the GCM nonce, the ciphertext with its tag. */
  public record Sealed(byte[] wrappedKey, byte[] iv, byte[] ciphertext) {
    @Override
    public String toString() {
      return "Sealed[" + ciphertext.length + " bytes]";
    }
  }

  /** Ends a backup or a restore: the SO destroys the EBK. Safe to call when none exists. */
  public synchronized void end() {
    ebk.clear();
    pool.callAsSecurityOfficer(soPin, "destroy ephemeral backup key", s -> {
      destroyAll(s, EBK_ID);
      return null;
    });
  }

  // ------------------------------------------------------------------------------- restoring a backup

  /**
   * Starts a restore: the SO unwraps the backup's EBK under this token's PBK, as a key that unwraps only
   * sensitive, private, wrap-with-trusted keys. Call {@link #end()} when the restore ends, whatever happens.
   *
   * @throws HsmException CRYPTO_FAILURE when the EBK does not unwrap (a backup of another cluster, or an
   *     altered one); NOT_ALLOWED_BY_POLICY when this token holds no PBK
   */
  public synchronized void open(byte[] wrappedEbk) {
    requireBackupKey();
    try {
      ebk.clear();
      pool.callAsSecurityOfficer(soPin, "unwrap ephemeral backup key", s -> {
        destroyAll(s, EBK_ID);
        // Newest first: a backup is made under the newest generation its HSM held (key wrap with padding
        // checks its own integrity, so a wrong generation fails and the next older one is tried).
        PKCS11Exception last = null;
        for (long pbk : held(s).descendingMap().values()) {
          try {
            s.unwrapKey(Mechanisms.aesKeyWrapPad(), pbk, wrappedEbk, new AttributeVector().class_(CKO_SECRET_KEY)
                .keyType(CKK_AES).token(true).private_(false).trusted(true).sensitive(true).extractable(false)
                .id(EBK_ID).label("hsmbridge ephemeral backup key").wrap(false).unwrap(true).encrypt(false)
                .decrypt(false).sign(false).verify(false).derive(false).unwrapTemplate(ClusterKeys.replicaUnwrapTemplate()));
            return null;
          } catch (PKCS11Exception e) {
            last = e;
          }
        }
        throw last != null ? last : new PKCS11Exception(CKR_KEY_HANDLE_INVALID);
      });
    } catch (HsmException e) {
      if (e.code() == ErrorCode.INTERNAL || e.code() == ErrorCode.INVALID_PARAMETER || e.code() == ErrorCode.CRYPTO_FAILURE) {
        throw authentication("the backup's key does not unwrap under this cluster's backup key (a backup of another cluster,"
            + " an altered one, or one made under a backup key generation this token does not hold; it holds "
            + generations() + ")", e);
      }
      throw e;
    }
  }

  /**
   * Opens a sealed manifest with the EBK {@link #open}ed: its key is unwrapped as a session object and
   * decrypts it; the GCM tag authenticates the manifest and {@code aad}.
   *
   * @throws HsmException CRYPTO_FAILURE when anything of it was altered
   */
  public byte[] unseal(Sealed sealed, byte[] aad) {
    try {
      return pool.call("open backup manifest", s -> {
        long ebkHandle = ebk.get(s);
        long mk = s.unwrapKey(Mechanisms.aesKeyWrapPad(), ebkHandle, sealed.wrappedKey(), new AttributeVector()
            .class_(CKO_SECRET_KEY).keyType(CKK_AES).token(false).private_(true).sensitive(true).extractable(false)
            .wrapWithTrusted(true).encrypt(false).decrypt(true).wrap(false).unwrap(false).sign(false).verify(false)
            .derive(false));
        try {
          return s.decryptSingle(Mechanisms.gcm(sealed.iv(), aad), mk, sealed.ciphertext());
        } finally {
          s.destroyObject(mk);
        }
      });
    } catch (HsmException e) {
      if (e.code() == ErrorCode.INTERNAL || e.code() == ErrorCode.INVALID_PARAMETER) {
        throw authentication("the backup's manifest does not authenticate", e);
      }
      throw e;
    }
  }

  /** Installs one backed-up key with the EBK {@link #open}ed (an exportable one under the export key). Idempotent. */
  public KeyInfo install(ReplicaBlob blob, boolean exportable) {
    if (exportable) {
      return clusterKeys.installExportableReplica(blob);
    }
    return keys.installReplica(blob, ebk::get, false);
  }

  /**
   * A backup that does not authenticate: CRYPTO_FAILURE, whose client message is always the generic one;
   * the reason goes to {@link HsmException#serverDetail()} for the operator's log.
   */
  private static HsmException authentication(String reason, HsmException cause) {
    return new HsmException(ErrorCode.CRYPTO_FAILURE, reason, cause.ckr(),
        reason + (cause.serverDetail() == null ? "" : " (" + cause.serverDetail() + ")"), cause);
  }

  private void requireBackupKey() {
    if (!hasBackupKey()) {
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY,
          "this token holds no backup key (PBK): it is made with the cluster key, and reaches joining HSMs with it");
    }
  }

  /** The newest generation's handle and number (escrow). */
  static java.util.Map.Entry<Integer, Long> newest(Session s) throws TokenException {
    java.util.TreeMap<Integer, Long> held = held(s);
    if (held.isEmpty()) {
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "this token holds no backup key (PBK)");
    }
    return held.lastEntry();
  }

  private static long findOrFail(Session s, byte[] id, String message) throws TokenException {
    return ClusterKeys.findOrFail(s, CKO_SECRET_KEY, id, message);
  }

  private static void destroyAll(Session s, byte[] id) throws TokenException {
    for (long h : SearchGuard.find(s, new AttributeVector().class_(CKO_SECRET_KEY).id(id))) {
      try {
        s.destroyObject(h);
      } catch (PKCS11Exception e) {
        if (e.getErrorCode() != CKR_OBJECT_HANDLE_INVALID) {
          throw e;
        }
      }
    }
  }
}
