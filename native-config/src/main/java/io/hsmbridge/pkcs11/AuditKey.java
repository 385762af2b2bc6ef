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
  private volatile long handle = KeyEntry.NONE;

  AuditKey(SessionPool pool, KeyManager keys) {
    this.pool = pool;
    this.keys = keys;
  }

  /** HMAC-SHA256 of {@code data} under this HSM's audit key, creating the key on first use. */
  public byte[] mac(byte[] data) {
    long h = handle();
    try {
      return pool.call("audit mac", s -> s.signSingle(new Mechanism(CKM_SHA256_HMAC), h, data));
    } catch (HsmException e) {
      // Handles to private objects die when the User is logged out (SO work): look it up again once.
      handle = KeyEntry.NONE;
      long again = handle();
      return pool.call("audit mac", s -> s.signSingle(new Mechanism(CKM_SHA256_HMAC), again, data));
    }
  }

  private long handle() {
    long h = handle;
    if (h != KeyEntry.NONE) {
      return h;
    }
    h = keys.writeObjects("audit key", s -> {
      long found = ClusterKeys.find(s, CKO_SECRET_KEY, ID);
      return found != KeyEntry.NONE ? found : create(s);
    });
    handle = h;
    return h;
  }

  private static long create(Session s) throws TokenException {
    return VerifiedCreation.generateKey(s, new Mechanism(CKM_GENERIC_SECRET_KEY_GEN), new AttributeVector().class_(CKO_SECRET_KEY)
        .keyType(CKK_GENERIC_SECRET).valueLen(32).token(true).private_(true).sensitive(true).extractable(false)
        .id(ID).label("hsmbridge audit key").sign(true).verify(true).encrypt(false).decrypt(false).wrap(false)
        .unwrap(false).derive(false));
  }
}
