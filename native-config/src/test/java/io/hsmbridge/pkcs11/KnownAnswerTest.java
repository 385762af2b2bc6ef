package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.flip;
import static io.hsmbridge.pkcs11.TestSupport.hex;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.stream.Stream;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Known-answer tests. Known keys reach the token the way a client's would: wrapped under a token key
 * (RSA-OAEP by the JDK, or AES key wrap with padding) and imported with {@code importWrapped}. Each
 * vector is also checked against the JDK, so a typo in a vector cannot pass silently.
 */
class KnownAnswerTest {
  private static HsmToken hsm;
  private static TokenInspector inspector;
  private static String rsaWrap;
  private static PublicKey rsaWrapPublic;
  /** A known AES-256 key-wrapping key W, imported with usage WRAP_UNWRAP. */
  private static final byte[] W = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  private static String wrapW;

  @BeforeAll
  static void open() throws Exception {
    TokenConfig config = SoftHsmFixture.newToken("kat");
    hsm = HsmToken.open(config);
    inspector = new TokenInspector(config);
    rsaWrap = hsm.keys().generate(KeySpec.RSA_2048, KeyUsage.WRAP_UNWRAP, "kat-rsa-wrap", false).keyId();
    rsaWrapPublic = KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(hsm.keys().publicKey(rsaWrap)));
    wrapW = importViaRsa(W, KeySpec.AES_256, KeyUsage.WRAP_UNWRAP, false, "W").keyId();
  }

  @AfterAll
  static void close() {
    inspector.close();
    hsm.close();
  }

  /** Wraps {@code keyBytes} with the JDK under the token's RSA wrapping key and imports it. */
  static KeyInfo importViaRsa(byte[] keyBytes, KeySpec spec, KeyUsage usage, boolean exportable, String label) throws Exception {
    Cipher c = Cipher.getInstance("RSA/ECB/OAEPWithSHA-1AndMGF1Padding");
    c.init(Cipher.WRAP_MODE, rsaWrapPublic);
    byte[] blob = c.wrap(new SecretKeySpec(keyBytes, "AES"));
    KeyInfo k = hsm.keys().importWrapped(rsaWrap, Algorithm.RSA_OAEP_WRAP, blob, spec, usage, label, exportable);
    assertEquals(spec, k.spec());
    assertEquals(usage, k.usage());
    assertEquals(label, k.label());
    assertEquals(exportable, k.exportable());
    assertTrue(k.sensitive(), "imported keys are sensitive");
    return k;
  }

  static byte[] jdkKwp(byte[] kek, byte[] keyToWrap) throws Exception {
    Cipher c = Cipher.getInstance("AES/KWP/NoPadding");
    c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(kek, "AES"));
    return c.doFinal(keyToWrap);
  }

  // ---- AES-GCM: McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 1-4 and 13-16 ----

  static Stream<Arguments> gcmVectors() {
    String k0 = "00000000000000000000000000000000";
    String k1 = "feffe9928665731c6d6a8f9467308308";
    String p64 = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        + "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
    String p60 = p64.substring(0, 120);
    String iv1 = "cafebabefacedbaddecaf888";
    String aad = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
    return Stream.of(
        Arguments.of("TC1", k0, "000000000000000000000000", "", "", "", "58e2fccefa7e3061367f1d57a4e7455a"),
        Arguments.of("TC2", k0, "000000000000000000000000", "00000000000000000000000000000000", "",
            "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf"),
        Arguments.of("TC3", k1, iv1, p64, "",
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
                + "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
            "4d5c2af327cd64a62cf35abd2ba6fab4"),
        Arguments.of("TC4", k1, iv1, p60, aad,
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
                + "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
            "5bc94fbc3221a5db94fae95ae7121a47"),
        Arguments.of("TC13", k0 + k0, "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"),
        Arguments.of("TC14", k0 + k0, "000000000000000000000000", "00000000000000000000000000000000", "",
            "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"),
        Arguments.of("TC15", k1 + k1, iv1, p64, "",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                + "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
            "b094dac5d93471bdec1a502270e3cc6c"),
        Arguments.of("TC16", k1 + k1, iv1, p60, aad,
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                + "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("gcmVectors")
  void aesGcmVectorsDecryptOnTheToken(String name, String key, String iv, String plaintext, String aad,
      String ciphertext, String tag) throws Exception {
    byte[] k = hex(key);
    byte[] n = hex(iv);
    byte[] p = hex(plaintext);
    byte[] a = aad.isEmpty() ? null : hex(aad);
    byte[] ct = hex(ciphertext + tag);
    // the vector itself, checked by the JDK
    Cipher jdk = Cipher.getInstance("AES/GCM/NoPadding");
    jdk.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(k, "AES"), new GCMParameterSpec(128, n));
    if (a != null) {
      jdk.updateAAD(a);
    }
    assertArrayEquals(ct, jdk.doFinal(p), name + " vector disagrees with the JDK");

    KeySpec spec = k.length == 16 ? KeySpec.AES_128 : KeySpec.AES_256;
    String id = importViaRsa(k, spec, KeyUsage.ENCRYPT_DECRYPT, false, "gcm-" + name).keyId();
    try {
      assertArrayEquals(p, hsm.crypto().decrypt(id, Algorithm.AES_GCM, ct, n, a), name);
      TestSupport.assertHsm(ErrorCode.CRYPTO_FAILURE, () -> hsm.crypto().decrypt(id, Algorithm.AES_GCM, flip(ct, -1), n, a));
      // and the token's own encryption (fresh IV) decrypts with the JDK
      CryptoService.Encrypted e = hsm.crypto().encrypt(id, Algorithm.AES_GCM, p, a);
      jdk.init(Cipher.DECRYPT_MODE, new SecretKeySpec(k, "AES"), new GCMParameterSpec(128, e.iv()));
      if (a != null) {
        jdk.updateAAD(a);
      }
      assertArrayEquals(p, jdk.doFinal(e.ciphertext()), name + ": JDK cannot decrypt the token's GCM");
    } finally {
      hsm.keys().delete(id);
    }
  }

  @Test
  void aesCbcPadAgreesWithTheJdkBothWays() throws Exception {
    // NIST SP 800-38A F.2.1 key; CBC_PAD adds a PKCS#7 block, so the JDK's PKCS5Padding is the reference
    byte[] k = hex("2b7e151628aed2a6abf7158809cf4f3c");
    byte[] iv = hex("000102030405060708090a0b0c0d0e0f");
    byte[] p = hex("6bc1bee22e409f96e93d7e117393172a");
    String id = importViaRsa(k, KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, false, "cbc").keyId();
    try {
      Cipher jdk = Cipher.getInstance("AES/CBC/PKCS5Padding");
      jdk.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(k, "AES"), new IvParameterSpec(iv));
      byte[] ct = jdk.doFinal(p);
      assertEquals("7649abac8119b246cee98e9b12e9197d", hex(Arrays.copyOf(ct, 16)), "SP 800-38A F.2.1 block 1");
      assertArrayEquals(p, hsm.crypto().decrypt(id, Algorithm.AES_CBC_PAD, ct, iv, null));
      for (int len : new int[] {0, 5, 16, 33}) {
        byte[] plain = Arrays.copyOf(hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"), len);
        CryptoService.Encrypted e = hsm.crypto().encrypt(id, Algorithm.AES_CBC_PAD, plain, null);
        jdk.init(Cipher.DECRYPT_MODE, new SecretKeySpec(k, "AES"), new IvParameterSpec(e.iv()));
        assertArrayEquals(plain, jdk.doFinal(e.ciphertext()), "len " + len);
      }
    } finally {
      hsm.keys().delete(id);
    }
  }

  // ---- HMAC-SHA256: RFC 4231. HMAC pads short keys with zeros to the block size, so the RFC's
  // 20- and 4-byte keys zero-padded to 32 bytes (the HMAC_SHA256 spec) give the RFC's results. ----

  static Stream<Arguments> hmacVectors() {
    return Stream.of(
        Arguments.of("RFC4231 TC1", "0b".repeat(20), hex("4869205468657265"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        Arguments.of("RFC4231 TC2", "4a656665", "what do ya want for nothing?".getBytes(StandardCharsets.US_ASCII),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        Arguments.of("RFC4231 TC3", "aa".repeat(20), hex("dd".repeat(50)),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("hmacVectors")
  void hmacSha256KnownAnswers(String name, String key, byte[] data, String expected) throws Exception {
    byte[] k32 = Arrays.copyOf(hex(key), 32);
    Mac jdk = Mac.getInstance("HmacSHA256");
    jdk.init(new SecretKeySpec(k32, "HmacSHA256"));
    assertEquals(expected, hex(jdk.doFinal(data)), name + ": zero-padding argument broken?");
    String id = importViaRsa(k32, KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, false, "hmac-" + name).keyId();
    try {
      byte[] mac = hsm.crypto().mac(id, Algorithm.HMAC_SHA256, data);
      assertEquals(expected, hex(mac), name);
      assertTrue(hsm.crypto().verifyMac(id, Algorithm.HMAC_SHA256, data, hex(expected)));
      assertFalse(hsm.crypto().verifyMac(id, Algorithm.HMAC_SHA256, data, flip(hex(expected), 7)));
      assertEquals(hex(jdk.doFinal(new byte[0])), hex(hsm.crypto().mac(id, Algorithm.HMAC_SHA256, new byte[0])));
    } finally {
      hsm.keys().delete(id);
    }
  }

  // ---- export: AES key wrap with padding (RFC 5649) ----

  @Test
  void exportWithAesKwpEqualsTheJdk() throws Exception {
    for (byte[] k : new byte[][] {hex("00112233445566778899aabbccddeeff"),
        hex("8899aabbccddeeff0011223344556677f0e1d2c3b4a5968778695a4b3c2d1e0f")}) {
      KeySpec spec = k.length == 16 ? KeySpec.AES_128 : KeySpec.AES_256;
      String id = importViaRsa(k, spec, KeyUsage.ENCRYPT_DECRYPT, true, "exportable-" + spec).keyId();
      try {
        byte[] wrapped = hsm.keys().wrap(id, wrapW, Algorithm.AES_KEY_WRAP_PAD);
        assertEquals(k.length + 8, wrapped.length);
        assertEquals(hex(jdkKwp(W, k)), hex(wrapped), "token KWP differs from the JDK's AES/KWP");
        // and the blob imports again as the same key
        String again = hsm.keys().importWrapped(wrapW, Algorithm.AES_KEY_WRAP_PAD, wrapped, spec,
            KeyUsage.ENCRYPT_DECRYPT, "reimported", false).keyId();
        CryptoService.Encrypted e = hsm.crypto().encrypt(id, Algorithm.AES_GCM, k, null);
        assertArrayEquals(k, hsm.crypto().decrypt(again, Algorithm.AES_GCM, e.ciphertext(), e.iv(), null));
        hsm.keys().delete(again);
      } finally {
        hsm.keys().delete(id);
      }
    }
  }

  @Test
  void exportUnderRsaOaepReimportsAsTheSameKey() throws Exception {
    byte[] k = hex("feffe9928665731c6d6a8f9467308308");
    String id = importViaRsa(k, KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, true, "exportable-rsa").keyId();
    try {
      byte[] wrapped = hsm.keys().wrap(id, rsaWrap, Algorithm.RSA_OAEP_WRAP);
      assertEquals(256, wrapped.length);
      String again = hsm.keys().importWrapped(rsaWrap, Algorithm.RSA_OAEP_WRAP, wrapped, KeySpec.AES_128,
          KeyUsage.ENCRYPT_DECRYPT, "reimported-rsa", false).keyId();
      try {
        // GCM TC3 decrypts with the re-imported key: it is the same key
        byte[] ct = hex("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
            + "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985" + "4d5c2af327cd64a62cf35abd2ba6fab4");
        byte[] p = hsm.crypto().decrypt(again, Algorithm.AES_GCM, ct, hex("cafebabefacedbaddecaf888"), null);
        assertEquals("d9313225f88406e5", hex(Arrays.copyOf(p, 8)));
      } finally {
        hsm.keys().delete(again);
      }
    } finally {
      hsm.keys().delete(id);
    }
  }

  @Test
  void nonExportableKeysCannotBeWrapped() throws Exception {
    String id = importViaRsa(hex("00112233445566778899aabbccddeeff"), KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT,
        false, "not-exportable").keyId();
    String generated = hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "gen-not-exportable", false).keyId();
    try {
      for (String k : new String[] {id, generated}) {
        HsmException e = TestSupport.assertFailsUnchanged(hsm, inspector, ErrorCode.NOT_ALLOWED_BY_POLICY,
            () -> hsm.keys().wrap(k, wrapW, Algorithm.AES_KEY_WRAP_PAD));
        assertTrue(e.getMessage().contains(k), e.getMessage());
        TestSupport.assertFailsUnchanged(hsm, inspector, ErrorCode.NOT_ALLOWED_BY_POLICY,
            () -> hsm.keys().wrap(k, rsaWrap, Algorithm.RSA_OAEP_WRAP));
      }
    } finally {
      hsm.keys().delete(id);
      hsm.keys().delete(generated);
    }
  }

  @Test
  void theTokenItselfRefusesToWrapANonExportableKeyWithAnUntrustedKey() {
    // Below hsmbridge's own check: CKA_WRAP_WITH_TRUSTED must hold on the token too.
    String id = hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "wwt", false).keyId();
    try {
      long target = hsm.keys().entry(id).handle();
      long w = hsm.keys().entry(wrapW).handle();
      HsmException e = TestSupport.assertHsm(ErrorCode.NOT_ALLOWED_BY_POLICY,
          () -> inspector.call(s -> s.wrapKey(Mechanisms.aesKeyWrapPad(), w, target)));
      assertEquals(org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_KEY_NOT_WRAPPABLE, e.ckr());
    } finally {
      hsm.keys().delete(id);
    }
  }

  // ---- RSA private key import: JDK PKCS#8 wrapped with the JDK's AES/KWP under W ----

  @Test
  void importedRsaPrivateKeySignsAndDecryptsLikeTheJdkKey() throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
    g.initialize(2048);
    KeyPair jdk = g.generateKeyPair();
    byte[] blob = jdkKwp(W, jdk.getPrivate().getEncoded());
    byte[] message = "known message".getBytes(StandardCharsets.UTF_8);

    KeyInfo signer = hsm.keys().importWrapped(wrapW, Algorithm.AES_KEY_WRAP_PAD, blob, KeySpec.RSA_2048,
        KeyUsage.SIGN_VERIFY, "imported-rsa", false);
    KeyInfo decrypter = hsm.keys().importWrapped(wrapW, Algorithm.AES_KEY_WRAP_PAD, blob, KeySpec.RSA_2048,
        KeyUsage.ENCRYPT_DECRYPT, "imported-rsa-enc", false);
    try {
      assertEquals(KeySpec.RSA_2048, signer.spec());
      assertEquals(2, inspector.objectsWithId(signer.keyId()), "private key and its derived public key");
      assertArrayEquals(jdk.getPublic().getEncoded(), hsm.keys().publicKey(signer.keyId()));

      // PKCS#1 v1.5 is deterministic: the token's signature must equal the JDK's, byte for byte
      for (Algorithm alg : new Algorithm[] {Algorithm.RSA_PKCS1_SHA256, Algorithm.RSA_PKCS1_SHA384, Algorithm.RSA_PKCS1_SHA512}) {
        assertArrayEquals(jdkSign(alg, jdk.getPrivate(), message), hsm.crypto().sign(signer.keyId(), alg, message), alg.toString());
      }
      // PSS is randomised: each side verifies the other's
      for (Algorithm alg : new Algorithm[] {Algorithm.RSA_PSS_SHA256, Algorithm.RSA_PSS_SHA384, Algorithm.RSA_PSS_SHA512}) {
        byte[] tokenSig = hsm.crypto().sign(signer.keyId(), alg, message);
        assertTrue(CryptoRoundTripTest.jdkVerify("RSASSA-PSS", CryptoRoundTripTest.pssSpec(alg), jdk.getPublic(), message, tokenSig));
        assertTrue(hsm.crypto().verify(signer.keyId(), alg, message, jdkSign(alg, jdk.getPrivate(), message)), alg.toString());
      }

      // OAEP both ways: the JDK holds the private key too
      Cipher oaep = Cipher.getInstance("RSA/ECB/OAEPWithSHA-1AndMGF1Padding");
      oaep.init(Cipher.ENCRYPT_MODE, jdk.getPublic());
      assertArrayEquals(message, hsm.crypto().decrypt(decrypter.keyId(), Algorithm.RSA_OAEP, oaep.doFinal(message), null, null));
      CryptoService.Encrypted e = hsm.crypto().encrypt(decrypter.keyId(), Algorithm.RSA_OAEP, message, null);
      oaep.init(Cipher.DECRYPT_MODE, jdk.getPrivate());
      assertArrayEquals(message, oaep.doFinal(e.ciphertext()));
    } finally {
      hsm.keys().delete(signer.keyId());
      hsm.keys().delete(decrypter.keyId());
    }
    assertEquals(0, inspector.objectsWithId(signer.keyId()));
  }

  @Test
  void importOfAKeyOfAnotherSizeIsRefusedAndLeavesNothing() throws Exception {
    byte[] aes128 = jdkKwp(W, hex("00112233445566778899aabbccddeeff"));
    TestSupport.assertFailsUnchanged(hsm, inspector, ErrorCode.INVALID_PARAMETER,
        () -> hsm.keys().importWrapped(wrapW, Algorithm.AES_KEY_WRAP_PAD, aes128, KeySpec.AES_256,
            KeyUsage.ENCRYPT_DECRYPT, "wrong-size", false));
    TestSupport.assertFailsUnchanged(hsm, inspector, ErrorCode.INVALID_PARAMETER,
        () -> hsm.keys().importWrapped(wrapW, Algorithm.AES_KEY_WRAP_PAD, aes128, KeySpec.HMAC_SHA256,
            KeyUsage.SIGN_VERIFY, "short-hmac", false));
    KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
    g.initialize(2048);
    byte[] rsa = jdkKwp(W, g.generateKeyPair().getPrivate().getEncoded());
    TestSupport.assertFailsUnchanged(hsm, inspector, ErrorCode.INVALID_PARAMETER,
        () -> hsm.keys().importWrapped(wrapW, Algorithm.AES_KEY_WRAP_PAD, rsa, KeySpec.RSA_3072,
            KeyUsage.SIGN_VERIFY, "wrong-rsa", false));
  }

  // ---- Ed25519: RFC 8032 section 7.1, planted as a token key (import of EC keys is refused) ----

  @Test
  void ed25519Rfc8032Test1And2() throws Exception {
    String[][] vectors = {
        {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
        {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"}};
    for (String[] v : vectors) {
      byte[] message = hex(v[2]);
      PrivateKey jdkPriv = KeyFactory.getInstance("Ed25519").generatePrivate(
          new PKCS8EncodedKeySpec(hex("302e020100300506032b657004220420" + v[0])));
      PublicKey jdkPub = KeyFactory.getInstance("Ed25519").generatePublic(
          new X509EncodedKeySpec(hex("302a300506032b6570032100" + v[1])));
      Signature s = Signature.getInstance("Ed25519");
      s.initSign(jdkPriv);
      s.update(message);
      byte[] jdkSig = s.sign();
      assertEquals(v[3], hex(jdkSig), "vector disagrees with the JDK");

      String id = inspector.plantEd25519Key(hex(v[0]), hex(v[1]), "rfc8032");
      hsm.keys().reload();
      try {
        assertArrayEquals(jdkPub.getEncoded(), hsm.keys().publicKey(id));
        if (message.length > 0) {
          assertEquals(v[3], hex(hsm.crypto().sign(id, Algorithm.ED25519, message)), "RFC 8032 signature");
          assertTrue(hsm.crypto().verify(id, Algorithm.ED25519, message, hex(v[3])));
          assertFalse(hsm.crypto().verify(id, Algorithm.ED25519, message, flip(hex(v[3]), 40)));
        }
        byte[] longer = "a longer message".getBytes(StandardCharsets.UTF_8);
        s.initSign(jdkPriv);
        s.update(longer);
        assertArrayEquals(s.sign(), hsm.crypto().sign(id, Algorithm.ED25519, longer));
      } finally {
        hsm.keys().delete(id);
      }
    }
  }

  static byte[] jdkSign(Algorithm alg, PrivateKey key, byte[] message) throws Exception {
    Signature s = Signature.getInstance(CryptoRoundTripTest.jdkSignatureName(alg));
    if (CryptoRoundTripTest.pssSpec(alg) != null) {
      s.setParameter(CryptoRoundTripTest.pssSpec(alg));
    }
    s.initSign(key);
    s.update(message);
    return s.sign();
  }
}
