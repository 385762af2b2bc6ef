package io.hsmbridge.pkcs11;

import static org.junit.jupiter.api.Assertions.*;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Mechanism;

/** A cached handle is checked on every use: a destroyed object is looked up again, never used stale. */
class CachedHandleTest {
  private static final byte[] ID = "cached-handle-test".getBytes(StandardCharsets.US_ASCII);

  @Test
  void followsTheObjectThroughDestroyAndRecreate() {
    try (HsmToken hsm = HsmToken.open(SoftHsmFixture.newToken("cached-handle"))) {
      CachedHandle cached = new CachedHandle(CKO_SECRET_KEY, ID, "no such key");
      HsmException none = assertThrows(HsmException.class, () -> hsm.pool().call("get", cached::get));
      assertEquals("no such key", none.getMessage());
      long first = hsm.pool().call("make", s -> s.generateKey(new Mechanism(CKM_AES_KEY_GEN), key()));
      assertEquals(first, hsm.pool().call("get", cached::get).longValue());
      assertEquals(first, hsm.pool().call("get again", cached::get).longValue());
      hsm.pool().call("destroy and make another", s -> {
        s.destroyObject(first);
        s.generateKey(new Mechanism(CKM_AES_KEY_GEN), key().label("second"));
        return null;
      });
      long second = hsm.pool().call("get", cached::get);
      assertEquals("second", hsm.pool().call("label", s -> s.getAttrValues(second, CKA_LABEL).label()));
      hsm.pool().call("destroy", s -> {
        s.destroyObject(second);
        return null;
      });
      assertThrows(HsmException.class, () -> hsm.pool().call("get", cached::get), "a destroyed key is not handed out");
    }
  }

  private static AttributeVector key() {
    return new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_AES).token(true).private_(true).id(ID)
        .label("first").valueLen(32).sensitive(true).extractable(false);
  }
}
