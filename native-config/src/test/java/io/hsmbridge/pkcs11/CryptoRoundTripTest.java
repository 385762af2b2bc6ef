package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.flip;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.stream.Stream;
import javax.crypto.Cipher;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every key spec generates on a real SoftHSM2 token and every operation round-trips; whatever the JDK
 * can check independently (signatures, OAEP, digests, public key encodings) is checked by the JDK.
 */
class CryptoRoundTripTest {
  private static final byte[] MESSAGE = "attack at dawn, bring sandwiches".getBytes(StandardCharsets.UTF_8);
  private static HsmToken hsm;
  private static TokenInspector inspector;
  private static String aes128;
  private static String aes256;
  private static String rsaSign;
  private static String rsaEncrypt;
  private static String ec256;
  private static String ec384;
  private static String ed25519;
  private static String hmac;

  @BeforeAll
  static void open() {
    TokenConfig config = SoftHsmFixture.newToken("crypto");
    hsm = HsmToken.open(config);
    inspector = new TokenInspector(config);
    aes128 = hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "aes128", false).keyId();
    aes256 = hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "aes256", false).keyId();
    rsaSign = hsm.keys().generate(KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY, "rsa-sign", false).keyId();
    rsaEncrypt = hsm.keys().generate(KeySpec.RSA_2048, KeyUsage.ENCRYPT_DECRYPT, "rsa-enc", false).keyId();
    ec256 = hsm.keys().generate(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "ec256", false).keyId();
    ec384 = hsm.keys().generate(KeySpec.EC_P384, KeyUsage.SIGN_VERIFY, "ec384", false).keyId();
    ed25519 = hsm.keys().generate(KeySpec.ED25519, KeyUsage.SIGN_VERIFY, "ed25519", false).keyId();
    hmac = hsm.keys().generate(KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, "hmac", false).keyId();
  }

  @AfterAll
  static void close() {
    inspector.close();
    hsm.close();
  }

  // ---- generation -------------------------------------------------------------------------------

  @Test
  void everySpecGeneratesWithSecureDefaultsAndCorrectParameters() throws Exception {
    try (HsmToken t = HsmToken.open(SoftHsmFixture.newToken("specs"))) {
      for (KeySpec spec : KeySpec.values()) {
        KeyInfo k = t.keys().generate(spec, KeyUsage.defaultFor(spec), "k-" + spec, false);
        assertEquals(spec, k.spec());
        assertEquals(KeyUsage.defaultFor(spec), k.usage());
        assertEquals("k-" + spec, k.label());
        assertTrue(k.keyId().matches("[0-9a-f]{32}"), k.keyId());
        assertFalse(k.exportable(), "keys are not exportable by default");
        assertTrue(k.extractable(), "trusted keys must still be able to wrap it for replication");
        assertTrue(k.sensitive());
        assertEquals(k, t.keys().describe(k.keyId()));
        if (spec.family().isAsymmetric()) {
          PublicKey pub = jdkPublic(t, k.keyId(), spec);
          if (spec.family() == KeySpec.Family.RSA) {
            assertEquals(spec.bits(), ((RSAPublicKey) pub).getModulus().bitLength());
            // every size signs, and the JDK agrees
            byte[] sig = t.crypto().sign(k.keyId(), Algorithm.RSA_PKCS1_SHA256, MESSAGE);
            assertTrue(jdkVerify("SHA256withRSA", null, pub, MESSAGE, sig), spec.toString());
          } else if (spec.family() == KeySpec.Family.EC) {
            assertEquals(spec.bits(), ((ECPublicKey) pub).getParams().getCurve().getField().getFieldSize());
          } else {
            assertEquals("EdDSA", pub.getAlgorithm());
          }
        }
      }
      assertEquals(KeySpec.values().length, t.keys().count());
      assertEquals(KeySpec.values().length, t.keys().list().size());
    }
  }

  @ParameterizedTest
  @EnumSource(value = KeySpec.class, names = {"AES_128", "AES_256", "HMAC_SHA256"})
  void exportableFlagIsKept(KeySpec spec) {
    KeyInfo k = hsm.keys().generate(spec, KeyUsage.defaultFor(spec), "exp-" + spec, true);
    try {
      assertTrue(k.exportable());
      assertTrue(k.extractable());
      assertTrue(k.sensitive());
    } finally {
      hsm.keys().delete(k.keyId());
    }
  }

  @Test
  void generatedKeysHaveDistinctIdsAndBothHalvesOnTheToken() {
    Set<String> ids = new HashSet<>(Arrays.asList(aes128, aes256, rsaSign, rsaEncrypt, ec256, ec384, ed25519, hmac));
    assertEquals(8, ids.size());
    assertEquals(1, inspector.objectsWithId(aes128));
    assertEquals(1, inspector.objectsWithId(hmac));
    assertEquals(2, inspector.objectsWithId(rsaSign), "private and public half");
    assertEquals(2, inspector.objectsWithId(ec256));
    assertEquals(2, inspector.objectsWithId(ed25519));
  }

  // ---- AES --------------------------------------------------------------------------------------

  static Stream<Arguments> aesCases() {
    return Stream.of(KeySpec.AES_128, KeySpec.AES_256).flatMap(spec -> Stream.of(
        Arguments.of(spec, Algorithm.AES_GCM, null),
        Arguments.of(spec, Algorithm.AES_GCM, "header v1".getBytes(StandardCharsets.UTF_8)),
        Arguments.of(spec, Algorithm.AES_CBC_PAD, null)));
  }

  @ParameterizedTest
  @MethodSource("aesCases")
  void aesRoundTrips(KeySpec spec, Algorithm alg, byte[] aad) {
    String key = spec == KeySpec.AES_128 ? aes128 : aes256;
    for (int len : new int[] {0, 1, 15, 16, 17, 1000, 65536}) {
      byte[] plaintext = new byte[len];
      new java.util.Random(len).nextBytes(plaintext);
      CryptoService.Encrypted e = hsm.crypto().encrypt(key, alg, plaintext, aad);
      if (alg == Algorithm.AES_GCM) {
        assertEquals(12, e.iv().length);
        assertEquals(len + 16, e.ciphertext().length, "ciphertext || 16-byte tag");
      } else {
        assertEquals(16, e.iv().length);
        assertEquals((len / 16 + 1) * 16, e.ciphertext().length, "PKCS#7 padding always adds 1..16 bytes");
      }
      if (len >= 16) {
        assertFalse(Arrays.equals(Arrays.copyOf(plaintext, 16), Arrays.copyOf(e.ciphertext(), 16)));
      }
      assertArrayEquals(plaintext, hsm.crypto().decrypt(key, alg, e.ciphertext(), e.iv(), aad), "len " + len);
    }
  }

  @ParameterizedTest
  @EnumSource(value = Algorithm.class, names = {"AES_GCM", "AES_CBC_PAD"})
  void aesIvsAreFreshForEveryEncryption(Algorithm alg) {
    Set<String> ivs = new HashSet<>();
    Set<String> ciphertexts = new HashSet<>();
    for (int i = 0; i < 50; i++) {
      CryptoService.Encrypted e = hsm.crypto().encrypt(aes256, alg, MESSAGE, null);
      ivs.add(TestSupport.hex(e.iv()));
      ciphertexts.add(TestSupport.hex(e.ciphertext()));
    }
    assertEquals(50, ivs.size());
    assertEquals(50, ciphertexts.size());
  }

  @Test
  void aesKeysOfDifferentSizesDoNotDecryptEachOther() {
    CryptoService.Encrypted e = hsm.crypto().encrypt(aes128, Algorithm.AES_GCM, MESSAGE, null);
    TestSupport.assertHsm(io.hsmbridge.protocol.ErrorCode.CRYPTO_FAILURE,
        () -> hsm.crypto().decrypt(aes256, Algorithm.AES_GCM, e.ciphertext(), e.iv(), null));
  }

  // ---- RSA --------------------------------------------------------------------------------------

  @Test
  void rsaOaepJdkEncryptsTokenDecrypts() throws Exception {
    PublicKey pub = jdkPublic(hsm, rsaEncrypt, KeySpec.RSA_2048);
    Cipher c = Cipher.getInstance("RSA/ECB/OAEPWithSHA-1AndMGF1Padding");
    for (int len : new int[] {1, 32, 214}) { // 214 = 256 - 2*20 - 2, the OAEP-SHA1 maximum for 2048 bits
      byte[] plaintext = Arrays.copyOf(MESSAGE, len);
      c.init(Cipher.ENCRYPT_MODE, pub);
      byte[] ct = c.doFinal(plaintext);
      assertArrayEquals(plaintext, hsm.crypto().decrypt(rsaEncrypt, Algorithm.RSA_OAEP, ct, null, null));
    }
  }

  @Test
  void rsaOaepTokenRoundTripIsRandomised() {
    CryptoService.Encrypted a = hsm.crypto().encrypt(rsaEncrypt, Algorithm.RSA_OAEP, MESSAGE, null);
    CryptoService.Encrypted b = hsm.crypto().encrypt(rsaEncrypt, Algorithm.RSA_OAEP, MESSAGE, null);
    assertNull(a.iv());
    assertEquals(256, a.ciphertext().length);
    assertFalse(Arrays.equals(a.ciphertext(), b.ciphertext()), "OAEP is randomised");
    assertArrayEquals(MESSAGE, hsm.crypto().decrypt(rsaEncrypt, Algorithm.RSA_OAEP, a.ciphertext(), null, null));
    assertArrayEquals(MESSAGE, hsm.crypto().decrypt(rsaEncrypt, Algorithm.RSA_OAEP, b.ciphertext(), null, null));
  }

  @ParameterizedTest
  @EnumSource(value = Algorithm.class, names = {"RSA_PKCS1_SHA256", "RSA_PKCS1_SHA384", "RSA_PKCS1_SHA512",
      "RSA_PSS_SHA256", "RSA_PSS_SHA384", "RSA_PSS_SHA512"})
  void rsaSignaturesVerifyWithTheJdk(Algorithm alg) throws Exception {
    PublicKey pub = jdkPublic(hsm, rsaSign, KeySpec.RSA_2048);
    byte[] sig = hsm.crypto().sign(rsaSign, alg, MESSAGE);
    assertEquals(256, sig.length);
    String jdkName = jdkSignatureName(alg);
    PSSParameterSpec pss = pssSpec(alg);
    assertTrue(jdkVerify(jdkName, pss, pub, MESSAGE, sig), "JDK rejects the token's " + alg);
    assertFalse(jdkVerify(jdkName, pss, pub, flip(MESSAGE, 0), sig));
    assertTrue(hsm.crypto().verify(rsaSign, alg, MESSAGE, sig));
    assertFalse(hsm.crypto().verify(rsaSign, alg, flip(MESSAGE, 0), sig));
    assertFalse(hsm.crypto().verify(rsaSign, alg, MESSAGE, flip(sig, 100)));
    assertFalse(hsm.crypto().verify(rsaSign, alg, MESSAGE, Arrays.copyOf(sig, 255)), "short signature is false, not an error");
    byte[] again = hsm.crypto().sign(rsaSign, alg, MESSAGE);
    if (alg.name().startsWith("RSA_PSS")) {
      assertFalse(Arrays.equals(sig, again), "PSS uses a random salt");
    } else {
      assertArrayEquals(sig, again, "PKCS#1 v1.5 is deterministic");
    }
  }

  @Test
  void rsaSignaturesOfOneHashDoNotVerifyAsAnother() {
    byte[] sig = hsm.crypto().sign(rsaSign, Algorithm.RSA_PKCS1_SHA256, MESSAGE);
    assertFalse(hsm.crypto().verify(rsaSign, Algorithm.RSA_PKCS1_SHA384, MESSAGE, sig));
    assertFalse(hsm.crypto().verify(rsaSign, Algorithm.RSA_PSS_SHA256, MESSAGE, sig));
  }

  // ---- ECDSA ------------------------------------------------------------------------------------

  static Stream<Arguments> ecdsaCases() {
    return Stream.of(KeySpec.EC_P256, KeySpec.EC_P384).flatMap(spec -> Stream.of(
        Arguments.of(spec, Algorithm.ECDSA_SHA256),
        Arguments.of(spec, Algorithm.ECDSA_SHA384),
        Arguments.of(spec, Algorithm.ECDSA_SHA512)));
  }

  @ParameterizedTest
  @MethodSource("ecdsaCases")
  void ecdsaTokenSignaturesAreDerAndVerifyWithTheJdk(KeySpec spec, Algorithm alg) throws Exception {
    String key = spec == KeySpec.EC_P256 ? ec256 : ec384;
    PublicKey pub = jdkPublic(hsm, key, spec);
    String jdkName = jdkSignatureName(alg);
    for (int i = 0; i < 20; i++) { // enough to hit r or s with a high bit set (DER leading zero)
      byte[] message = (i + ":" + new String(MESSAGE, StandardCharsets.UTF_8)).getBytes(StandardCharsets.UTF_8);
      byte[] sig = hsm.crypto().sign(key, alg, message);
      assertEquals(0x30, sig[0] & 0xff, "DER SEQUENCE");
      assertTrue(jdkVerify(jdkName, null, pub, message, sig), "JDK rejects the token's " + alg + " on " + spec);
      assertFalse(jdkVerify(jdkName, null, pub, flip(message, 0), sig));
      assertTrue(hsm.crypto().verify(key, alg, message, sig));
      assertFalse(hsm.crypto().verify(key, alg, flip(message, 0), sig));
    }
  }

  @ParameterizedTest
  @MethodSource("ecdsaCases")
  void ecdsaJdkSignaturesVerifyOnTheToken(KeySpec spec, Algorithm alg) throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(new ECGenParameterSpec(spec == KeySpec.EC_P256 ? "secp256r1" : "secp384r1"));
    KeyPair jdk = g.generateKeyPair();
    String key = inspector.plantEcKey(spec, jdk, "planted-" + spec + "-" + alg);
    hsm.keys().reload();
    try {
      KeyInfo info = hsm.keys().describe(key);
      assertEquals(spec, info.spec());
      assertEquals(KeyUsage.SIGN_VERIFY, info.usage());
      assertArrayEquals(jdk.getPublic().getEncoded(), hsm.keys().publicKey(key), "SPKI encodes the same point");
      Signature s = Signature.getInstance(jdkSignatureName(alg));
      for (int i = 0; i < 10; i++) {
        byte[] message = (i + "-jdk").getBytes(StandardCharsets.UTF_8);
        s.initSign(jdk.getPrivate());
        s.update(message);
        byte[] sig = s.sign();
        assertTrue(hsm.crypto().verify(key, alg, message, sig), "token rejects the JDK's " + alg);
        assertFalse(hsm.crypto().verify(key, alg, flip(message, 0), sig));
        // and the other way, with the same key
        byte[] tokenSig = hsm.crypto().sign(key, alg, message);
        assertTrue(jdkVerify(jdkSignatureName(alg), null, jdk.getPublic(), message, tokenSig));
      }
    } finally {
      hsm.keys().delete(key);
    }
  }

  @Test
  void ecdsaMalformedSignaturesAreFalseNotErrors() {
    byte[] sig = hsm.crypto().sign(ec256, Algorithm.ECDSA_SHA256, MESSAGE);
    assertFalse(hsm.crypto().verify(ec256, Algorithm.ECDSA_SHA256, MESSAGE, new byte[0]));
    assertFalse(hsm.crypto().verify(ec256, Algorithm.ECDSA_SHA256, MESSAGE, new byte[64]), "raw r||s is not accepted");
    assertFalse(hsm.crypto().verify(ec256, Algorithm.ECDSA_SHA256, MESSAGE, Arrays.copyOf(sig, sig.length - 1)));
    byte[] trailing = Arrays.copyOf(sig, sig.length + 1);
    assertFalse(hsm.crypto().verify(ec256, Algorithm.ECDSA_SHA256, MESSAGE, trailing), "trailing garbage");
    assertFalse(hsm.crypto().verify(ec384, Algorithm.ECDSA_SHA256, MESSAGE, sig), "another key");
  }

  // ---- Ed25519 ----------------------------------------------------------------------------------

  @Test
  void ed25519SignaturesVerifyWithTheJdk() throws Exception {
    PublicKey pub = jdkPublic(hsm, ed25519, KeySpec.ED25519);
    for (byte[] message : new byte[][] {MESSAGE, new byte[1], new byte[5000]}) {
      byte[] sig = hsm.crypto().sign(ed25519, Algorithm.ED25519, message);
      assertEquals(64, sig.length);
      assertArrayEquals(sig, hsm.crypto().sign(ed25519, Algorithm.ED25519, message), "Ed25519 is deterministic");
      assertTrue(jdkVerify("Ed25519", null, pub, message, sig));
      assertTrue(hsm.crypto().verify(ed25519, Algorithm.ED25519, message, sig));
      assertFalse(hsm.crypto().verify(ed25519, Algorithm.ED25519, flip(message, 0), sig));
      assertFalse(hsm.crypto().verify(ed25519, Algorithm.ED25519, message, flip(sig, 5)));
    }
  }

  // ---- HMAC, digest, random ---------------------------------------------------------------------

  @Test
  void hmacRoundTrips() {
    Algorithm alg = Algorithm.HMAC_SHA256;
    byte[] mac = hsm.crypto().mac(hmac, alg, MESSAGE);
    assertEquals(32, mac.length);
    assertArrayEquals(mac, hsm.crypto().mac(hmac, alg, MESSAGE), "deterministic");
    assertTrue(hsm.crypto().verifyMac(hmac, alg, MESSAGE, mac));
    for (int i : new int[] {0, mac.length / 2, -1}) {
      assertFalse(hsm.crypto().verifyMac(hmac, alg, MESSAGE, flip(mac, i)), "flipped byte " + i);
    }
    assertFalse(hsm.crypto().verifyMac(hmac, alg, flip(MESSAGE, 3), mac));
    assertFalse(hsm.crypto().verifyMac(hmac, alg, MESSAGE, Arrays.copyOf(mac, mac.length - 1)), "truncated mac");
    assertFalse(hsm.crypto().verifyMac(hmac, alg, MESSAGE, new byte[0]));
    byte[] emptyMac = hsm.crypto().mac(hmac, alg, new byte[0]);
    assertEquals(32, emptyMac.length);
    assertFalse(Arrays.equals(mac, emptyMac));
    assertTrue(hsm.crypto().verifyMac(hmac, alg, new byte[0], emptyMac));
    assertFalse(hsm.crypto().verifyMac(hmac, alg, new byte[0], flip(emptyMac, 0)));
  }

  @Test
  void emptyMessagesSignWhereTheTokenCanAndAreRefusedWhereItCannot() throws Exception {
    byte[] empty = new byte[0];
    PublicKey pub = jdkPublic(hsm, rsaSign, KeySpec.RSA_2048);
    for (Algorithm alg : new Algorithm[] {Algorithm.RSA_PKCS1_SHA256, Algorithm.RSA_PSS_SHA512}) {
      byte[] sig = hsm.crypto().sign(rsaSign, alg, empty);
      assertTrue(jdkVerify(jdkSignatureName(alg), pssSpec(alg), pub, empty, sig), alg.toString());
      assertTrue(hsm.crypto().verify(rsaSign, alg, empty, sig));
      assertFalse(hsm.crypto().verify(rsaSign, alg, new byte[1], sig));
    }
    byte[] ecSig = hsm.crypto().sign(ec256, Algorithm.ECDSA_SHA256, empty);
    assertTrue(jdkVerify("SHA256withECDSA", null, jdkPublic(hsm, ec256, KeySpec.EC_P256), empty, ecSig));
    assertTrue(hsm.crypto().verify(ec256, Algorithm.ECDSA_SHA256, empty, ecSig));
    // no multi-part EdDSA or OAEP on SoftHSM2, and the wrapper cannot pass an empty buffer
    TestSupport.assertFailsUnchanged(hsm, inspector, io.hsmbridge.protocol.ErrorCode.INVALID_PARAMETER,
        () -> hsm.crypto().sign(ed25519, Algorithm.ED25519, empty));
    TestSupport.assertFailsUnchanged(hsm, inspector, io.hsmbridge.protocol.ErrorCode.INVALID_PARAMETER,
        () -> hsm.crypto().verify(ed25519, Algorithm.ED25519, empty, new byte[64]));
    TestSupport.assertFailsUnchanged(hsm, inspector, io.hsmbridge.protocol.ErrorCode.INVALID_PARAMETER,
        () -> hsm.crypto().encrypt(rsaEncrypt, Algorithm.RSA_OAEP, empty, null));
    assertFalse(hsm.crypto().verify(rsaSign, Algorithm.RSA_PKCS1_SHA256, MESSAGE, empty), "empty signature");
    assertFalse(hsm.crypto().verify(ed25519, Algorithm.ED25519, MESSAGE, empty), "empty signature");
  }

  @ParameterizedTest
  @EnumSource(value = Algorithm.class, names = {"SHA256", "SHA384", "SHA512"})
  void digestEqualsTheJdk(Algorithm alg) throws Exception {
    MessageDigest md = MessageDigest.getInstance(alg.name().replace("SHA", "SHA-"));
    for (int len : new int[] {0, 3, 64, 70_000}) {
      byte[] message = new byte[len];
      new java.util.Random(len).nextBytes(message);
      assertArrayEquals(md.digest(message), hsm.crypto().digest(alg, message), alg + " of " + len + " bytes");
    }
  }

  @ParameterizedTest
  @ValueSource(ints = {1, 2, 32, 4096})
  void randomHasTheAskedLength(int length) {
    byte[] r = hsm.crypto().random(length);
    assertEquals(length, r.length);
    if (length >= 32) {
      assertFalse(Arrays.equals(new byte[length], r), "all zeros");
    }
  }

  @Test
  void randomDoesNotRepeat() {
    Set<String> seen = new HashSet<>();
    for (int i = 0; i < 200; i++) {
      assertTrue(seen.add(TestSupport.hex(hsm.crypto().random(16))), "repeated 16-byte random value");
    }
    // crude bias check on 4 KiB: each bit position set roughly half of the time
    byte[] big = hsm.crypto().random(4096);
    int ones = 0;
    for (byte b : big) {
      ones += Integer.bitCount(b & 0xff);
    }
    assertTrue(ones > 4096 * 8 * 0.45 && ones < 4096 * 8 * 0.55, "ones: " + ones);
  }

  // ---- public keys ------------------------------------------------------------------------------

  @Test
  void publicKeysParseWithKeyFactory() throws Exception {
    assertEquals("RSA", jdkPublic(hsm, rsaSign, KeySpec.RSA_2048).getAlgorithm());
    assertEquals("RSA", jdkPublic(hsm, rsaEncrypt, KeySpec.RSA_2048).getAlgorithm());
    ECPublicKey p256 = (ECPublicKey) jdkPublic(hsm, ec256, KeySpec.EC_P256);
    ECPublicKey p384 = (ECPublicKey) jdkPublic(hsm, ec384, KeySpec.EC_P384);
    assertEquals(256, p256.getParams().getCurve().getField().getFieldSize());
    assertEquals(384, p384.getParams().getCurve().getField().getFieldSize());
    PublicKey ed = jdkPublic(hsm, ed25519, KeySpec.ED25519);
    assertEquals(44, ed.getEncoded().length, "RFC 8410 SPKI of Ed25519 is 44 bytes");
    assertArrayEquals(hsm.keys().publicKey(ed25519), ed.getEncoded(), "SPKI re-encodes identically");
  }

  @Test
  void publicKeyOfASecretKeyIsWrongKeyType() {
    TestSupport.assertHsm(io.hsmbridge.protocol.ErrorCode.WRONG_KEY_TYPE, () -> hsm.keys().publicKey(aes128));
    TestSupport.assertHsm(io.hsmbridge.protocol.ErrorCode.WRONG_KEY_TYPE, () -> hsm.keys().publicKey(hmac));
  }

  // ---- helpers ----------------------------------------------------------------------------------

  static PublicKey jdkPublic(HsmToken t, String keyId, KeySpec spec) throws Exception {
    String alg = spec.family() == KeySpec.Family.RSA ? "RSA" : spec.family() == KeySpec.Family.EC ? "EC" : "Ed25519";
    return KeyFactory.getInstance(alg).generatePublic(new X509EncodedKeySpec(t.keys().publicKey(keyId)));
  }

  static String jdkSignatureName(Algorithm alg) {
    String hash = alg.hash();
    switch (alg) {
      case RSA_PKCS1_SHA256: case RSA_PKCS1_SHA384: case RSA_PKCS1_SHA512: return hash + "withRSA";
      case RSA_PSS_SHA256: case RSA_PSS_SHA384: case RSA_PSS_SHA512: return "RSASSA-PSS";
      case ECDSA_SHA256: case ECDSA_SHA384: case ECDSA_SHA512: return hash + "withECDSA";
      case ED25519: return "Ed25519";
      default: throw new IllegalArgumentException(alg.toString());
    }
  }

  /** The PSS parameters hsmbridge promises: MGF1 with the same hash, salt = hash length, trailer 1. */
  static PSSParameterSpec pssSpec(Algorithm alg) {
    if (!alg.name().startsWith("RSA_PSS")) {
      return null;
    }
    String h = alg.hash().replace("SHA", "SHA-");
    int saltLen = Integer.parseInt(alg.hash().substring(3)) / 8;
    return new PSSParameterSpec(h, "MGF1", new MGF1ParameterSpec(h), saltLen, 1);
  }

  static boolean jdkVerify(String name, PSSParameterSpec pss, PublicKey pub, byte[] message, byte[] sig) throws Exception {
    Signature s = Signature.getInstance(name);
    if (pss != null) {
      s.setParameter(pss);
    }
    s.initVerify(pub);
    s.update(message);
    try {
      return s.verify(sig);
    } catch (java.security.SignatureException e) {
      return false;
    }
  }
}
