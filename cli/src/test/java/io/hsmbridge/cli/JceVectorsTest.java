package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.KeyInfo;
import io.hsmbridge.jce.HsmBridgeProvider;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.file.Path;
import java.security.Key;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.RSAPrivateCrtKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue #13 "How it will be checked": a third-party test-vector suite run through the provider. The vectors are
 * NIST's CAVP response files and the RFC 4231 / PKCS#1 v2.1 examples as pyca/cryptography publishes them (Debian
 * {@code python3-cryptography-vectors}, {@link VectorFiles}); each vector's key is imported into a real one-HSM
 * cluster (wrapped with AES-KWP under a key-encryption key the cluster holds), the operation runs in the HSM
 * through the provider, and the result is compared with the vector's. What the vectors cannot reach through a
 * cluster is said where it is skipped: encryption with a caller's IV (the HSM chooses every IV), EC private keys
 * (an import needs the public point, which CAVP's SigGen gives only after signing with a random k) and Ed25519
 * (SoftHSM2 2.6 has none).
 */
@Timeout(value = 900, unit = TimeUnit.SECONDS)
class JceVectorsTest {
  private static TestLogins logins;
  private static Path vectors;
  private static HsmBridgeProvider provider;
  private static Hsm hsm;
  private static KeyStore keyStore;
  /** The key-encryption key: its bytes here, its copy in the cluster, for importing each vector's key. */
  private static byte[] kek;
  private static String kekId;
  private static int imported;

  @BeforeAll
  static void up() throws Exception {
    vectors = VectorFiles.dir();
    logins = JceClusters.upOneHsm("vectors");
    Path home = logins.home();
    provider = JceClusters.provider(home, logins, "hsm1");
    hsm = JceClusters.hsm(home, logins, "hsm1");
    keyStore = KeyStore.getInstance("HsmBridge", provider);
    keyStore.load(null, null);
    // The KEK reaches the cluster under RSA-OAEP to a cluster key's public half, as a user brings one in.
    KeyInfo wrapping = hsm.generateKey(KeySpec.RSA_2048, "vectors-oaep-wrap", KeyUsage.WRAP_UNWRAP, false);
    PublicKey wrapPublic = KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(hsm.publicKey(wrapping.keyId())));
    kek = new byte[32];
    new SecureRandom().nextBytes(kek);
    Cipher oaep = Cipher.getInstance("RSA/ECB/OAEPWithSHA-1AndMGF1Padding", "SunJCE");
    oaep.init(Cipher.ENCRYPT_MODE, wrapPublic);
    kekId = hsm.importWrapped(wrapping.keyId(), "RSA_OAEP", oaep.doFinal(kek), KeySpec.AES_256, "vectors-kek",
        KeyUsage.WRAP_UNWRAP, false).keyId();
  }

  @AfterAll
  static void down() throws IOException {
    if (hsm != null) {
      hsm.close();
    }
    JceClusters.down(logins, provider, "JceVectorsTest");
  }

  /**
   * CAVP gcmDecrypt128/256.rsp, every section the cluster's GCM takes (96-bit IV, 128-bit tag: 25 of 75 per key
   * size), the first two cases of each: the plaintext of a valid case, AEADBadTagException for a FAIL case.
   */
  @Test
  void aesGcmDecryptionMatchesNistCavp() throws Exception {
    int passed = 0;
    int refused = 0;
    Key lastKey = null;
    for (String file : List.of("gcmDecrypt128.rsp", "gcmDecrypt256.rsp")) {
      Map<String, Integer> perSection = new HashMap<>();
      for (VectorFiles.Case c : VectorFiles.cavp(vectors.resolve("ciphers/AES/GCM").resolve(file), "Count")) {
        if (c.sectionInt("IVlen") != 96 || c.sectionInt("Taglen") != 128
            || perSection.merge(c.section().toString(), 1, Integer::sum) > 2) {
          continue;
        }
        byte[] keyBytes = c.hex("Key");
        String label = "gcm-" + file + "-" + c.section().hashCode() + "-" + c.fields().get("Count");
        try (ImportedKey key = importSecret(keyBytes, keyBytes.length == 16 ? KeySpec.AES_128 : KeySpec.AES_256,
            KeyUsage.ENCRYPT_DECRYPT, label)) {
          Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding", provider);
          gcm.init(Cipher.DECRYPT_MODE, key.handle, new GCMParameterSpec(128, c.hex("IV")));
          gcm.updateAAD(c.hex("AAD"));
          byte[] input = concat(c.hex("CT"), c.hex("Tag"));
          if (c.fail()) {
            assertThrows(AEADBadTagException.class, () -> gcm.doFinal(input), file + " " + c.fields());
            refused++;
          } else {
            assertArrayEquals(c.hex("PT"), gcm.doFinal(input), file + " " + c.fields());
            passed++;
          }
          lastKey = key.handle;
        }
      }
    }
    System.out.printf("vectors: CAVP AES-GCM decrypt: %d plaintexts, %d bad tags refused%n", passed, refused);
    assertEquals(100, passed + refused, "25 sections x 2 cases x 2 key sizes");
    assertTrue(passed > 10 && refused > 10, "both kinds of case ran: " + passed + " / " + refused);
    // Sections the cluster does not take are refused at init with the standard exception, before any HSM call.
    Key gone = lastKey;
    Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding", provider);
    assertThrows(java.security.InvalidAlgorithmParameterException.class,
        () -> gcm.init(Cipher.DECRYPT_MODE, gone, new GCMParameterSpec(96, new byte[12])), "a 96-bit tag");
    assertThrows(java.security.InvalidAlgorithmParameterException.class,
        () -> gcm.init(Cipher.DECRYPT_MODE, gone, new GCMParameterSpec(128, new byte[1])), "an 8-bit IV");
  }

  /**
   * CAVP CBCMMT128/256.rsp, every DECRYPT case (1 to 10 blocks). The vectors have no padding and the cluster's
   * CBC is PKCS#5; so each ciphertext gets one more block, the encryption of a full padding block chained on
   * its last block, made in the JDK with the vector's key: the cluster must then return exactly the vector's
   * plaintext.
   */
  @Test
  void aesCbcDecryptionMatchesNistCavp() throws Exception {
    int cases = 0;
    for (String file : List.of("CBCMMT128.rsp", "CBCMMT256.rsp")) {
      for (VectorFiles.Case c : VectorFiles.cavp(vectors.resolve("ciphers/AES/CBC").resolve(file), "COUNT")) {
        if (!c.section().containsKey("DECRYPT")) {
          continue;
        }
        byte[] keyBytes = c.hex("KEY");
        byte[] ct = c.hex("CIPHERTEXT");
        byte[] padBlock = new byte[16];
        Arrays.fill(padBlock, (byte) 16);
        for (int i = 0; i < 16; i++) {
          padBlock[i] ^= ct[ct.length - 16 + i];
        }
        Cipher ecb = Cipher.getInstance("AES/ECB/NoPadding", "SunJCE");
        ecb.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(keyBytes, "AES"));
        byte[] input = concat(ct, ecb.doFinal(padBlock));
        String label = "cbc-" + file + "-" + c.fields().get("COUNT");
        try (ImportedKey key = importSecret(keyBytes, keyBytes.length == 16 ? KeySpec.AES_128 : KeySpec.AES_256,
            KeyUsage.ENCRYPT_DECRYPT, label)) {
          Cipher cbc = Cipher.getInstance("AES/CBC/PKCS5Padding", provider);
          cbc.init(Cipher.DECRYPT_MODE, key.handle, new IvParameterSpec(c.hex("IV")));
          assertArrayEquals(c.hex("PLAINTEXT"), cbc.doFinal(input), file + " " + c.fields());
          cases++;
        }
      }
    }
    System.out.printf("vectors: CAVP AES-CBC decrypt (MMT, 128 and 256): %d cases%n", cases);
    assertEquals(20, cases);
  }

  /**
   * RFC 4231's HMAC-SHA256 cases. The cluster's HMAC keys are 32 bytes; RFC 2104 defines an HMAC key longer than
   * the 64-byte block as its hash and pads a shorter one with zeros to the block, so each RFC key is imported as
   * that same 32-byte key (the JDK confirms the equivalence on each case).
   */
  @Test
  void hmacSha256MatchesRfc4231() throws Exception {
    int cases = 0;
    for (VectorFiles.Case c : VectorFiles.cavp(vectors.resolve("HMAC/rfc-4231-sha256.txt"), "Len")) {
      byte[] key = c.hex("Key");
      byte[] asImported = key.length > 64 ? MessageDigest.getInstance("SHA-256").digest(key) : Arrays.copyOf(key, 32);
      assertTrue(key.length > 64 || key.length <= 32, "RFC 4231 keys are at most 32 or over 64 bytes");
      Mac jdk = Mac.getInstance("HmacSHA256", "SunJCE");
      jdk.init(new SecretKeySpec(asImported, "HmacSHA256"));
      assertArrayEquals(c.hex("MD"), jdk.doFinal(c.hex("Msg")), "the RFC 2104 key equivalence holds");
      try (ImportedKey imported = importSecret(asImported, KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, "hmac-" + cases)) {
        Mac mac = Mac.getInstance("HmacSHA256", provider);
        mac.init(imported.handle);
        assertArrayEquals(c.hex("MD"), mac.doFinal(c.hex("Msg")), "RFC 4231 " + c.fields());
        cases++;
      }
    }
    System.out.printf("vectors: RFC 4231 HMAC-SHA256: %d cases%n", cases);
    assertEquals(6, cases, "RFC 4231 cases 1-4, 6, 7 (case 5 is truncated and not in the file)");
  }

  /**
   * CAVP SigGen15 (FIPS 186-2 file, which gives d): the 2048- and 3072-bit keys, every SHA-256/384/512 message:
   * PKCS#1 v1.5 signatures are deterministic, so the cluster's must be the vector's, byte for byte. SHA-1 and
   * SHA-224 are not offered: NoSuchAlgorithmException.
   */
  @Test
  void rsaPkcs1SignaturesMatchNistCavp() throws Exception {
    Map<String, List<VectorFiles.Case>> byModulus = new HashMap<>();
    for (VectorFiles.Case c : VectorFiles.cavp(vectors.resolve("asymmetric/RSA/FIPS_186-2/SigGen15_186-2.txt"), "SHAAlg")) {
      byModulus.computeIfAbsent(c.section().get("mod"), m -> new ArrayList<>()).add(c);
    }
    int signatures = 0;
    for (String modulus : List.of("2048", "3072")) {
      List<VectorFiles.Case> cases = byModulus.get(modulus);
      Map<String, String> s = cases.get(0).section();
      BigInteger n = new BigInteger(s.get("n"), 16);
      BigInteger e = new BigInteger(s.get("e"), 16);
      BigInteger d = new BigInteger(s.get("d"), 16);
      KeySpec spec = modulus.equals("2048") ? KeySpec.RSA_2048 : KeySpec.RSA_3072;
      try (ImportedKey key = importPrivate(crtKey(n, e, d), spec, KeyUsage.SIGN_VERIFY, "rsa-siggen-" + modulus)) {
        for (VectorFiles.Case c : cases) {
          String alg = c.fields().get("SHAAlg") + "withRSA";
          if (alg.equals("SHA1withRSA") || alg.equals("SHA224withRSA")) {
            assertThrows(NoSuchAlgorithmException.class, () -> Signature.getInstance(alg, provider));
            continue;
          }
          Signature sig = Signature.getInstance(alg, provider);
          sig.initSign((PrivateKey) key.handle);
          sig.update(c.hex("Msg"));
          assertArrayEquals(c.hex("S"), sig.sign(), modulus + " " + alg + " " + c.fields().get("Msg"));
          signatures++;
        }
      }
    }
    System.out.printf("vectors: CAVP RSA PKCS#1 v1.5 SigGen (2048, 3072): %d signatures%n", signatures);
    assertEquals(60, signatures, "2 moduli x 3 hashes x 10 messages");
  }

  /** PKCS#1 v2.1's RSAES-OAEP example 10 (2048-bit key, SHA-1, MGF1-SHA-1): its 6 ciphertexts decrypt in the cluster. */
  @Test
  void rsaOaepDecryptionMatchesPkcs1Examples() throws Exception {
    List<Map.Entry<String, byte[]>> blocks = VectorFiles.hexBlocks(
        vectors.resolve("asymmetric/RSA/pkcs-1v2-1d2-vec/oaep-vect.txt"), "# Example 10:");
    Map<String, BigInteger> key = new HashMap<>();
    List<byte[]> messages = new ArrayList<>();
    List<byte[]> ciphertexts = new ArrayList<>();
    for (Map.Entry<String, byte[]> b : blocks) {
      switch (b.getKey()) {
        case "Message" -> messages.add(b.getValue());
        case "Encryption" -> ciphertexts.add(b.getValue());
        case "Seed" -> { }
        default -> key.put(b.getKey(), new BigInteger(1, b.getValue())); // the private key's "Exponent" comes last
      }
    }
    RSAPrivateCrtKeySpec spec = new RSAPrivateCrtKeySpec(key.get("Modulus"), key.get("Public exponent"),
        key.get("Exponent"), key.get("Prime 1"), key.get("Prime 2"), key.get("Prime exponent 1"),
        key.get("Prime exponent 2"), key.get("Coefficient"));
    assertEquals(6, ciphertexts.size());
    try (ImportedKey imported = importPrivate(spec, KeySpec.RSA_2048, KeyUsage.ENCRYPT_DECRYPT, "rsa-oaep-example-10")) {
      for (int i = 0; i < ciphertexts.size(); i++) {
        Cipher oaep = Cipher.getInstance("RSA/ECB/OAEPWithSHA-1AndMGF1Padding", provider);
        oaep.init(Cipher.DECRYPT_MODE, imported.handle);
        assertArrayEquals(messages.get(i), oaep.doFinal(ciphertexts.get(i)), "OAEP example 10." + (i + 1));
      }
    }
    System.out.printf("vectors: PKCS#1 v2.1 RSAES-OAEP example 10: %d decryptions%n", ciphertexts.size());
  }

  /**
   * CAVP SigVer (FIPS 186-3) for P-256 and P-384 with SHA-256/384/512 through this provider's {@code Signature}:
   * verification runs in the JVM (the provider hands it to the JDK's engine), and every case's result must be
   * the vector's (P: verifies; F: does not, or the key or signature is refused).
   */
  @Test
  void ecdsaVerificationMatchesNistCavp() throws Exception {
    int accepted = 0;
    int rejected = 0;
    for (VectorFiles.Case c : VectorFiles.cavp(vectors.resolve("asymmetric/ECDSA/FIPS_186-3/SigVer.rsp"), "Msg")) {
      String section = c.section().keySet().iterator().next(); // e.g. "P-256,SHA-384"
      String[] curveAndHash = section.split(",");
      if (!List.of("P-256", "P-384").contains(curveAndHash[0]) || !List.of("SHA-256", "SHA-384", "SHA-512").contains(curveAndHash[1])) {
        continue;
      }
      boolean expected = c.fields().get("Result").startsWith("P");
      boolean verified;
      try {
        java.security.AlgorithmParameters params = java.security.AlgorithmParameters.getInstance("EC");
        params.init(new java.security.spec.ECGenParameterSpec(curveAndHash[0].equals("P-256") ? "secp256r1" : "secp384r1"));
        PublicKey q = KeyFactory.getInstance("EC").generatePublic(new java.security.spec.ECPublicKeySpec(
            new java.security.spec.ECPoint(new BigInteger(1, c.hex("Qx")), new BigInteger(1, c.hex("Qy"))),
            params.getParameterSpec(java.security.spec.ECParameterSpec.class)));
        Signature sig = Signature.getInstance(curveAndHash[1].replace("-", "") + "withECDSA", provider);
        sig.initVerify(q);
        sig.update(c.hex("Msg"));
        verified = sig.verify(new org.bouncycastle.asn1.DERSequence(new org.bouncycastle.asn1.ASN1Encodable[] {
            new org.bouncycastle.asn1.ASN1Integer(new BigInteger(1, c.hex("R"))),
            new org.bouncycastle.asn1.ASN1Integer(new BigInteger(1, c.hex("S")))}).getEncoded());
      } catch (java.security.GeneralSecurityException refused) {
        verified = false; // a point off the curve or a signature out of range: refused, as an F case must be
      }
      assertEquals(expected, verified, section + " " + c.fields());
      if (expected) {
        accepted++;
      } else {
        rejected++;
      }
    }
    System.out.printf("vectors: CAVP ECDSA SigVer (P-256, P-384 x SHA-256/384/512): %d verify, %d refused%n", accepted, rejected);
    assertEquals(90, accepted + rejected, "2 curves x 3 hashes x 15 cases");
    assertTrue(accepted > 10 && rejected > 10);
  }

  /** A vector's key in the cluster: the provider's handle, deleted again after use (the token stays small). */
  private static final class ImportedKey implements AutoCloseable {
    final Key handle;
    private final String keyId;

    ImportedKey(String keyId, Key handle) {
      this.keyId = keyId;
      this.handle = handle;
    }

    @Override
    public void close() {
      hsm.delete(keyId);
    }
  }

  private static ImportedKey importSecret(byte[] keyBytes, KeySpec spec, KeyUsage usage, String label) throws Exception {
    return importWrapped(kwp(new SecretKeySpec(keyBytes, "AES")), spec, usage, label);
  }

  private static ImportedKey importPrivate(RSAPrivateCrtKeySpec spec, KeySpec keySpec, KeyUsage usage, String label)
      throws Exception {
    PrivateKey key = KeyFactory.getInstance("RSA").generatePrivate(spec);
    return importWrapped(kwp(key), keySpec, usage, label);
  }

  private static ImportedKey importWrapped(byte[] wrapped, KeySpec spec, KeyUsage usage, String label) throws Exception {
    KeyInfo info = hsm.importWrapped(kekId, "AES_KEY_WRAP_PAD", wrapped, spec, "vector-" + label + "-" + imported++,
        usage, false);
    Key handle = keyStore.getKey(info.keyId(), null);
    return new ImportedKey(info.keyId(), handle);
  }

  private static byte[] kwp(Key key) throws Exception {
    Cipher kwp = Cipher.getInstance("AES/KWP/NoPadding", "SunJCE");
    kwp.init(Cipher.WRAP_MODE, new SecretKeySpec(kek, "AES"));
    return kwp.wrap(key);
  }

  /**
   * The CRT form of an RSA key given as (n, e, d), which SigGen's file gives: n's factors from d·e − 1 (the
   * usual method, e.g. NIST SP 800-56B appendix C), so the key can be imported as an ordinary PKCS#8 key.
   */
  static RSAPrivateCrtKeySpec crtKey(BigInteger n, BigInteger e, BigInteger d) {
    BigInteger k = d.multiply(e).subtract(BigInteger.ONE);
    int twos = k.getLowestSetBit();
    BigInteger t = k.shiftRight(twos);
    for (int g = 2; g < 1000; g++) {
      BigInteger x = BigInteger.valueOf(g).modPow(t, n);
      for (int i = 0; i < twos && !x.equals(BigInteger.ONE) && !x.equals(n.subtract(BigInteger.ONE)); i++) {
        BigInteger y = x.modPow(BigInteger.TWO, n);
        if (y.equals(BigInteger.ONE)) {
          BigInteger p = x.subtract(BigInteger.ONE).gcd(n);
          BigInteger q = n.divide(p);
          return new RSAPrivateCrtKeySpec(n, e, d, p, q, d.mod(p.subtract(BigInteger.ONE)),
              d.mod(q.subtract(BigInteger.ONE)), q.modInverse(p));
        }
        x = y;
      }
    }
    throw new IllegalStateException("n did not factor from (e, d)");
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
