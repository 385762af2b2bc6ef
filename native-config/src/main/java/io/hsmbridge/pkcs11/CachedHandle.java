package io.hsmbridge.pkcs11;

import java.util.Arrays;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * The handle of one token object found by class and CKA_ID, looked up once and afterwards only checked
 * (its CKA_ID read back). On SoftHSM2 a C_FindObjects costs time that grows with the token's object count
 * (measured: a backup of 1,000 keys that looked its wrapping key up per key took 78 s, minutes for key
 * creation that looked the cluster key up per key), so a per-key lookup made bulk work quadratic. A
 * destroyed or reused handle, or one that SO work killed (the User's logout invalidates handles to private
 * objects), fails the check and is looked up again. Thread-safe.
 */
final class CachedHandle {
  private final long objectClass;
  private final byte[] id;
  private final String missing;
  private volatile long handle = KeyEntry.NONE;

  /** @param missing the NOT_ALLOWED_BY_POLICY message when the token holds no such object */
  CachedHandle(long objectClass, byte[] id, String missing) {
    this.objectClass = objectClass;
    this.id = id.clone();
    this.missing = missing;
  }

  long get(Session s) throws TokenException {
    long h = handle;
    if (h != KeyEntry.NONE && hasId(s, h)) {
      return h;
    }
    h = ClusterKeys.findOrFail(s, objectClass, id, missing);
    handle = h;
    return h;
  }

  /** Forget the handle (the object was destroyed, or handles were invalidated). */
  void clear() {
    handle = KeyEntry.NONE;
  }

  private boolean hasId(Session s, long h) {
    try {
      AttributeVector a = s.getAttrValues(h, org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_CLASS,
          org.xipki.pkcs11.wrapper.PKCS11Constants.CKA_ID);
      return a.class_() != null && a.class_() == objectClass && Arrays.equals(id, a.id());
    } catch (TokenException | RuntimeException e) {
      return false;
    }
  }
}
