package io.hsmbridge.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.interfaces.RSAPrivateCrtKey;
import java.util.Base64;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** PEM round trips of approval keys and the approval signature (JDK crypto, real keys). */
class PemAndApprovalTest {
  private static KeyPair pair;

  @BeforeAll
  static void key() throws Exception {
    pair = HsmSessionTest.rsa();
  }

  @Test
  void privateAndPublicKeysRoundTrip() {
    String pem = Pem.privateKey(pair.getPrivate());
    assertTrue(pem.startsWith("-----BEGIN PRIVATE KEY-----\n") && pem.endsWith("-----END PRIVATE KEY-----\n"), pem);
    assertTrue(pem.lines().allMatch(l -> l.length() <= 64));
    PrivateKey back = Pem.readRsaPrivateKey("comment before\n" + pem);
    assertArrayEquals(pair.getPrivate().getEncoded(), back.getEncoded());
    assertEquals(pair.getPublic(), Pem.publicKeyOf(back));

    String pub = Pem.publicKey(pair.getPublic());
    assertTrue(pub.startsWith("-----BEGIN PUBLIC KEY-----\n"), pub);
    assertEquals(pair.getPublic(), Pem.readRsaPublicKey(pub));
  }

  @Test
  void readsOpenSslsTraditionalRsaPrivateKey() {
    // PKCS#1 is the PKCS#8 key's inner OCTET STRING: the same key in OpenSSL's older format.
    byte[] pkcs8 = pair.getPrivate().getEncoded();
    byte[] pkcs1 = pkcs1Of(pkcs8);
    assertArrayEquals(pkcs8, Pem.pkcs8FromPkcs1(pkcs1));
    String pem = "-----BEGIN RSA PRIVATE KEY-----\n" + Base64.getMimeEncoder().encodeToString(pkcs1)
        + "\n-----END RSA PRIVATE KEY-----\n";
    assertEquals(pair.getPublic(), Pem.publicKeyOf(Pem.readRsaPrivateKey(pem)));
  }

  @Test
  void errorsNameTheProblemNotTheKey() throws Exception {
    String enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assertTrue(assertThrows(IllegalArgumentException.class, () -> Pem.readRsaPrivateKey(enc)).getMessage()
        .contains("encrypted"));
    assertEquals("no PEM 'PRIVATE KEY' block found",
        assertThrows(IllegalArgumentException.class, () -> Pem.readRsaPrivateKey(Pem.publicKey(pair.getPublic())))
            .getMessage());
    KeyPairGenerator ec = KeyPairGenerator.getInstance("EC");
    ec.initialize(256);
    String ecPem = Pem.privateKey(ec.generateKeyPair().getPrivate());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Pem.readRsaPrivateKey(ecPem));
    assertEquals("the PEM private key is not an RSA key (approval keys are RSA)", e.getMessage());
    String pem = Pem.privateKey(pair.getPrivate());
    String garbled = pem.replace(pem.lines().skip(2).findFirst().orElseThrow(), "!!!!");
    e = assertThrows(IllegalArgumentException.class, () -> Pem.readRsaPrivateKey(garbled));
    assertFalse(e.getMessage().contains(pem.lines().skip(1).findFirst().orElseThrow()));
  }

  @Test
  void anApprovalVerifiesOnlyForItsDocumentAndKey() throws Exception {
    QuorumToken token = new QuorumToken("t1", "hsmbridge quorum token t1: key.delete 0123 — ünïcode", 1L);
    QuorumApproval a = QuorumApproval.approve(token, "co1", pair.getPrivate());
    assertEquals("t1", a.tokenId());
    assertTrue(QuorumApproval.verify(token.document(), a.signature(), pair.getPublic()));
    assertFalse(QuorumApproval.verify(token.document() + " ", a.signature(), pair.getPublic()));
    assertFalse(QuorumApproval.verify(token.document(), a.signature(), HsmSessionTest.rsa().getPublic()));
    assertFalse(QuorumApproval.verify(token.document(), "not base64!", pair.getPublic()));
    assertEquals(a, QuorumApproval.fromJson(a.toJson()));
    assertThrows(IllegalArgumentException.class, () -> QuorumApproval.fromJson(a.toJson().put("user", 5)));
    assertTrue(pair.getPrivate() instanceof RSAPrivateCrtKey);
  }

  /** The PKCS#1 key inside a PKCS#8 RSA key: the content of its last element, an OCTET STRING. */
  private static byte[] pkcs1Of(byte[] pkcs8) {
    // 30 len | 02 01 00 | 30 0d <rsaEncryption, NULL> | 04 len <pkcs1>
    int i = 1 + lengthBytes(pkcs8, 1) + 3 + 15;
    if (pkcs8[i] != 0x04) {
      throw new AssertionError("unexpected PKCS#8 layout");
    }
    int n = lengthBytes(pkcs8, i + 1);
    int len = n == 1 ? pkcs8[i + 1] : ((pkcs8[i + 2] & 0xff) << 8) | (pkcs8[i + 3] & 0xff);
    return java.util.Arrays.copyOfRange(pkcs8, i + 1 + n, i + 1 + n + len);
  }

  private static int lengthBytes(byte[] der, int at) {
    return (der[at] & 0x80) == 0 ? 1 : 1 + (der[at] & 0x7f);
  }
}
