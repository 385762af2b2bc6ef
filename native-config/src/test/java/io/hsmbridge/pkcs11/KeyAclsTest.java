package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.assertHsm;
import static org.junit.jupiter.api.Assertions.*;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.xipki.pkcs11.wrapper.AttributeVector;

/** Key ownership and shares as private data objects of a real SoftHSM2 token. */
class KeyAclsTest {
  private static final String ID1 = "0123456789abcdef0123456789abcdef";
  private static final String ID2 = "fedcba9876543210fedcba9876543210";

  private static long[] handles(TokenInspector inspector, String keyId) {
    return inspector.call(s -> s.findAllObjectsSingle(
        new AttributeVector().class_(CKO_DATA).token(true).application(KeyAcls.APPLICATION).label(keyId)));
  }

  @Test
  void putGetListReplaceDeleteAndSurviveAReopenWithoutCountingAsKeys() {
    TokenConfig config = SoftHsmFixture.newToken("acls");
    KeyAcl one = new KeyAcl(ID1.toUpperCase(), "alice", Set.of("carol", "bob"));
    KeyAcl two = KeyAcl.ownedBy(ID2, "dave");
    List<KeyInfo> keys;
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      hsm.keys().generate(KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, "a key", false);
      hsm.keys().generate(KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY, "another", false);
      keys = hsm.keys().list();
      String digest = KeyDigest.of(keys);
      int objects = inspector.objectCount();
      assertEquals(ID1, one.keyId(), "key ids are normalised to lowercase");
      assertEquals(List.of("bob", "carol"), List.copyOf(one.shares()), "shares sorted");

      hsm.keyAcls().put(two);
      hsm.keyAcls().put(one);
      assertEquals(Optional.of(one), hsm.keyAcls().get(ID1));
      assertEquals(Optional.of(one), hsm.keyAcls().get(ID1.toUpperCase()));
      assertEquals(List.of(one, two), hsm.keyAcls().list(), "sorted by key id");
      assertEquals(objects + 2, inspector.objectCount());
      long[] h = handles(inspector, ID1);
      assertEquals(1, h.length);
      Boolean priv = inspector.call(s -> s.getAttrValues(h[0], CKA_PRIVATE).private_());
      assertTrue(priv, "a private object");

      KeyAcl shared = one.withShare("erin").withoutShare("bob");
      hsm.keyAcls().put(shared);
      assertEquals(1, handles(inspector, ID1).length, "replace keeps one record");
      assertEquals(Optional.of(shared), hsm.keyAcls().get(ID1));
      assertEquals(objects + 2, inspector.objectCount());

      assertEquals(keys, hsm.keys().list());
      assertEquals(keys.size(), hsm.keys().count());
      assertEquals(keys, hsm.keys().rescan());
      assertEquals(digest, KeyDigest.of(hsm.keys().list()));
      assertEquals(List.of(shared, two), hsm.keyAcls().rescan());
    }
    assertTrue(IntegrityScan.scanSoftHsmFiles(config.tokenLabel(), false).clean());
    try (HsmToken again = HsmToken.open(config)) {
      KeyAcl shared = one.withShare("erin").withoutShare("bob");
      assertEquals(List.of(shared, two), again.keyAcls().list(), "survives a reopen");
      assertEquals(keys, again.keys().list());
      assertTrue(again.keyAcls().delete(ID2.toUpperCase()));
      assertFalse(again.keyAcls().delete(ID2));
      assertEquals(List.of(shared), again.keyAcls().list());
    }
    try (HsmToken third = HsmToken.open(config)) {
      assertEquals(1, third.keyAcls().list().size());
    }
  }

  @Test
  void aclMethodsAndValidation() {
    KeyAcl acl = new KeyAcl(ID1, "alice", Set.of("bob"));
    assertTrue(acl.canUse("alice"));
    assertTrue(acl.canUse("bob"));
    assertFalse(acl.canUse("carol"));
    assertFalse(acl.canUse(null));
    assertEquals(new KeyAcl(ID1, "bob", Set.of("alice")), acl.withOwner("bob").withShare("alice"));
    assertThrows(UnsupportedOperationException.class, () -> acl.shares().add("x"));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new KeyAcl("0123", "alice", Set.of()));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new KeyAcl(null, "alice", Set.of()));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new KeyAcl("g123456789abcdef0123456789abcdef", "alice", Set.of()));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new KeyAcl(ID1, "a b", Set.of()));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new KeyAcl(ID1, "alice", Set.of("bad name")));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new KeyAcl(ID1, "alice", Set.of("alice")));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> acl.withShare("alice"));
    Set<String> many = new HashSet<>();
    for (int i = 0; i <= KeyAcl.MAX_SHARES; i++) {
      many.add("u" + i);
    }
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new KeyAcl(ID1, "alice", many));
    many.remove("u0");
    assertEquals(KeyAcl.MAX_SHARES, new KeyAcl(ID1, "alice", many).shares().size());
    try (HsmToken hsm = HsmToken.open(SoftHsmFixture.newToken("acls-bad"))) {
      assertHsm(ErrorCode.INVALID_PARAMETER, () -> hsm.keyAcls().get("nope"));
      assertHsm(ErrorCode.INVALID_PARAMETER, () -> hsm.keyAcls().delete("nope"));
      assertEquals(Optional.empty(), hsm.keyAcls().get(ID1));
    }
  }

  @Test
  void theStoredValueIsStrict() {
    KeyAcl acl = new KeyAcl(ID1, "alice", Set.of("bob", "carol"));
    byte[] e = DataRecordStore.encode(acl, 1, KeyAcls.CODEC);
    assertEquals(acl, DataRecordStore.decode(e, KeyAcls.CODEC).value());
    for (int cut = 0; cut < e.length; cut++) {
      byte[] shorter = Arrays.copyOf(e, cut);
      assertThrows(IllegalArgumentException.class, () -> DataRecordStore.decode(shorter, KeyAcls.CODEC), "cut at " + cut);
    }
    assertThrows(IllegalArgumentException.class, () -> DataRecordStore.decode(Arrays.copyOf(e, e.length + 1), KeyAcls.CODEC));
    // A duplicated share ("bob" twice instead of "bob", "carol": same lengths differ, so build it by hand).
    byte[] dup = DataRecordStore.encode(new KeyAcl(ID1, "alice", Set.of("bob", "bub")), 1, KeyAcls.CODEC);
    dup[dup.length - 2] = 'o';
    assertThrows(IllegalArgumentException.class, () -> DataRecordStore.decode(dup, KeyAcls.CODEC));
    // An upper-case key id is not what this store writes.
    byte[] upper = DataRecordStore.encode(acl, 1, KeyAcls.CODEC);
    int at = 1 + 8 + 4 + 10; // format, generation, length, then the 'a' of "abcdef"
    assertEquals('a', upper[at]);
    upper[at] = 'A';
    assertThrows(IllegalArgumentException.class, () -> DataRecordStore.decode(upper, KeyAcls.CODEC));
  }

  @Test
  void usersAndAclsDoNotSeeEachOther() {
    try (HsmToken hsm = HsmToken.open(SoftHsmFixture.newToken("acls-users"))) {
      hsm.users().put(UserRecordsTest.user("alice", "CU"));
      hsm.keyAcls().put(KeyAcl.ownedBy(ID1, "alice"));
      hsm.appliedIndex().write(3);
      assertEquals(1, hsm.users().rescan().size());
      assertEquals(1, hsm.keyAcls().rescan().size());
      assertEquals(3, hsm.appliedIndex().read());
      assertTrue(hsm.users().delete("alice"));
      assertEquals(1, hsm.keyAcls().list().size());
      assertEquals(0, hsm.keys().count());
    }
  }
}
