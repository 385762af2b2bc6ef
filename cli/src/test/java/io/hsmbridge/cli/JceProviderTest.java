package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.KeyInfo;
import io.hsmbridge.jce.HsmBridgeProvider;
import io.hsmbridge.jce.HsmKey;
import io.hsmbridge.jce.HsmKeyGenParameterSpec;
import io.hsmbridge.jce.HsmPrivateKey;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.InvalidAlgorithmParameterException;
import java.security.InvalidKeyException;
import java.security.InvalidParameterException;
import java.security.Key;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.KeyStoreException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.interfaces.ECKey;
import java.security.interfaces.RSAKey;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;
import javax.crypto.Mac;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue #13 items 1 and 3: the JCE provider against a real one-HSM cluster on a SoftHSM2 token, configured
 * from a file as an application would be. What the provider signs or encrypts, the JDK's own providers verify
 * or decrypt, and the reverse; known-answer vectors run through keys imported into the cluster (wrapped under a
 * cluster RSA key); unsupported uses fail with the standard JCA exceptions. Certificates and TLS: {@link
 * JceTlsTest}.
 */
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class JceProviderTest {
  private static Path home;
  private static TestLogins logins;
  private static HsmBridgeProvider provider;

  @BeforeAll
  static void up() throws IOException {
    logins = JceClusters.upOneHsm("jce");
    home = logins.home();
    provider = JceClusters.provider(home, logins, "hsm1");
    Security.addProvider(provider);
  }

  @AfterAll
  static void down() throws IOException {
    JceClusters.down(logins, provider, "JceProviderTest");
  }

  @Test
  void signaturesOfTheClusterVerifyInTheJdk() throws Exception {
    KeyPair rsa = pair("RSA", 2048, "jce-rsa-sig");
    KeyPair ec = pair("EC", 256, "jce-ec-sig");
    assertTrue(rsa.getPrivate() instanceof RSAKey r && r.getModulus().bitLength() == 2048, "the handle tells its size");
    assertTrue(ec.getPrivate() instanceof ECKey, "the handle tells its curve");
    assertNull(rsa.getPrivate().getEncoded(), "a handle holds no key bytes");
    byte[] message = "the message, signed in the cluster".getBytes(StandardCharsets.UTF_8);
    for (String alg : List.of("SHA256withRSA", "SHA384withRSA", "SHA512withRSA")) {
      assertVerifiesInJdk(alg, null, rsa, message);
    }
    for (String hash : List.of("SHA-256", "SHA-384", "SHA-512")) {
      int salt = Integer.parseInt(hash.substring(4)) / 8;
      assertVerifiesInJdk("RSASSA-PSS", new PSSParameterSpec(hash, "MGF1", new MGF1ParameterSpec(hash), salt, 1), rsa,
          message);
    }
    for (String alg : List.of("SHA256withECDSA", "SHA384withECDSA", "SHA512withECDSA")) {
      assertVerifiesInJdk(alg, null, ec, message);
    }
    // Chosen by the JDK without naming the provider: the handle brings the work here.
    Signature any = Signature.getInstance("SHA256withECDSA");
    any.initSign(ec.getPrivate());
    any.update(message);
    byte[] sig = any.sign();
    assertEquals(HsmBridgeProvider.NAME, any.getProvider().getName());
    Signature jdk = Signature.getInstance("SHA256withECDSA", "SunEC");
    jdk.initVerify(ec.getPublic());
    jdk.update(message);
    assertTrue(jdk.verify(sig));
    // Verifying through this provider's engine runs in the JVM with the public key.
    Signature viaProvider = Signature.getInstance("SHA256withECDSA", provider);
    viaProvider.initVerify(ec.getPublic());
    viaProvider.update(message);
    assertTrue(viaProvider.verify(sig));
    message[0] ^= 1;
    viaProvider.update(message);
    assertFalse(viaProvider.verify(sig), "a changed message does not verify");
  }

  private static void assertVerifiesInJdk(String alg, PSSParameterSpec pss, KeyPair pair, byte[] message)
      throws Exception {
    Signature s = Signature.getInstance(alg, provider);
    if (pss != null) {
      s.setParameter(pss);
    }
    s.initSign(pair.getPrivate());
    s.update(message, 0, 10);
    s.update(message, 10, message.length - 10);
    byte[] signature = s.sign();
    Signature v = Signature.getInstance(alg, alg.contains("ECDSA") ? "SunEC" : "SunRsaSign");
    if (pss != null) {
      v.setParameter(pss);
    }
    v.initVerify(pair.getPublic());
    v.update(message);
    assertTrue(v.verify(signature), alg + (pss == null ? "" : " " + pss.getDigestAlgorithm()) + " verifies in the JDK");
  }

  @Test
  void rsaOaepBothWays() throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("RSA", provider);
    g.initialize(new HsmKeyGenParameterSpec("jce-rsa-oaep", 2048));
    KeyPair pair = g.generateKeyPair();
    // The RSA_2048 default usage is signing: an encryption key is made through the client, as an operator would.
    HsmPrivateKey encryptionKey = encryptionPair();
    byte[] secret = "sixteen byte key".getBytes(StandardCharsets.US_ASCII);
    Cipher jdk = Cipher.getInstance("RSA/ECB/OAEPWithSHA-1AndMGF1Padding", "SunJCE");
    jdk.init(Cipher.ENCRYPT_MODE, encryptionKey.publicKey());
    byte[] sealed = jdk.doFinal(secret);
    Cipher here = Cipher.getInstance("RSA/ECB/OAEPWithSHA-1AndMGF1Padding");
    here.init(Cipher.DECRYPT_MODE, encryptionKey);
    assertEquals(HsmBridgeProvider.NAME, here.getProvider().getName());
    assertArrayEquals(secret, here.doFinal(sealed), "the JDK's OAEP ciphertext opens in the cluster");
    // Encrypting to the pair through this provider runs in the JVM; the cluster opens it.
    Cipher toPublic = Cipher.getInstance("RSA/ECB/OAEPWithSHA-1AndMGF1Padding", provider);
    toPublic.init(Cipher.ENCRYPT_MODE, encryptionKey);
    assertArrayEquals(secret, here.doFinal(toPublic.doFinal(secret)));
    Cipher sha256 = Cipher.getInstance("RSA/ECB/OAEPPadding", provider);
    assertThrows(InvalidAlgorithmParameterException.class, () -> sha256.init(Cipher.DECRYPT_MODE, encryptionKey,
        new OAEPParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, PSource.PSpecified.DEFAULT)));
    InvalidKeyException wrongUsage = assertThrows(InvalidKeyException.class,
        () -> here.init(Cipher.DECRYPT_MODE, pair.getPrivate()));
    assertTrue(wrongUsage.getMessage().contains("SIGN_VERIFY"), wrongUsage.getMessage());
  }

  private static HsmPrivateKey encryptionPair() throws Exception {
    try (Hsm hsm = JceClusters.hsm(home, logins, "hsm1")) {
      KeyInfo k = hsm.generateKey(KeySpec.RSA_2048, "jce-rsa-enc", KeyUsage.ENCRYPT_DECRYPT, false);
      assertNotNull(k.keyId());
    }
    return (HsmPrivateKey) keyStore().getKey("jce-rsa-enc", null);
  }

  @Test
  void aesGcmAndCbcInTheClusterAgreeWithTheJdkUnderAnImportedKey() throws Exception {
    byte[] known = HexFormat.of().parseHex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
    SecretKey cluster = importSecret(known, KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "jce-aes-known");
    SecretKeySpec jdkKey = new SecretKeySpec(known, "AES");

    // Known answer: NIST GCM test case 16 (AES-256, 12-byte IV, AAD), decrypted in the cluster.
    byte[] iv = HexFormat.of().parseHex("cafebabefacedbaddecaf888");
    byte[] aad = HexFormat.of().parseHex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    byte[] plaintext = HexFormat.of().parseHex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c9595"
        + "6809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
    byte[] expected = HexFormat.of().parseHex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e4859"
        + "0dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662" + "76fc6ece0f4e1768cddf8853bb2d551b");
    Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
    gcm.init(Cipher.DECRYPT_MODE, cluster, new GCMParameterSpec(128, iv));
    gcm.updateAAD(aad);
    assertArrayEquals(plaintext, gcm.doFinal(expected), "NIST GCM test case 16 through the cluster");
    assertEquals(HsmBridgeProvider.NAME, gcm.getProvider().getName());

    // The cluster encrypts (its IV), the JDK decrypts with the same key; then the reverse.
    Cipher enc = Cipher.getInstance("AES/GCM/NoPadding", provider);
    enc.init(Cipher.ENCRYPT_MODE, cluster);
    assertNull(enc.getIV(), "the HSM chooses the IV at doFinal");
    enc.updateAAD(aad);
    byte[] ct = enc.doFinal(plaintext);
    byte[] hsmIv = enc.getIV();
    assertEquals(12, hsmIv.length);
    Cipher jdk = Cipher.getInstance("AES/GCM/NoPadding", "SunJCE");
    jdk.init(Cipher.DECRYPT_MODE, jdkKey, new GCMParameterSpec(128, hsmIv));
    jdk.updateAAD(aad);
    assertArrayEquals(plaintext, jdk.doFinal(ct));
    byte[] ct2 = enc.doFinal(plaintext);
    assertFalse(java.util.Arrays.equals(hsmIv, enc.getIV()), "every encryption has its own IV");
    assertFalse(java.util.Arrays.equals(ct, ct2));

    // Bad tag: the standard AEADBadTagException.
    Cipher dec = Cipher.getInstance("AES/GCM/NoPadding", provider);
    dec.init(Cipher.DECRYPT_MODE, cluster, new GCMParameterSpec(128, iv));
    dec.updateAAD(aad);
    byte[] tampered = expected.clone();
    tampered[tampered.length - 1] ^= 1;
    assertThrows(AEADBadTagException.class, () -> dec.doFinal(tampered));
    // A caller's IV for encryption is refused, with what to do instead.
    InvalidAlgorithmParameterException ivRefused = assertThrows(InvalidAlgorithmParameterException.class,
        () -> enc.init(Cipher.ENCRYPT_MODE, cluster, new GCMParameterSpec(128, iv)));
    assertTrue(ivRefused.getMessage().contains("getIV()"), ivRefused.getMessage());

    // CBC: JDK encrypts under the known key with its IV, the cluster decrypts; the cluster encrypts, the JDK decrypts.
    byte[] cbcIv = new byte[16];
    new SecureRandom().nextBytes(cbcIv);
    Cipher jdkCbc = Cipher.getInstance("AES/CBC/PKCS5Padding", "SunJCE");
    jdkCbc.init(Cipher.ENCRYPT_MODE, jdkKey, new IvParameterSpec(cbcIv));
    byte[] cbcCt = jdkCbc.doFinal(plaintext);
    Cipher cbc = Cipher.getInstance("AES/CBC/PKCS5Padding");
    cbc.init(Cipher.DECRYPT_MODE, cluster, new IvParameterSpec(cbcIv));
    assertArrayEquals(plaintext, cbc.doFinal(cbcCt));
    cbc.init(Cipher.ENCRYPT_MODE, cluster);
    byte[] fromCluster = cbc.doFinal(plaintext);
    jdkCbc.init(Cipher.DECRYPT_MODE, jdkKey, cbc.getParameters());
    assertArrayEquals(plaintext, jdkCbc.doFinal(fromCluster));
  }

  @Test
  void rsaSignaturesUnderAnImportedKeyAreTheJdksBitForBit() throws Exception {
    // A key pair the JDK made, brought into the cluster as a user would: its PKCS#8 wrapped with AES-KWP under a
    // key-encryption key that the cluster also holds (imported under RSA-OAEP first).
    KeyPairGenerator jdkGen = KeyPairGenerator.getInstance("RSA", "SunRsaSign");
    jdkGen.initialize(2048);
    KeyPair known = jdkGen.generateKeyPair();
    byte[] kek = new byte[32];
    new SecureRandom().nextBytes(kek);
    HsmKey clusterKek = (HsmKey) importSecret(kek, KeySpec.AES_256, KeyUsage.WRAP_UNWRAP, "jce-kek");
    Cipher kwp = Cipher.getInstance("AES/KWP/NoPadding", "SunJCE");
    kwp.init(Cipher.WRAP_MODE, new SecretKeySpec(kek, "AES"));
    byte[] wrapped = kwp.wrap(known.getPrivate());
    try (Hsm hsm = JceClusters.hsm(home, logins, "hsm1")) {
      hsm.importWrapped(clusterKek.keyId(), "AES_KEY_WRAP_PAD", wrapped, KeySpec.RSA_2048, "jce-rsa-known",
          KeyUsage.SIGN_VERIFY, false);
    }
    PrivateKey handle = (PrivateKey) keyStore().getKey("jce-rsa-known", null);
    assertEquals(known.getPublic(), ((HsmPrivateKey) handle).publicKey(), "the cluster holds the JDK's key");
    byte[] message = "known-answer: PKCS#1 v1.5 signatures are deterministic".getBytes(StandardCharsets.UTF_8);
    for (String alg : List.of("SHA256withRSA", "SHA384withRSA", "SHA512withRSA")) {
      Signature jdk = Signature.getInstance(alg, "SunRsaSign");
      jdk.initSign(known.getPrivate());
      jdk.update(message);
      Signature here = Signature.getInstance(alg, provider);
      here.initSign(handle);
      here.update(message);
      assertArrayEquals(jdk.sign(), here.sign(), alg + ": the cluster's signature is the JDK's, bit for bit");
    }
  }

  @Test
  void hmacAgreesWithTheJdkAndOnlySha256IsOffered() throws Exception {
    byte[] known = HexFormat.of().parseHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    SecretKey cluster = importSecret(known, KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, "jce-hmac-known");
    byte[] message = "what the HMAC covers".getBytes(StandardCharsets.UTF_8);
    Mac here = Mac.getInstance("HmacSHA256");
    here.init(cluster);
    here.update(message);
    Mac jdk = Mac.getInstance("HmacSHA256", "SunJCE");
    jdk.init(new SecretKeySpec(known, "HmacSHA256"));
    assertArrayEquals(jdk.doFinal(message), here.doFinal(), "the cluster's HMAC under an imported key is the JDK's");
    assertEquals(HsmBridgeProvider.NAME, here.getProvider().getName());
    InvalidKeyException sha512 = assertThrows(InvalidKeyException.class,
        () -> Mac.getInstance("HmacSHA512", provider).init(cluster));
    assertTrue(sha512.getMessage().contains("HmacSHA256"), sha512.getMessage());

    KeyGenerator g = KeyGenerator.getInstance("HmacSHA256", provider);
    g.init(new HsmKeyGenParameterSpec("jce-hmac-made", 256));
    SecretKey made = g.generateKey();
    Mac m = Mac.getInstance("HmacSHA256", provider);
    m.init(made);
    byte[] a = m.doFinal(message);
    assertArrayEquals(a, m.doFinal(message), "the same key and message give the same MAC");
    assertEquals(32, a.length);
  }

  @Test
  void keyGeneratorKeyStoreAndWrongUses() throws Exception {
    KeyGenerator g = KeyGenerator.getInstance("AES", provider);
    g.init(new HsmKeyGenParameterSpec("jce-aes-made", 128).withRequestId("jce-aes-made-1"));
    HsmKey made = (HsmKey) g.generateKey();
    assertEquals(KeySpec.AES_128, made.spec());
    g.init(new HsmKeyGenParameterSpec("jce-aes-made", 128).withRequestId("jce-aes-made-1"));
    assertEquals(made.keyId(), ((HsmKey) g.generateKey()).keyId(), "the same request id is the same creation");
    assertThrows(InvalidParameterException.class, () -> g.init(192));

    KeyStore ks = keyStore();
    assertTrue(Collections.list(ks.aliases()).contains("jce-aes-made"));
    Key fromStore = ks.getKey("jce-aes-made", null);
    assertEquals(made, fromStore);
    assertNull(ks.getKey("no-such-alias", null));
    assertNull(ks.getCertificateChain("jce-aes-made"));
    assertThrows(KeyStoreException.class, () -> ks.setKeyEntry("x", new SecretKeySpec(new byte[16], "AES"), null, null),
        "key bytes do not enter through the store");
    assertThrows(KeyStoreException.class, () -> ks.setCertificateEntry("x", null));
    // Two keys with one label: each is listed by its id, and the label alone names neither.
    g.init(new HsmKeyGenParameterSpec("jce-twin", 256));
    HsmKey twin1 = (HsmKey) g.generateKey();
    HsmKey twin2 = (HsmKey) g.generateKey();
    List<String> aliases = Collections.list(ks.aliases());
    assertTrue(aliases.contains(twin1.keyId()) && aliases.contains(twin2.keyId()) && !aliases.contains("jce-twin"),
        aliases.toString());
    java.security.UnrecoverableKeyException twins = assertThrows(java.security.UnrecoverableKeyException.class,
        () -> ks.getKey("jce-twin", null));
    assertTrue(twins.getMessage().contains("2 keys"), twins.getMessage());
    assertEquals(twin2, ks.getKey(twin2.keyId(), null));

    // Wrong key family, wrong mode, a key that is not the cluster's: the standard exceptions, saying what works.
    InvalidKeyException family = assertThrows(InvalidKeyException.class,
        () -> Signature.getInstance("SHA256withRSA", provider).initSign((PrivateKey) keyPairHandle("jce-ec-family")));
    assertTrue(family.getMessage().contains("RSA"), family.getMessage());
    assertThrows(InvalidParameterException.class,
        () -> Cipher.getInstance("AES/GCM/NoPadding", provider).init(Cipher.WRAP_MODE, made));
    PrivateKey software = KeyPairGenerator.getInstance("EC").generateKeyPair().getPrivate();
    InvalidKeyException foreign = assertThrows(InvalidKeyException.class,
        () -> Signature.getInstance("SHA256withECDSA", provider).initSign(software));
    assertTrue(foreign.getMessage().contains("JDK"), foreign.getMessage());
    // The JDK's own choice is not disturbed by the provider for keys in memory.
    Signature sw = Signature.getInstance("SHA256withECDSA");
    sw.initSign(software);
    assertFalse(sw.getProvider().getName().equals(HsmBridgeProvider.NAME));

    // SoftHSM2 cannot wrap an Ed25519 private key, so the cluster cannot replicate one: refused, saying why.
    KeyPairGenerator ed = KeyPairGenerator.getInstance("Ed25519", provider);
    java.security.ProviderException edRefused = assertThrows(java.security.ProviderException.class, ed::generateKeyPair);
    assertTrue(edRefused.getMessage().contains("ED25519") && edRefused.getMessage().contains("NOT_ALLOWED_BY_POLICY"),
        edRefused.getMessage());

    ks.deleteEntry("jce-aes-made");
    assertFalse(ks.containsAlias("jce-aes-made"), "deleted in the cluster");
  }

  private static Key keyPairHandle(String label) throws Exception {
    return pair("EC", 256, label).getPrivate();
  }

  @Test
  void secureRandomComesFromTheHsm() throws Exception {
    SecureRandom r = SecureRandom.getInstance("HsmBridgeRNG", provider);
    byte[] a = new byte[10_000];
    byte[] b = new byte[10_000];
    r.nextBytes(a);
    r.nextBytes(b);
    assertFalse(java.util.Arrays.equals(a, b));
    int zeros = 0;
    for (byte x : a) {
      zeros += x == 0 ? 1 : 0;
    }
    assertTrue(zeros < 100, "about 39 zero bytes expected in 10,000, saw " + zeros);
  }

  @Test
  void theProviderLogsInAgainWhenItsSessionEnds() throws Exception {
    KeyPair ec = pair("EC", 256, "jce-relogin");
    byte[] m = {1, 2, 3};
    sign(ec.getPrivate(), m);
    long loginsBefore = provider.logins();
    // An operator rotates the user's password (which ends its sessions) and puts the new one in the file the
    // provider reads.
    Path password = logins.passwordFile(TestLogins.CRYPTO_USER);
    PrivateFiles.write(password, "the rotated password of alice\n".getBytes(StandardCharsets.UTF_8));
    CliRun change = CliRun.run(home, logins.co(), "user", "passwd", TestLogins.CRYPTO_USER, "--password-file",
        password.toString());
    assertEquals(0, change.code, change.toString());
    Signature s = Signature.getInstance("SHA256withECDSA", provider);
    s.initSign(ec.getPrivate());
    s.update(m);
    byte[] sig = s.sign();
    Signature v = Signature.getInstance("SHA256withECDSA", "SunEC");
    v.initVerify(ec.getPublic());
    v.update(m);
    assertTrue(v.verify(sig), "signed after logging in again by itself");
    assertEquals(loginsBefore + 1, provider.logins(), "one new login");
  }

  private static byte[] sign(PrivateKey key, byte[] m) throws Exception {
    Signature s = Signature.getInstance("SHA256withECDSA", provider);
    s.initSign(key);
    s.update(m);
    return s.sign();
  }

  static KeyPair pair(String alg, int size, String label) throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance(alg, provider);
    g.initialize(new HsmKeyGenParameterSpec(label, size));
    KeyPair pair = g.generateKeyPair();
    assertTrue(pair.getPrivate() instanceof HsmPrivateKey h && h.label().equals(label));
    assertEquals(((HsmPrivateKey) pair.getPrivate()).publicKey(), pair.getPublic());
    return pair;
  }

  private static KeyStore keyStore() throws Exception {
    KeyStore ks = KeyStore.getInstance(HsmBridgeProvider.NAME, provider);
    ks.load(null, null);
    return ks;
  }

  /**
   * Brings {@code known} into the cluster as a user would: wrapped under a cluster RSA key's public half (OAEP,
   * in the JDK) and imported; the provider then finds it in its KeyStore.
   */
  private static SecretKey importSecret(byte[] known, KeySpec spec, KeyUsage usage, String label) throws Exception {
    try (Hsm hsm = JceClusters.hsm(home, logins, "hsm1")) {
      KeyInfo wrapping = hsm.generateKey(KeySpec.RSA_2048, label + "-wrap", KeyUsage.WRAP_UNWRAP, false);
      PublicKey wrapPublic = java.security.KeyFactory.getInstance("RSA")
          .generatePublic(new java.security.spec.X509EncodedKeySpec(hsm.publicKey(wrapping.keyId())));
      Cipher oaep = Cipher.getInstance("RSA/ECB/OAEPWithSHA-1AndMGF1Padding", "SunJCE");
      oaep.init(Cipher.ENCRYPT_MODE, wrapPublic);
      byte[] wrapped = oaep.doFinal(known);
      hsm.importWrapped(wrapping.keyId(), "RSA_OAEP", wrapped, spec, label, usage, false);
    }
    return (SecretKey) keyStore().getKey(label, null);
  }
}
