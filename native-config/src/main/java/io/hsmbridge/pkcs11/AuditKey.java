package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.ErrorCode;
import java.nio.charset.StandardCharsets;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Mechanism;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * This HSM's audit-chain key: an HMAC-SHA256 key made inside the token, never extractable, that chains
 * the HSM's audit log. Whoever can edit the log file but not use this token cannot forge a consistent
 * chain: an entry deleted, edited or reordered is found by recomputing the chain on the HSM.
 *
 * <p>One per HSM (audit logs are per HSM), so it is never replicated; the key cache ignores it (its
 * CKA_ID is not a 16-byte user key id). Thread-safe.
 */
public final class AuditKey {
  static final byte[] ID = "hsmbridge.audit-key.v1".getBytes(StandardCharsets.US_ASCII);

  private final SessionPool pool;
  private final KeyManager keys;
  /** The key's handle and the SO epoch it was found in (SessionPool#securityOfficerEpoch); null before first use. */
  private volatile Found found;

  private record Found(long handle, long epoch) {}

  AuditKey(SessionPool pool, KeyManager keys) {
    this.pool = pool;
    this.keys = keys;
  }

  /** HMAC-SHA256 of {@code data} under this HSM's audit key, creating the key on first use. */
  public byte[] mac(byte[] data) {
    if (found == null) {
      found = keys.writeObjects("audit key", s -> {
        long h = ClusterKeys.find(s, CKO_SECRET_KEY, ID);
        return new Found(h != KeyEntry.NONE ? h : create(s), pool.securityOfficerEpoch());
      });
    }
    return pool.call("audit mac", s -> s.signSingle(new Mechanism(CKM_SHA256_HMAC), current(s), data));
  }

  /**
   * The key's handle, valid for the session work that asks: SO work (a backup) logs the User out, which
   * kills handles to private objects, so a handle found before the last SO work is found again (seen
   * before: "cannot seal or write the audit log (CKR_OBJECT_HANDLE_INVALID)" during backups).
   */
  private long current(Session s) throws TokenException {
    Found f = found;
    long epoch = pool.securityOfficerEpoch();
    if (f.epoch() == epoch) {
      return f.handle();
    }
    long h = ClusterKeys.find(s, CKO_SECRET_KEY, ID);
    if (h == KeyEntry.NONE) {
      throw new HsmException(ErrorCode.TOKEN_UNAVAILABLE, "this HSM's audit key is gone from its token");
    }
    found = new Found(h, epoch);
    return h;
  }

  private static long create(Session s) throws TokenException {
    return VerifiedCreation.generateKey(s, new Mechanism(CKM_GENERIC_SECRET_KEY_GEN), new AttributeVector().class_(CKO_SECRET_KEY)
        .keyType(CKK_GENERIC_SECRET).valueLen(32).token(true).private_(true).sensitive(true).extractable(false)
        .id(ID).label("hsmbridge audit key").sign(true).verify(true).encrypt(false).decrypt(false).wrap(false)
        .unwrap(false).derive(false));
  }
}
