package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.ErrorCode;
import java.nio.charset.StandardCharsets;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Mechanism;

/**
 * Disaster recovery of the backup key (PBK; docs/disaster-recovery.md), in three roles, each on a token:
 *
 * <ol>
 *   <li><b>Recovery token</b> (kept offline by the customer: a smart card, a vendor HSM, a SoftHSM2 token
 *       in tests): {@link #createRecoveryKey} makes an RSA-3072 key pair whose private half never leaves it.</li>
 *   <li><b>A cluster HSM</b>: {@link #escrow} wraps the PBK under the recovery public key, imported as a
 *       trusted key for the call (the PBK is wrap-with-trusted). The result is safe to store anywhere.</li>
 *   <li><b>After the disaster</b>, a fresh HSM makes a transport key pair
 *       ({@link ClusterKeys#createTransportKey}); the recovery token unwraps the escrowed PBK into a
 *       session object and wraps it again under that transport key ({@link #transfer}); the fresh HSM's
 *       SO unwraps it as its trusted PBK ({@link #installBackupKey}). The PBK is never plaintext outside
 *       a token, and the recovery token keeps no copy.</li>
 * </ol>
 */
public final class RecoveryKeys {
  static final byte[] RECOVERY_KEY_ID = "hsmbridge.recovery-key.v1".getBytes(StandardCharsets.US_ASCII);

  private final SessionPool pool;
  private final ClusterKeys clusterKeys;
  private final PinSource soPin;

  /** The key cache needs no refresh here: the pool reads it again after every piece of SO work. */
  RecoveryKeys(SessionPool pool, ClusterKeys clusterKeys, PinSource soPin) {
    this.pool = pool;
    this.clusterKeys = clusterKeys;
    this.soPin = soPin;
  }

  /** Recovery token: makes its recovery key pair (once); returns the public half as SubjectPublicKeyInfo. */
  public byte[] createRecoveryKey() {
    return pool.call("create recovery key", s -> {
      if (ClusterKeys.find(s, CKO_PRIVATE_KEY, RECOVERY_KEY_ID) != KeyEntry.NONE) {
        throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "this token already holds a recovery key");
      }
      return ClusterKeys.unwrappingPair(s, RECOVERY_KEY_ID, "hsmbridge recovery key", true);
    });
  }

  /** Recovery token: whether it holds its recovery key pair. */
  public boolean hasRecoveryKey() {
    return pool.call("find recovery key", s -> ClusterKeys.find(s, CKO_PUBLIC_KEY, RECOVERY_KEY_ID) != KeyEntry.NONE);
  }

  /** Recovery token: its recovery public key (SubjectPublicKeyInfo). */
  public byte[] recoveryKey() {
    return pool.call("read recovery key", s -> {
      long pub = ClusterKeys.findOrFail(s, CKO_PUBLIC_KEY, RECOVERY_KEY_ID, "this token holds no recovery key");
      AttributeVector a = s.getAttrValues(pub, CKA_MODULUS, CKA_PUBLIC_EXPONENT);
      return PublicKeys.rsa(a.modulus(), a.publicExponent());
    });
  }

  /** An escrowed PBK: its generation (the newest the cluster held) and the blob under the recovery key. */
  public record Escrowed(int generation, byte[] wrapped) {
    @Override
    public String toString() {
      return "Escrowed[generation " + generation + "]";
    }
  }

  /**
   * Cluster HSM: the newest PBK generation wrapped (RSA-OAEP) under {@code recoverySpki}. Backups made before
   * a later rotation need the escrow of their own generation (docs/disaster-recovery.md).
   *
   * @throws HsmException NOT_ALLOWED_BY_POLICY when this token holds no PBK; INVALID_PARAMETER for a key
   *     that is not RSA
   */
  public Escrowed escrow(byte[] recoverySpki) {
    return clusterKeys.underTrustedPeerKey(recoverySpki, "recovery key", (s, peer, oaep) -> {
      java.util.Map.Entry<Integer, Long> newest = BackupKeys.newest(s);
      return new Escrowed(newest.getKey(), s.wrapKey(oaep, peer, newest.getValue()));
    });
  }

  /**
   * Recovery token: unwraps the escrowed PBK into a session object (never a token object), wraps it under
   * the fresh HSM's transport key (imported as trusted by this token's SO), and destroys the copy.
   *
   * @throws HsmException CRYPTO_FAILURE when the escrow does not unwrap under this token's recovery key
   */
  public byte[] transfer(byte[] escrowedBackupKey, byte[] targetTransportSpki) {
    try {
      return clusterKeys.underTrustedPeerKey(targetTransportSpki, "new HSM's transport key", (s, peer, oaep) -> {
        long recovery = ClusterKeys.findOrFail(s, CKO_PRIVATE_KEY, RECOVERY_KEY_ID, "this token holds no recovery key");
        long pbk = s.unwrapKey(oaep, recovery, escrowedBackupKey, new AttributeVector().class_(CKO_SECRET_KEY)
            .keyType(CKK_AES).token(false).private_(true).sensitive(true).extractable(true).wrapWithTrusted(true)
            .wrap(false).unwrap(false).encrypt(false).decrypt(false).sign(false).verify(false).derive(false));
        try {
          return s.wrapKey(oaep, peer, pbk);
        } finally {
          s.destroyObject(pbk);
        }
      });
    } catch (HsmException e) {
      throw ClusterKeys.unwrapFailure(e, "the escrowed backup key does not unwrap under this recovery key");
    }
  }

  /**
   * Fresh HSM, after {@link ClusterKeys#createTransportKey}: the SO unwraps the PBK that
   * {@link #transfer} wrapped to its transport key, as its trusted PBK; the transport pair is destroyed.
   *
   * @throws HsmException NOT_ALLOWED_BY_POLICY when this token already holds a PBK or has no transport key;
   *     CRYPTO_FAILURE when the blob does not unwrap
   */
  public void installBackupKey(byte[] wrappedBackupKey) {
    installBackupKey(1, wrappedBackupKey);
  }

  /** {@link #installBackupKey(byte[])} for the escrow of {@code generation} (a rotated cluster's). */
  public void installBackupKey(int generation, byte[] wrappedBackupKey) {
    Mechanism oaep = Mechanisms.oaep(clusterKeys.oaepHash());
    byte[] id = BackupKeys.pbkId(generation);
    try {
      pool.callAsSecurityOfficer(soPin, "install recovered backup key", s -> {
        if (!BackupKeys.held(s).isEmpty()) {
          throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "this token already holds a backup key");
        }
        long transport = ClusterKeys.findOrFail(s, CKO_PRIVATE_KEY, ClusterKeys.TRANSPORT_KEY_ID,
            "no transport key: make one first (ClusterKeys.createTransportKey)");
        s.unwrapKey(oaep, transport, wrappedBackupKey, BackupKeys.pbkTemplate(generation,
            BackupKeys.PBKS.label(generation)));
        ClusterKeys.destroyAll(s, CKO_PRIVATE_KEY, ClusterKeys.TRANSPORT_KEY_ID);
        ClusterKeys.destroyAll(s, CKO_PUBLIC_KEY, ClusterKeys.TRANSPORT_KEY_ID);
        return null;
      });
    } catch (HsmException e) {
      throw ClusterKeys.unwrapFailure(e, "the recovered backup key does not unwrap");
    }
  }
}
