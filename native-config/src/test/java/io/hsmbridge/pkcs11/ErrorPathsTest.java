package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.flip;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every refusal on a real token: the right ErrorCode, a message that helps without leaking, and the
 * token exactly as it was (same keys in the cache, after a rescan, and the same object count).
 */
class ErrorPathsTest {
  private static final byte[] MESSAGE = "the message".getBytes(StandardCharsets.UTF_8);
  private static final String ABSENT = "0123456789abcdef0123456789abcdef";
  private static HsmToken hsm;
  private static TokenInspector inspector;
  private static String aes;
  private static String aesExportable;
  private static String aesWrap;
  private static String rsaSign;
  private static String rsaEnc;
  private static String rsaWrap;
  private static String ec;
  private static String ed;
  private static String hmac;

  @BeforeAll
  static void open() {
    TokenConfig config = SoftHsmFixture.newToken("errors");
    hsm = HsmToken.open(config);
    inspector = new TokenInspector(config);
    aes = hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "aes", false).keyId();
    aesExportable = hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "aes-exp", true).keyId();
    aesWrap = hsm.keys().generate(KeySpec.AES_256, KeyUsage.WRAP_UNWRAP, "aes-wrap", false).keyId();
    rsaSign = hsm.keys().generate(KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY, "rsa-sign", false).keyId();
    rsaEnc = hsm.keys().generate(KeySpec.RSA_2048, KeyUsage.ENCRYPT_DECRYPT, "rsa-enc", false).keyId();
    rsaWrap = hsm.keys().generate(KeySpec.RSA_2048, KeyUsage.WRAP_UNWRAP, "rsa-wrap", false).keyId();
    ec = hsm.keys().generate(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "ec", false).keyId();
    ed = hsm.keys().generate(KeySpec.ED25519, KeyUsage.SIGN_VERIFY, "ed", false).keyId();
    hmac = hsm.keys().generate(KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, "hmac", false).keyId();
  }

  @AfterAll
  static void close() {
    inspector.close();
    hsm.close();
  }

  private static HsmException fails(ErrorCode code, Executable action) {
    return TestSupport.assertFailsUnchanged(hsm, inspector, code, action);
  }

  // ---- unknown keys -----------------------------------------------------------------------------

  static Stream<Arguments> unknownKeyCalls() {
    byte[] iv = new byte[12];
    byte[] blob = new byte[40];
    return Stream.of(
        Arguments.of("describe", (Executable) () -> hsm.keys().describe(ABSENT)),
        Arguments.of("delete", (Executable) () -> hsm.keys().delete(ABSENT)),
        Arguments.of("setLabel", (Executable) () -> hsm.keys().setLabel(ABSENT, "x")),
        Arguments.of("publicKey", (Executable) () -> hsm.keys().publicKey(ABSENT)),
        Arguments.of("wrap target", (Executable) () -> hsm.keys().wrap(ABSENT, aesWrap, Algorithm.AES_KEY_WRAP_PAD)),
        Arguments.of("wrap wrapping", (Executable) () -> hsm.keys().wrap(aesExportable, ABSENT, Algorithm.AES_KEY_WRAP_PAD)),
        Arguments.of("import", (Executable) () -> hsm.keys().importWrapped(ABSENT, Algorithm.AES_KEY_WRAP_PAD, blob,
            KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "x", false)),
        Arguments.of("encrypt", (Executable) () -> hsm.crypto().encrypt(ABSENT, Algorithm.AES_GCM, MESSAGE, null)),
        Arguments.of("decrypt", (Executable) () -> hsm.crypto().decrypt(ABSENT, Algorithm.AES_GCM, new byte[32], iv, null)),
        Arguments.of("sign", (Executable) () -> hsm.crypto().sign(ABSENT, Algorithm.ECDSA_SHA256, MESSAGE)),
        Arguments.of("verify", (Executable) () -> hsm.crypto().verify(ABSENT, Algorithm.ECDSA_SHA256, MESSAGE, new byte[70])),
        Arguments.of("mac", (Executable) () -> hsm.crypto().mac(ABSENT, Algorithm.HMAC_SHA256, MESSAGE)),
        Arguments.of("verifyMac", (Executable) () -> hsm.crypto().verifyMac(ABSENT, Algorithm.HMAC_SHA256, MESSAGE, new byte[32])));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("unknownKeyCalls")
  void unknownKeyIdIsUnknownKey(String what, Executable call) {
    HsmException e = fails(ErrorCode.UNKNOWN_KEY, call);
    assertTrue(e.getMessage().contains(ABSENT), e.getMessage());
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "xyz", "0123456789ABCDEF0123456789ABCDEZ", "0123456789abcdef", "../../etc/passwd"})
  void malformedKeyIdsAreUnknownKeys(String keyId) {
    fails(ErrorCode.UNKNOWN_KEY, () -> hsm.crypto().encrypt(keyId, Algorithm.AES_GCM, MESSAGE, null));
    fails(ErrorCode.UNKNOWN_KEY, () -> hsm.keys().describe(keyId));
  }

  @Test
  void nullKeyIdIsUnknownKey() {
    fails(ErrorCode.UNKNOWN_KEY, () -> hsm.keys().describe(null));
  }

  @Test
  void keyIdsAreCaseInsensitive() {
    assertEquals(hsm.keys().describe(aes), hsm.keys().describe(aes.toUpperCase(java.util.Locale.ROOT)));
  }

  // ---- wrong key type or usage ------------------------------------------------------------------

  static Stream<Arguments> wrongKeyCalls() {
    byte[] iv = new byte[12];
    return Stream.of(
        Arguments.of("AES key, RSA_PKCS1_SHA256", (Executable) () -> hsm.crypto().sign(aes, Algorithm.RSA_PKCS1_SHA256, MESSAGE)),
        Arguments.of("AES key, HMAC", (Executable) () -> hsm.crypto().mac(aes, Algorithm.HMAC_SHA256, MESSAGE)),
        Arguments.of("HMAC key, AES_GCM", (Executable) () -> hsm.crypto().encrypt(hmac, Algorithm.AES_GCM, MESSAGE, null)),
        Arguments.of("HMAC key, AES_GCM decrypt", (Executable) () -> hsm.crypto().decrypt(hmac, Algorithm.AES_GCM, new byte[32], iv, null)),
        Arguments.of("RSA key, AES_GCM", (Executable) () -> hsm.crypto().encrypt(rsaEnc, Algorithm.AES_GCM, MESSAGE, null)),
        Arguments.of("AES key, RSA_OAEP", (Executable) () -> hsm.crypto().encrypt(aes, Algorithm.RSA_OAEP, MESSAGE, null)),
        Arguments.of("EC key, RSA_PSS_SHA256", (Executable) () -> hsm.crypto().sign(ec, Algorithm.RSA_PSS_SHA256, MESSAGE)),
        Arguments.of("EC key, ED25519", (Executable) () -> hsm.crypto().sign(ec, Algorithm.ED25519, MESSAGE)),
        Arguments.of("Ed25519 key, ECDSA", (Executable) () -> hsm.crypto().verify(ed, Algorithm.ECDSA_SHA256, MESSAGE, new byte[70])),
        Arguments.of("RSA key, ECDSA", (Executable) () -> hsm.crypto().sign(rsaSign, Algorithm.ECDSA_SHA256, MESSAGE)),
        Arguments.of("HMAC key, sign", (Executable) () -> hsm.crypto().sign(hmac, Algorithm.ED25519, MESSAGE)),
        // usage
        Arguments.of("sign key, RSA_OAEP", (Executable) () -> hsm.crypto().decrypt(rsaSign, Algorithm.RSA_OAEP, new byte[256], null, null)),
        Arguments.of("sign key, RSA_OAEP encrypt", (Executable) () -> hsm.crypto().encrypt(rsaSign, Algorithm.RSA_OAEP, MESSAGE, null)),
        Arguments.of("encrypt key, sign", (Executable) () -> hsm.crypto().sign(rsaEnc, Algorithm.RSA_PKCS1_SHA256, MESSAGE)),
        Arguments.of("wrap key, RSA_OAEP", (Executable) () -> hsm.crypto().encrypt(rsaWrap, Algorithm.RSA_OAEP, MESSAGE, null)),
        Arguments.of("wrap key, AES_GCM", (Executable) () -> hsm.crypto().encrypt(aesWrap, Algorithm.AES_GCM, MESSAGE, null)),
        Arguments.of("wrap key, AES_CBC_PAD decrypt", (Executable) () -> hsm.crypto().decrypt(aesWrap, Algorithm.AES_CBC_PAD, new byte[16], new byte[16], null)),
        Arguments.of("encrypt key as wrapping key", (Executable) () -> hsm.keys().wrap(aesExportable, aes, Algorithm.AES_KEY_WRAP_PAD)),
        Arguments.of("RSA sign key as wrapping key", (Executable) () -> hsm.keys().wrap(aesExportable, rsaSign, Algorithm.RSA_OAEP_WRAP)),
        Arguments.of("AES wrap key with RSA_OAEP", (Executable) () -> hsm.keys().wrap(aesExportable, aesWrap, Algorithm.RSA_OAEP_WRAP)),
        Arguments.of("RSA wrap key with AES_KEY_WRAP_PAD", (Executable) () -> hsm.keys().wrap(aesExportable, rsaWrap, Algorithm.AES_KEY_WRAP_PAD)),
        Arguments.of("encrypt key to unwrap", (Executable) () -> hsm.keys().importWrapped(aes, Algorithm.AES_KEY_WRAP_PAD,
            new byte[40], KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "x", false)),
        Arguments.of("RSA encrypt key to unwrap", (Executable) () -> hsm.keys().importWrapped(rsaEnc, Algorithm.RSA_OAEP_WRAP,
            new byte[256], KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "x", false)),
        Arguments.of("public key of HMAC key", (Executable) () -> hsm.keys().publicKey(hmac)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("wrongKeyCalls")
  void wrongKeyTypeOrUsageIsWrongKeyType(String what, Executable call) {
    HsmException e = fails(ErrorCode.WRONG_KEY_TYPE, call);
    assertFalse(e.getMessage().contains("CKR_"), "refused before the token: " + e.getMessage());
  }

  @Test
  void wrongKeyTypeMessagesNameTheKeyAndWhatWasNeeded() {
    HsmException e = fails(ErrorCode.WRONG_KEY_TYPE, () -> hsm.crypto().sign(aes, Algorithm.RSA_PKCS1_SHA256, MESSAGE));
    assertTrue(e.getMessage().contains(aes) && e.getMessage().contains("RSA") && e.getMessage().contains("AES_256"), e.getMessage());
    e = fails(ErrorCode.WRONG_KEY_TYPE, () -> hsm.crypto().decrypt(rsaSign, Algorithm.RSA_OAEP, new byte[256], null, null));
    assertTrue(e.getMessage().contains("ENCRYPT_DECRYPT") && e.getMessage().contains("SIGN_VERIFY"), e.getMessage());
  }

  // ---- algorithm of the wrong kind ----------------------------------------------------------------

  static Stream<Arguments> wrongKindCalls() {
    return Stream.of(
        Arguments.of("encrypt with a signature alg", (Executable) () -> hsm.crypto().encrypt(rsaEnc, Algorithm.RSA_PKCS1_SHA256, MESSAGE, null)),
        Arguments.of("encrypt with a wrap alg", (Executable) () -> hsm.crypto().encrypt(rsaWrap, Algorithm.RSA_OAEP_WRAP, MESSAGE, null)),
        Arguments.of("sign with a cipher alg", (Executable) () -> hsm.crypto().sign(aes, Algorithm.AES_GCM, MESSAGE)),
        Arguments.of("sign with a MAC alg", (Executable) () -> hsm.crypto().sign(hmac, Algorithm.HMAC_SHA256, MESSAGE)),
        Arguments.of("mac with a digest alg", (Executable) () -> hsm.crypto().mac(hmac, Algorithm.SHA256, MESSAGE)),
        Arguments.of("digest with a MAC alg", (Executable) () -> hsm.crypto().digest(Algorithm.HMAC_SHA256, MESSAGE)),
        Arguments.of("digest with a cipher alg", (Executable) () -> hsm.crypto().digest(Algorithm.AES_GCM, MESSAGE)),
        Arguments.of("wrap with a cipher alg", (Executable) () -> hsm.keys().wrap(aesExportable, aes, Algorithm.AES_GCM)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("wrongKindCalls")
  void algorithmOfTheWrongKindIsInvalidParameter(String what, Executable call) {
    fails(ErrorCode.INVALID_PARAMETER, call);
  }

  // ---- IV, tag, AAD and length checks -------------------------------------------------------------

  static Stream<Arguments> badParameterCalls() {
    byte[] ct32 = new byte[32];
    return Stream.of(
        Arguments.of("GCM iv 8 bytes", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, ct32, new byte[8], null)),
        Arguments.of("GCM iv 16 bytes", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, ct32, new byte[16], null)),
        Arguments.of("GCM iv empty", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, ct32, new byte[0], null)),
        Arguments.of("GCM iv missing", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, ct32, null, null)),
        Arguments.of("GCM ciphertext shorter than the tag", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, new byte[15], new byte[12], null)),
        Arguments.of("GCM ciphertext empty", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, new byte[0], new byte[12], null)),
        Arguments.of("CBC iv 12 bytes", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_CBC_PAD, ct32, new byte[12], null)),
        Arguments.of("CBC iv missing", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_CBC_PAD, ct32, null, null)),
        Arguments.of("CBC ciphertext 17 bytes", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_CBC_PAD, new byte[17], new byte[16], null)),
        Arguments.of("CBC ciphertext empty", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_CBC_PAD, new byte[0], new byte[16], null)),
        Arguments.of("CBC with aad", (Executable) () -> hsm.crypto().encrypt(aes, Algorithm.AES_CBC_PAD, MESSAGE, new byte[4])),
        Arguments.of("CBC decrypt with aad", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_CBC_PAD, ct32, new byte[16], new byte[4])),
        Arguments.of("OAEP with iv", (Executable) () -> hsm.crypto().decrypt(rsaEnc, Algorithm.RSA_OAEP, new byte[256], new byte[12], null)),
        Arguments.of("OAEP with aad", (Executable) () -> hsm.crypto().encrypt(rsaEnc, Algorithm.RSA_OAEP, MESSAGE, new byte[4])),
        Arguments.of("OAEP plaintext too long", (Executable) () -> hsm.crypto().encrypt(rsaEnc, Algorithm.RSA_OAEP, new byte[215], null)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badParameterCalls")
  void badParametersAreInvalidParameter(String what, Executable call) {
    fails(ErrorCode.INVALID_PARAMETER, call);
  }

  @ParameterizedTest
  @ValueSource(ints = {0, -1, 4097, 5000, Integer.MAX_VALUE, Integer.MIN_VALUE})
  void randomLengthOutOfRangeIsInvalidParameter(int length) {
    HsmException e = fails(ErrorCode.INVALID_PARAMETER, () -> hsm.crypto().random(length));
    assertTrue(e.getMessage().contains("4096"), e.getMessage());
  }

  // ---- decrypt failures: one opaque answer ----------------------------------------------------------

  static Stream<Arguments> tamperedDecrypts() {
    byte[] aad = "context".getBytes(StandardCharsets.UTF_8);
    CryptoService.Encrypted gcm = hsm.crypto().encrypt(aes, Algorithm.AES_GCM, MESSAGE, aad);
    CryptoService.Encrypted cbc = hsm.crypto().encrypt(aes, Algorithm.AES_CBC_PAD, Arrays.copyOf(MESSAGE, 5), null);
    byte[] cbcIv = cbc.iv().clone();
    cbcIv[15] ^= (byte) 0xf0; // turns the 0x0b padding byte into 0xfb: bad padding, always
    byte[] oaepGarbage = new byte[256];
    new SecureRandom().nextBytes(oaepGarbage);
    oaepGarbage[0] = 0; // below the modulus
    byte[] ct = gcm.ciphertext();
    return Stream.of(
        Arguments.of("GCM first ciphertext byte", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, flip(ct, 0), gcm.iv(), aad)),
        Arguments.of("GCM tag byte", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, flip(ct, -1), gcm.iv(), aad)),
        Arguments.of("GCM truncated", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, Arrays.copyOf(ct, ct.length - 1), gcm.iv(), aad)),
        Arguments.of("GCM tag only", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, Arrays.copyOfRange(ct, ct.length - 16, ct.length), gcm.iv(), aad)),
        Arguments.of("GCM wrong iv", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, ct, flip(gcm.iv(), 3), aad)),
        Arguments.of("GCM wrong aad", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, ct, gcm.iv(), flip(aad, 0))),
        Arguments.of("GCM missing aad", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, ct, gcm.iv(), null)),
        Arguments.of("GCM extra aad", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, ct, gcm.iv(), Arrays.copyOf(aad, aad.length + 1))),
        Arguments.of("GCM other key", (Executable) () -> hsm.crypto().decrypt(aesExportable, Algorithm.AES_GCM, ct, gcm.iv(), aad)),
        Arguments.of("CBC bad padding", (Executable) () -> hsm.crypto().decrypt(aes, Algorithm.AES_CBC_PAD, cbc.ciphertext(), cbcIv, null)),
        Arguments.of("OAEP garbage", (Executable) () -> hsm.crypto().decrypt(rsaEnc, Algorithm.RSA_OAEP, oaepGarbage, null, null)),
        Arguments.of("OAEP short", (Executable) () -> hsm.crypto().decrypt(rsaEnc, Algorithm.RSA_OAEP, new byte[10], null, null)),
        Arguments.of("OAEP above the modulus", (Executable) () -> {
          byte[] ff = new byte[256];
          Arrays.fill(ff, (byte) 0xff);
          hsm.crypto().decrypt(rsaEnc, Algorithm.RSA_OAEP, ff, null, null);
        }));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("tamperedDecrypts")
  void tamperedCiphertextIsAnOpaqueCryptoFailure(String what, Executable call) {
    HsmException e = fails(ErrorCode.CRYPTO_FAILURE, call);
    assertEquals(ErrorCode.CRYPTO_FAILURE.summary(), e.getMessage(), "nothing but the summary");
    assertEquals("CRYPTO_FAILURE: " + ErrorCode.CRYPTO_FAILURE.summary(), e.clientMessage());
    assertFalse(e.clientMessage().contains("CKR"));
    // and the session that saw the failure did not poison the pool
    CryptoService.Encrypted ok = hsm.crypto().encrypt(aes, Algorithm.AES_GCM, MESSAGE, null);
    assertArrayEquals(MESSAGE, hsm.crypto().decrypt(aes, Algorithm.AES_GCM, ok.ciphertext(), ok.iv(), null));
  }

  @Test
  void cryptoFailuresOfDifferentCausesCannotBeToldApart() {
    CryptoService.Encrypted gcm = hsm.crypto().encrypt(aes, Algorithm.AES_GCM, MESSAGE, null);
    CryptoService.Encrypted cbc = hsm.crypto().encrypt(aes, Algorithm.AES_CBC_PAD, MESSAGE, null);
    HsmException tag = fails(ErrorCode.CRYPTO_FAILURE,
        () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, flip(gcm.ciphertext(), -1), gcm.iv(), null));
    HsmException padding = fails(ErrorCode.CRYPTO_FAILURE,
        () -> hsm.crypto().decrypt(aes, Algorithm.AES_CBC_PAD, cbc.ciphertext(), flip(cbc.iv(), 15), null));
    assertEquals(tag.getMessage(), padding.getMessage());
    assertEquals(tag.clientMessage(), padding.clientMessage());
    assertNotNull(tag.serverDetail(), "the detail stays available for the server log");
  }

  // ---- key creation refusals ------------------------------------------------------------------------

  static Stream<Arguments> invalidUsages() {
    return Stream.of(
        Arguments.of(KeySpec.AES_128, KeyUsage.SIGN_VERIFY),
        Arguments.of(KeySpec.AES_256, KeyUsage.SIGN_VERIFY),
        Arguments.of(KeySpec.HMAC_SHA256, KeyUsage.ENCRYPT_DECRYPT),
        Arguments.of(KeySpec.HMAC_SHA256, KeyUsage.WRAP_UNWRAP),
        Arguments.of(KeySpec.EC_P256, KeyUsage.ENCRYPT_DECRYPT),
        Arguments.of(KeySpec.EC_P384, KeyUsage.WRAP_UNWRAP),
        Arguments.of(KeySpec.ED25519, KeyUsage.ENCRYPT_DECRYPT),
        Arguments.of(KeySpec.ED25519, KeyUsage.WRAP_UNWRAP));
  }

  @ParameterizedTest
  @MethodSource("invalidUsages")
  void invalidUsageForSpecIsRefused(KeySpec spec, KeyUsage usage) {
    HsmException e = fails(ErrorCode.INVALID_PARAMETER, () -> hsm.keys().generate(spec, usage, "bad-usage", false));
    assertTrue(e.getMessage().contains(usage.name()) && e.getMessage().contains(spec.name()), e.getMessage());
    fails(ErrorCode.INVALID_PARAMETER, () -> hsm.keys().importWrapped(aesWrap, Algorithm.AES_KEY_WRAP_PAD, new byte[40],
        spec, usage, "bad-usage", false));
  }

  @Test
  void ecAndEd25519ImportIsRefused() {
    for (KeySpec spec : new KeySpec[] {KeySpec.EC_P256, KeySpec.EC_P384, KeySpec.ED25519}) {
      HsmException e = fails(ErrorCode.INVALID_PARAMETER, () -> hsm.keys().importWrapped(aesWrap, Algorithm.AES_KEY_WRAP_PAD,
          new byte[80], spec, KeyUsage.SIGN_VERIFY, "ec-import", false));
      assertTrue(e.getMessage().contains("not supported"), e.getMessage());
    }
  }

  static Stream<Arguments> garbageImports() {
    SecureRandom r = new SecureRandom();
    byte[] kwp40 = new byte[40];
    r.nextBytes(kwp40);
    byte[] kwp640 = new byte[640];
    r.nextBytes(kwp640);
    byte[] oaep = new byte[256];
    r.nextBytes(oaep);
    oaep[0] = 0;
    return Stream.of(
        Arguments.of("KWP random 40 bytes as AES_256", aesWrap, Algorithm.AES_KEY_WRAP_PAD, kwp40, KeySpec.AES_256),
        Arguments.of("KWP random 40 bytes as HMAC", aesWrap, Algorithm.AES_KEY_WRAP_PAD, kwp40, KeySpec.HMAC_SHA256),
        Arguments.of("KWP random 640 bytes as RSA", aesWrap, Algorithm.AES_KEY_WRAP_PAD, kwp640, KeySpec.RSA_2048),
        Arguments.of("KWP 12 bytes", aesWrap, Algorithm.AES_KEY_WRAP_PAD, Arrays.copyOf(kwp40, 12), KeySpec.AES_128),
        Arguments.of("KWP empty-ish 8 bytes", aesWrap, Algorithm.AES_KEY_WRAP_PAD, Arrays.copyOf(kwp40, 8), KeySpec.AES_128),
        Arguments.of("OAEP random", rsaWrap, Algorithm.RSA_OAEP_WRAP, oaep, KeySpec.AES_128),
        Arguments.of("OAEP short", rsaWrap, Algorithm.RSA_OAEP_WRAP, Arrays.copyOf(oaep, 100), KeySpec.AES_256));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("garbageImports")
  void importOfGarbageIsAnOpaqueCryptoFailureAndLeavesNothing(String what, String wrappingKey, Algorithm alg,
      byte[] blob, KeySpec spec) {
    KeyUsage usage = KeyUsage.defaultFor(spec);
    HsmException e = fails(ErrorCode.CRYPTO_FAILURE,
        () -> hsm.keys().importWrapped(wrappingKey, alg, blob, spec, usage, "garbage", false));
    assertEquals(ErrorCode.CRYPTO_FAILURE.summary(), e.getMessage());
  }

  @Test
  void refusedCallsDoNotBreakLaterWork() {
    // a mix of refusals, then every kind of key still works
    fails(ErrorCode.CRYPTO_FAILURE, () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, new byte[32], new byte[12], null));
    fails(ErrorCode.INVALID_PARAMETER, () -> hsm.crypto().encrypt(rsaEnc, Algorithm.RSA_OAEP, new byte[0], null));
    fails(ErrorCode.WRONG_KEY_TYPE, () -> hsm.crypto().sign(aes, Algorithm.RSA_PKCS1_SHA256, MESSAGE));
    assertTrue(hsm.crypto().verify(rsaSign, Algorithm.RSA_PKCS1_SHA256, MESSAGE, hsm.crypto().sign(rsaSign, Algorithm.RSA_PKCS1_SHA256, MESSAGE)));
    assertTrue(hsm.crypto().verify(ec, Algorithm.ECDSA_SHA256, MESSAGE, hsm.crypto().sign(ec, Algorithm.ECDSA_SHA256, MESSAGE)));
    assertTrue(hsm.crypto().verify(ed, Algorithm.ED25519, MESSAGE, hsm.crypto().sign(ed, Algorithm.ED25519, MESSAGE)));
    assertTrue(hsm.crypto().verifyMac(hmac, Algorithm.HMAC_SHA256, MESSAGE, hsm.crypto().mac(hmac, Algorithm.HMAC_SHA256, MESSAGE)));
  }
}
