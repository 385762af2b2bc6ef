package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

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
  /**
   * The key's handle, checked before each MAC and found again when it no longer names the key: SO work (a
   * backup) logs the User out, which kills handles to private objects (seen before: "cannot seal or write
   * the audit log (CKR_OBJECT_HANDLE_INVALID)" during backups).
   */
  private final CachedHandle handle = new CachedHandle(CKO_SECRET_KEY, ID, "this HSM's audit key is gone from its token");
  private volatile boolean made;

  AuditKey(SessionPool pool, KeyManager keys) {
    this.pool = pool;
    this.keys = keys;
  }

  /** HMAC-SHA256 of {@code data} under this HSM's audit key, creating the key on first use. */
  public byte[] mac(byte[] data) {
    if (!made) {
      keys.writeObjects("audit key", s -> {
        if (ClusterKeys.find(s, CKO_SECRET_KEY, ID) == KeyEntry.NONE) {
          create(s);
        }
        return null;
      });
      made = true;
    }
    return pool.call("audit mac", s -> s.signSingle(new Mechanism(CKM_SHA256_HMAC), handle.get(s), data));
  }

  private static long create(Session s) throws TokenException {
    return VerifiedCreation.generateKey(s, new Mechanism(CKM_GENERIC_SECRET_KEY_GEN), new AttributeVector().class_(CKO_SECRET_KEY)
        .keyType(CKK_GENERIC_SECRET).valueLen(32).token(true).private_(true).sensitive(true).extractable(false)
        .id(ID).label("hsmbridge audit key").sign(true).verify(true).encrypt(false).decrypt(false).wrap(false)
        .unwrap(false).derive(false));
  }
}
