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
 * Thread-safe: one backup or restore at a time per token (synchronized).
 */
public final class BackupKeys {
  static final byte[] PBK_ID = "hsmbridge.backup-key.v1".getBytes(StandardCharsets.US_ASCII);
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

  /** Whether this token holds the cluster's persistent backup key. */
  public boolean hasBackupKey() {
    return pool.call("find backup key", s -> ClusterKeys.find(s, CKO_SECRET_KEY, PBK_ID) != KeyEntry.NONE);
  }

  /** First HSM of a cluster (with the cluster key): the SO generates the PBK inside the token. */
  public void createBackupKey() {
    if (hasBackupKey()) {
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "this token already holds a backup key");
    }
    pool.callAsSecurityOfficer(soPin, "create backup key", s -> {
      s.generateKey(new Mechanism(CKM_AES_KEY_GEN), pbkTemplate().valueLen(32));
      return null;
    });
  }

  /** The PBK: trusted, public, sensitive, travels only under a trusted key, wraps and unwraps EBKs only. */
  static AttributeVector pbkTemplate() {
    return new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_AES).token(true).private_(false).trusted(true)
        .sensitive(true).extractable(true).wrapWithTrusted(true).id(PBK_ID).label("hsmbridge backup key")
        .wrap(true).unwrap(true).encrypt(false).decrypt(false).sign(false).verify(false).derive(false)
        .unwrapTemplate(ebkUnwrapDemands());
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
  public synchronized byte[] begin() {
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
    return pool.call("wrap ephemeral backup key", s ->
        s.wrapKey(Mechanisms.aesKeyWrapPad(), pbk(s), ebk.get(s)));
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
        s.unwrapKey(Mechanisms.aesKeyWrapPad(), pbk(s), wrappedEbk, new AttributeVector().class_(CKO_SECRET_KEY)
            .keyType(CKK_AES).token(true).private_(false).trusted(true).sensitive(true).extractable(false)
            .id(EBK_ID).label("hsmbridge ephemeral backup key").wrap(false).unwrap(true).encrypt(false)
            .decrypt(false).sign(false).verify(false).derive(false).unwrapTemplate(ClusterKeys.replicaUnwrapTemplate()));
        return null;
      });
    } catch (HsmException e) {
      if (e.code() == ErrorCode.INTERNAL || e.code() == ErrorCode.INVALID_PARAMETER || e.code() == ErrorCode.CRYPTO_FAILURE) {
        throw authentication("the backup's key does not unwrap under this cluster's backup key (a backup of another cluster,"
            + " or an altered one)", e);
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

  private static long pbk(Session s) throws TokenException {
    return findOrFail(s, PBK_ID, "this token holds no backup key");
  }

  private static long findOrFail(Session s, byte[] id, String message) throws TokenException {
    return ClusterKeys.findOrFail(s, CKO_SECRET_KEY, id, message);
  }

  private static void destroyAll(Session s, byte[] id) throws TokenException {
    for (long h : s.findAllObjectsSingle(new AttributeVector().class_(CKO_SECRET_KEY).id(id))) {
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
