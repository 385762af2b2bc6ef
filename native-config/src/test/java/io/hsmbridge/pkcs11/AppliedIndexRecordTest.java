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

/**
 * The applied index lives in two private data objects of the token (slots written in turn, in place) and
 * is never mistaken for a key; records of older builds are read and taken over.
 */
class AppliedIndexRecordTest {
  private static AttributeVector records() {
    return new AttributeVector().class_(CKO_DATA).token(true).application(AppliedIndexRecord.NAME);
  }

  private static long[] recordHandles(TokenInspector inspector) {
    return inspector.call(s -> s.findAllObjectsSingle(records()));
  }

  /** A record of an older build (index in CKA_VALUE), as a crash between create and destroy would leave it. */
  private static long plant(TokenInspector inspector, long index, boolean modifiable) {
    return inspector.call(s -> s.createObject(records().label(AppliedIndexRecord.NAME).private_(true).modifiable(modifiable)
        .value(ByteBuffer.allocate(8).putLong(index).array())));
  }

  private static String label(TokenInspector inspector, long h) {
    return inspector.call(s -> s.getAttrValues(h, CKA_LABEL).label());
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
      boolean priv = inspector.call(s -> s.getAttrValues(first[0], CKA_PRIVATE).private_());
      assertTrue(priv, "the record is a private object");

      long big = (1L << 40) + 3;
      hsm.appliedIndex().write(big);
      assertEquals(big, hsm.appliedIndex().read());
      long[] slots = recordHandles(inspector);
      assertEquals(2, slots.length, "the second slot");
      assertEquals(objects + 2, inspector.objectCount());
      hsm.appliedIndex().write(big + 1);
      hsm.appliedIndex().write(big + 2);
      assertEquals(big + 2, hsm.appliedIndex().read());
      long[] still = recordHandles(inspector);
      java.util.Arrays.sort(slots);
      java.util.Arrays.sort(still);
      assertArrayEquals(slots, still, "written in place: the same two objects");
      List<String> labels = List.of(label(inspector, still[0]), label(inspector, still[1]));
      assertTrue(labels.contains(AppliedIndexRecord.NAME + "=" + (big + 2)) && labels.contains(AppliedIndexRecord.NAME + "=" + (big + 1)),
          "the newest index and the one before: " + labels);
      // Why labels (measured): SoftHSM2 2.6.1 refuses CKA_VALUE of a data object in C_SetAttributeValue
      // although the record is CKA_MODIFIABLE; CKA_LABEL it takes.
      HsmException refused = assertThrows(HsmException.class, () -> inspector.call(s -> {
        s.setAttributeValues(still[0], new AttributeVector().value(new byte[8]));
        return null;
      }));
      assertEquals(CKR_ATTRIBUTE_READ_ONLY, refused.ckr(), refused.serverDetail());

      assertEquals(keys.size(), hsm.keys().count(), "the records are not keys");
      assertEquals(keys, hsm.keys().rescan(), "nor after a rescan of the token");
    }
    try (HsmToken again = HsmToken.open(config)) {
      assertEquals((1L << 40) + 5, again.appliedIndex().read(), "survives closing and reopening the token");
      assertEquals(keys, again.keys().list());
      again.appliedIndex().write((1L << 40) + 6);
      assertEquals((1L << 40) + 6, again.appliedIndex().read());
    }
  }

  @Test
  void aSpoiledSlotReadsAsTheOtherAndALowerWriteResetsBoth() {
    TokenConfig config = SoftHsmFixture.newToken("applied-slots");
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      hsm.appliedIndex().write(5);
      hsm.appliedIndex().write(6);
      hsm.appliedIndex().write(7); // slots: 7 and 6
      long[] slots = recordHandles(inspector);
      long newest = label(inspector, slots[0]).endsWith("=7") ? slots[0] : slots[1];
      inspector.call(s -> {
        s.setAttributeValues(newest, new AttributeVector().label("torn"));
        return null;
      });
      assertEquals(6, hsm.appliedIndex().read(), "a write cut short spoils one slot; the other holds the index before");
      hsm.appliedIndex().write(7);
      assertEquals(7, hsm.appliedIndex().read());
      hsm.appliedIndex().write(0); // a reset, to re-apply the whole log
      assertEquals(0, hsm.appliedIndex().read(), "both slots reset");
      hsm.appliedIndex().write(1);
      assertEquals(1, hsm.appliedIndex().read());
      assertEquals(2, recordHandles(inspector).length);
    }
  }

  @Test
  void aRecordTheTokenWillNotUpdateInPlaceIsReplacedAndNeverMissing() {
    TokenConfig config = SoftHsmFixture.newToken("applied-ro");
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      long planted = plant(inspector, 7, false);
      assertEquals(7, hsm.appliedIndex().read());
      hsm.appliedIndex().write(8); // a second slot beside the old record
      assertEquals(8, hsm.appliedIndex().read());
      hsm.appliedIndex().write(9); // the old record is next, and refuses: replaced by a new object
      assertEquals(9, hsm.appliedIndex().read());
      long[] after = recordHandles(inspector);
      assertEquals(1, after.length, "the old records are gone");
      assertNotEquals(planted, after[0], "a new object replaced the read-only one");
      hsm.appliedIndex().write(10);
      assertEquals(10, hsm.appliedIndex().read());
    }
  }

  @Test
  void recordsOfAnOlderBuildReadAsTheHigherAndBecomeSlots() {
    TokenConfig config = SoftHsmFixture.newToken("applied-two");
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      plant(inspector, 3, true);
      plant(inspector, 9, true);
      plant(inspector, 5, true);
      assertEquals(9, hsm.appliedIndex().read());
      hsm.appliedIndex().write(10);
      assertEquals(10, hsm.appliedIndex().read());
      assertEquals(2, recordHandles(inspector).length, "the two highest kept, one of them now holds 10");
      hsm.appliedIndex().write(11);
      assertEquals(11, hsm.appliedIndex().read());
    }
  }

  @Test
  void survivesTheSoLoginThatInvalidatesPrivateHandlesAndRefusesNegatives() {
    TokenConfig config = SoftHsmFixture.newToken("applied-so");
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      hsm.appliedIndex().write(1);
      hsm.appliedIndex().write(2);
      hsm.clusterKeys().createClusterKey(); // SO work logs the User out: the cached record handles die
      hsm.appliedIndex().write(3);
      assertEquals(3, hsm.appliedIndex().read());
      assertEquals(2, recordHandles(inspector).length);
      assertHsm(ErrorCode.INVALID_PARAMETER, () -> hsm.appliedIndex().write(-1));
      assertEquals(3, hsm.appliedIndex().read());
    }
  }
}
