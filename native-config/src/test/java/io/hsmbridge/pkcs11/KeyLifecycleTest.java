package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.assertHsm;
import static org.junit.jupiter.api.Assertions.*;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.security.KeyPairGenerator;
import java.security.spec.ECGenParameterSpec;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import javax.crypto.Cipher;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Mechanism;

/** Keys across restarts: the handle cache reloads, labels persist, deletes remove every part. */
class KeyLifecycleTest {
  private static final byte[] M = "lifecycle".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

  /** Imports a known AES key the way a client would: JDK AES/KWP under a token wrapping key. */
  private static KeyInfo importAes(HsmToken hsm, String wrapId, byte[] wrapKey, byte[] key, String label) throws Exception {
    Cipher kwp = Cipher.getInstance("AES/KWP/NoPadding");
    kwp.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(wrapKey, "AES"));
    return hsm.keys().importWrapped(wrapId, Algorithm.AES_KEY_WRAP_PAD, kwp.doFinal(key),
        key.length == 16 ? KeySpec.AES_128 : KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, label, false);
  }

  @Test
  void keysHandlesAndLabelsSurviveAReopen() throws Exception {
    TokenConfig config = SoftHsmFixture.newToken("lifecycle");
    List<KeyInfo> before;
    List<Long> handlesBefore = new ArrayList<>();
    byte[] gcmCiphertext;
    byte[] gcmIv;
    String aes;
    String imported;
    String rsa;
    try (HsmToken hsm = HsmToken.open(config)) {
      aes = hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "zeta", false).keyId();
      rsa = hsm.keys().generate(KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY, "alpha", false).keyId();
      hsm.keys().generate(KeySpec.EC_P384, KeyUsage.SIGN_VERIFY, "alpha", true);
      hsm.keys().generate(KeySpec.ED25519, KeyUsage.SIGN_VERIFY, "mu", false);
      hsm.keys().generate(KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, "nu", true);
      hsm.keys().generate(KeySpec.RSA_2048, KeyUsage.WRAP_UNWRAP, "wrap-rsa", false);
      // Imported secret keys: the token cannot tell their size after a restart, the spec record must.
      // A known wrapping key W goes in under the RSA wrapping key, then a known AES-128 key under W.
      byte[] w = new byte[32];
      w[0] = 1;
      String rsaWrap = hsm.keys().list().stream().filter(k -> k.label().equals("wrap-rsa")).findFirst().orElseThrow().keyId();
      Cipher oaep = Cipher.getInstance("RSA/ECB/OAEPWithSHA-1AndMGF1Padding");
      oaep.init(Cipher.WRAP_MODE, CryptoRoundTripTest.jdkPublic(hsm, rsaWrap, KeySpec.RSA_2048));
      String knownWrap = hsm.keys().importWrapped(rsaWrap, Algorithm.RSA_OAEP_WRAP, oaep.wrap(new SecretKeySpec(w, "AES")),
          KeySpec.AES_256, KeyUsage.WRAP_UNWRAP, "known-wrap", false).keyId();
      imported = importAes(hsm, knownWrap, w, new byte[16], "imported").keyId();
      CryptoService.Encrypted e = hsm.crypto().encrypt(imported, Algorithm.AES_GCM, M, null);
      gcmCiphertext = e.ciphertext();
      gcmIv = e.iv();
      before = hsm.keys().list();
      for (KeyInfo k : before) {
        handlesBefore.add(hsm.keys().entry(k.keyId()).handle());
      }
      // sorted by label, then id
      List<KeyInfo> sorted = new ArrayList<>(before);
      sorted.sort(Comparator.comparing(KeyInfo::label).thenComparing(KeyInfo::keyId));
      assertEquals(sorted, before);
    }
    try (HsmToken hsm = HsmToken.open(config)) {
      assertEquals(before, hsm.keys().list(), "the same keys, with the same descriptions");
      assertEquals(KeySpec.AES_128, hsm.keys().describe(imported).spec());
      List<Long> handlesAfter = new ArrayList<>();
      for (KeyInfo k : before) {
        handlesAfter.add(hsm.keys().entry(k.keyId()).handle());
      }
      assertNotEquals(handlesBefore, handlesAfter, "SoftHSM2 hands out new handles after the last session closed");
      // ... and the reloaded handles are the right objects
      assertArrayEquals(M, hsm.crypto().decrypt(imported, Algorithm.AES_GCM, gcmCiphertext, gcmIv, null));
      assertTrue(hsm.crypto().verify(rsa, Algorithm.RSA_PKCS1_SHA256, M, hsm.crypto().sign(rsa, Algorithm.RSA_PKCS1_SHA256, M)));
      CryptoService.Encrypted e = hsm.crypto().encrypt(aes, Algorithm.AES_CBC_PAD, M, null);
      assertArrayEquals(M, hsm.crypto().decrypt(aes, Algorithm.AES_CBC_PAD, e.ciphertext(), e.iv(), null));
    }
  }

  @Test
  void setLabelPersistsOnBothHalves() {
    TokenConfig config = SoftHsmFixture.newToken("relabel");
    String ec;
    String aes;
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      ec = hsm.keys().generate(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "old-ec", false).keyId();
      aes = hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "old-aes", false).keyId();
      KeyInfo renamed = hsm.keys().setLabel(ec, "new ec label");
      assertEquals("new ec label", renamed.label());
      assertEquals(renamed, hsm.keys().describe(ec));
      assertEquals(List.of("new ec label", "new ec label"), List.of(inspector.labelsOf(ec)), "private and public half");
      hsm.keys().setLabel(aes, "new-aes");
      assertEquals(List.of("new-aes"), List.of(inspector.labelsOf(aes)));
    }
    try (HsmToken hsm = HsmToken.open(config)) {
      assertEquals("new ec label", hsm.keys().describe(ec).label());
      assertEquals("new-aes", hsm.keys().describe(aes).label());
      KeyInfo e = hsm.keys().describe(ec);
      assertEquals(KeySpec.EC_P256, e.spec());
      assertEquals(KeyUsage.SIGN_VERIFY, e.usage());
    }
  }

  @Test
  void deleteRemovesEveryPartOfAKey() throws Exception {
    TokenConfig config = SoftHsmFixture.newToken("delete");
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      String rsa = hsm.keys().generate(KeySpec.RSA_2048, KeyUsage.ENCRYPT_DECRYPT, "rsa", false).keyId();
      String ed = hsm.keys().generate(KeySpec.ED25519, KeyUsage.SIGN_VERIFY, "ed", false).keyId();
      String keep = hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "keep", false).keyId();
      byte[] w = new byte[32];
      Cipher oaep = Cipher.getInstance("RSA/ECB/OAEPWithSHA-1AndMGF1Padding");
      String rsaWrap = hsm.keys().generate(KeySpec.RSA_2048, KeyUsage.WRAP_UNWRAP, "rsa-wrap", false).keyId();
      oaep.init(Cipher.WRAP_MODE, CryptoRoundTripTest.jdkPublic(hsm, rsaWrap, KeySpec.RSA_2048));
      String imported = hsm.keys().importWrapped(rsaWrap, Algorithm.RSA_OAEP_WRAP, oaep.wrap(new SecretKeySpec(w, "AES")),
          KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "imported", false).keyId();
      assertEquals(2, inspector.objectsWithId(rsa));
      assertEquals(2, inspector.objectsWithId(ed));
      int records = inspector.call(s -> s.findAllObjectsSingle(KeyCache.specRecordsOf(imported)).length);
      assertEquals(1, records, "the imported key's spec record");
      int objects = inspector.objectCount();

      for (String k : new String[] {rsa, ed, imported}) {
        hsm.keys().delete(k);
        assertHsm(ErrorCode.UNKNOWN_KEY, () -> hsm.keys().describe(k));
        assertEquals(0, inspector.objectsWithId(k), "a half was left behind");
      }
      assertEquals(0, (int) inspector.call(s -> s.findAllObjectsSingle(KeyCache.specRecordsOf(imported)).length));
      assertEquals(objects - 6, inspector.objectCount(), "2 + 2 halves, 1 imported key, 1 spec record");
      assertHsm(ErrorCode.UNKNOWN_KEY, () -> hsm.keys().delete(rsa));
      assertHsm(ErrorCode.UNKNOWN_KEY, () -> hsm.crypto().encrypt(rsa, Algorithm.RSA_OAEP, M, null));
      hsm.keys().reload();
      assertEquals(List.of(keep, rsaWrap), hsm.keys().list().stream().map(KeyInfo::keyId).toList());
    }
  }

  @Test
  void objectsThatAreNotHsmbridgeKeysAreIgnored() throws Exception {
    TokenConfig config = SoftHsmFixture.newToken("foreign");
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      String mine = hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "mine", false).keyId();
      inspector.call(s -> {
        AttributeVector aes = new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_AES).valueLen(16).token(true)
            .sensitive(true).label("foreign");
        // a short id (another application's key)
        s.generateKey(new Mechanism(CKM_AES_KEY_GEN), aes.id(new byte[] {1, 2, 3, 4}).encrypt(true).decrypt(true)
            .sign(false).verify(false).wrap(false).unwrap(false));
        // two usages at once: not a key hsmbridge would make
        s.generateKey(new Mechanism(CKM_AES_KEY_GEN), new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_AES)
            .valueLen(16).token(true).sensitive(true).label("two-usages").id(new byte[16]).encrypt(true).decrypt(true)
            .sign(true).verify(true).wrap(false).unwrap(false));
        // an unsupported size (AES-192)
        byte[] id192 = new byte[16];
        id192[0] = 9;
        s.generateKey(new Mechanism(CKM_AES_KEY_GEN), new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_AES)
            .valueLen(24).token(true).sensitive(true).label("aes192").id(id192).encrypt(true).decrypt(true)
            .sign(false).verify(false).wrap(false).unwrap(false));
        // a data object
        s.createObject(new AttributeVector().class_(CKO_DATA).token(true).private_(true).label("notes").value(new byte[] {7}));
        return null;
      });
      // a private key whose public half is missing
      KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
      g.initialize(new ECGenParameterSpec("secp256r1"));
      String orphan = inspector.plantEcKey(KeySpec.EC_P256, g.generateKeyPair(), "orphan");
      inspector.call(s -> {
        for (long h : s.findAllObjectsSingle(new AttributeVector().class_(CKO_PUBLIC_KEY).id(KeyCache.parseKeyId(orphan)))) {
          s.destroyObject(h);
        }
        return null;
      });
      hsm.keys().reload();
      assertEquals(List.of(mine), hsm.keys().list().stream().map(KeyInfo::keyId).toList());
    }
    try (HsmToken hsm = HsmToken.open(config)) {
      assertEquals(1, hsm.keys().count(), "a restart ignores them too");
    }
  }

  @Test
  void keysMadeBesideTheCacheAppearAfterAReload() throws Exception {
    TokenConfig config = SoftHsmFixture.newToken("beside");
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
      g.initialize(new ECGenParameterSpec("secp384r1"));
      String planted = inspector.plantEcKey(KeySpec.EC_P384, g.generateKeyPair(), "planted");
      assertHsm(ErrorCode.UNKNOWN_KEY, () -> hsm.keys().describe(planted));
      hsm.keys().reload();
      KeyInfo k = hsm.keys().describe(planted);
      assertEquals(KeySpec.EC_P384, k.spec());
      assertFalse(k.extractable());
      assertFalse(k.exportable());
    }
  }
}
