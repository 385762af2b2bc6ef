package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.assertHsm;
import static org.junit.jupiter.api.Assertions.*;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.xipki.pkcs11.wrapper.AttributeVector;

/** The applied index lives in one private data object of the token and is never mistaken for a key. */
class AppliedIndexRecordTest {
  private static AttributeVector records() {
    return new AttributeVector().class_(CKO_DATA).token(true).application(AppliedIndexRecord.NAME).label(AppliedIndexRecord.NAME);
  }

  private static long[] recordHandles(TokenInspector inspector) {
    return inspector.call(s -> s.findAllObjectsSingle(records()));
  }

  /** A record made beside the HsmToken, as a crash between create and destroy (or another writer) would leave it. */
  private static void plant(TokenInspector inspector, long index, boolean modifiable) {
    inspector.call(s -> s.createObject(records().private_(true).modifiable(modifiable)
        .value(ByteBuffer.allocate(8).putLong(index).array())));
  }

  @Test
  void writesReadsAndSurvivesAReopenWithoutCountingAsAKey() {
    TokenConfig config = SoftHsmFixture.newToken("applied");
    List<KeyInfo> keys;
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "a key", false);
      hsm.keys().generate(KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, "another", false);
      keys = hsm.keys().list();
      int objects = inspector.objectCount();
      assertEquals(0, hsm.appliedIndex().read(), "absent = 0");
      assertEquals(0, recordHandles(inspector).length);

      hsm.appliedIndex().write(5);
      assertEquals(5, hsm.appliedIndex().read());
      long[] first = recordHandles(inspector);
      assertEquals(1, first.length);
      assertEquals(objects + 1, inspector.objectCount());
      boolean priv = inspector.call(s -> s.getAttrValues(first[0], CKA_PRIVATE).private_());
      assertTrue(priv, "the record is a private object");

      long big = (1L << 40) + 3;
      hsm.appliedIndex().write(big);
      assertEquals(big, hsm.appliedIndex().read());
      long[] second = recordHandles(inspector);
      assertEquals(1, second.length, "still exactly one record");
      byte[] stored = inspector.call(s -> s.getAttrValues(second[0], CKA_VALUE).value());
      assertArrayEquals(ByteBuffer.allocate(8).putLong(big).array(), stored, "8 bytes big-endian");
      // Why the record is replaced rather than updated (measured): SoftHSM2 2.6.1 refuses CKA_VALUE of a
      // data object in C_SetAttributeValue although the record is CKA_MODIFIABLE (CKA_LABEL it would take).
      HsmException refused = assertThrows(HsmException.class, () -> inspector.call(s -> {
        s.setAttributeValues(second[0], new AttributeVector().value(new byte[8]));
        return null;
      }));
      assertEquals(CKR_ATTRIBUTE_READ_ONLY, refused.ckr(), refused.serverDetail());
      assertEquals(big, hsm.appliedIndex().read());

      assertEquals(keys.size(), hsm.keys().count(), "the record is not a key");
      assertEquals(keys, hsm.keys().rescan(), "nor after a rescan of the token");
      assertEquals(objects + 1, inspector.objectCount());
    }
    try (HsmToken again = HsmToken.open(config)) {
      assertEquals((1L << 40) + 3, again.appliedIndex().read(), "survives closing and reopening the token");
      assertEquals(keys, again.keys().list());
      again.appliedIndex().write((1L << 40) + 4);
      assertEquals((1L << 40) + 4, again.appliedIndex().read());
    }
  }

  @Test
  void aRecordTheTokenWillNotUpdateInPlaceIsReplacedAndNeverMissing() {
    TokenConfig config = SoftHsmFixture.newToken("applied-ro");
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      plant(inspector, 7, false);
      assertEquals(7, hsm.appliedIndex().read());
      long[] before = recordHandles(inspector);
      hsm.appliedIndex().write(8);
      assertEquals(8, hsm.appliedIndex().read());
      long[] after = recordHandles(inspector);
      assertEquals(1, after.length, "the old record is gone");
      assertNotEquals(before[0], after[0], "a new object replaced the read-only one");
    }
  }

  @Test
  void twoRecordsLeftByACrashReadAsTheHigherAndTheNextWriteLeavesOne() {
    TokenConfig config = SoftHsmFixture.newToken("applied-two");
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      plant(inspector, 3, true);
      plant(inspector, 9, true);
      assertEquals(9, hsm.appliedIndex().read());
      hsm.appliedIndex().write(10);
      assertEquals(10, hsm.appliedIndex().read());
      assertEquals(1, recordHandles(inspector).length);
    }
  }

  @Test
  void survivesTheSoLoginThatInvalidatesPrivateHandlesAndRefusesNegatives() {
    TokenConfig config = SoftHsmFixture.newToken("applied-so");
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      hsm.appliedIndex().write(1);
      hsm.clusterKeys().createClusterKey(); // SO work logs the User out: the cached record handle dies
      hsm.appliedIndex().write(2);
      assertEquals(2, hsm.appliedIndex().read());
      assertEquals(1, recordHandles(inspector).length);
      assertHsm(ErrorCode.INVALID_PARAMETER, () -> hsm.appliedIndex().write(-1));
      assertEquals(2, hsm.appliedIndex().read());
    }
  }
}
