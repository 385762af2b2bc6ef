package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.assertHsm;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.xipki.pkcs11.wrapper.AttributeVector;

/**
 * How a cluster creates a key: generated on A as session objects, wrapped under the cluster key, and
 * installed from the blob on every HSM including A. Only replicated keys ever reach A and B here, so
 * their key sets (and digests) must stay equal.
 */
class GenerateForReplicationTest {
  private static final byte[] M = "made for the cluster".getBytes(StandardCharsets.UTF_8);
  private static final SecureRandom RANDOM = new SecureRandom();
  private static HsmToken a;
  private static HsmToken b;

  @BeforeAll
  static void formCluster() {
    a = HsmToken.open(SoftHsmFixture.newToken("gen-a"));
    b = HsmToken.open(SoftHsmFixture.newToken("gen-b"));
    a.clusterKeys().createClusterKey();
    b.clusterKeys().installClusterKey(a.clusterKeys().wrapClusterKeyFor(b.clusterKeys().createTransportKey()));
  }

  @AfterAll
  static void close() {
    a.close();
    b.close();
  }

  static String newKeyId() {
    byte[] id = new byte[16];
    RANDOM.nextBytes(id);
    return HexFormat.of().formatHex(id);
  }

  /** Every object this process sees on the token: token objects AND session objects (an empty template). */
  private static int allObjects(HsmToken t) {
    return t.pool().call("count", s -> s.findAllObjectsSingle(new AttributeVector()).length);
  }

  private static int sessionObjects(HsmToken t) {
    return t.pool().call("count", s -> s.findAllObjectsSingle(new AttributeVector().token(false)).length);
  }

  @Test
  void everySpecIsMadeOutsideTheTokenAndWorksOnEveryHsmThatInstallsIt() throws Exception {
    List<KeySpec> replicated = new ArrayList<>();
    for (KeySpec spec : KeySpec.values()) {
      KeyUsage usage = KeyUsage.defaultFor(spec);
      String keyId = newKeyId();
      String label = "cluster " + spec;
      int before = allObjects(a);
      int keysBefore = a.keys().count();
      if (spec == KeySpec.ED25519) {
        // SoftHSM2 2.6.1 cannot wrap Ed25519 private keys (CKR_KEY_NOT_WRAPPABLE), even under a trusted key.
        HsmException e = assertHsm(ErrorCode.NOT_ALLOWED_BY_POLICY,
            () -> a.clusterKeys().generateForReplication(spec, usage, label, keyId));
        assertTrue(e.getMessage().contains("cannot wrap ED25519") && e.getMessage().contains("cannot be replicated"),
            e.getMessage());
        assertEquals(before, allObjects(a), "the failed generation left no object, session or token");
        continue;
      }
      ReplicaBlob blob = a.clusterKeys().generateForReplication(spec, usage, label, keyId.toUpperCase());
      assertEquals(keyId, blob.keyId(), "normalised to lowercase");
      assertEquals(before, allObjects(a), spec + ": generation leaves no object on A, session or token");
      assertEquals(0, sessionObjects(a), spec.name());
      assertEquals(keysBefore, a.keys().count());
      assertHsm(ErrorCode.UNKNOWN_KEY, () -> a.keys().describe(keyId));
      assertEquals(spec.family() == KeySpec.Family.EC, blob.ecPoint() != null, spec + " EC point");

      KeyInfo onA = a.clusterKeys().installReplica(blob);
      KeyInfo onB = b.clusterKeys().installReplica(blob);
      assertEquals(new KeyInfo(keyId, label, spec, usage, false, true, true), onA, "the policy of a non-exportable key");
      assertEquals(onA, onB);
      // The installed key and nothing else: private + public half, or secret key + its spec record.
      assertEquals(before + 2, allObjects(a), spec + ": only the installed key was added to A");
      exercise(spec, keyId);
      replicated.add(spec);
    }
    assertEquals(KeySpec.values().length - 1, replicated.size());
    assertEquals(KeyDigest.of(a.keys().rescan()), KeyDigest.of(b.keys().rescan()), "same replicated keys, same digest");
    assertEquals(KeyDigest.of(a.keys().list()), KeyDigest.of(b.keys().list()));
  }

  /** Real crypto across the two HSMs with the key each installed from the same blob. */
  private static void exercise(KeySpec spec, String keyId) throws Exception {
    switch (spec.family()) {
      case AES -> {
        CryptoService.Encrypted e = a.crypto().encrypt(keyId, Algorithm.AES_GCM, M, null);
        assertArrayEquals(M, b.crypto().decrypt(keyId, Algorithm.AES_GCM, e.ciphertext(), e.iv(), null), spec.name());
      }
      case HMAC -> {
        byte[] mac = a.crypto().mac(keyId, Algorithm.HMAC_SHA256, M);
        assertTrue(b.crypto().verifyMac(keyId, Algorithm.HMAC_SHA256, M, mac));
      }
      case RSA, EC -> {
        assertArrayEquals(a.keys().publicKey(keyId), b.keys().publicKey(keyId), spec + " public key");
        boolean rsa = spec.family() == KeySpec.Family.RSA;
        Algorithm alg = rsa ? Algorithm.RSA_PSS_SHA256 : spec == KeySpec.EC_P256 ? Algorithm.ECDSA_SHA256 : Algorithm.ECDSA_SHA384;
        byte[] sig = b.crypto().sign(keyId, alg, M);
        PublicKey pub = KeyFactory.getInstance(rsa ? "RSA" : "EC").generatePublic(new X509EncodedKeySpec(a.keys().publicKey(keyId)));
        Signature jdk = Signature.getInstance(rsa ? "RSASSA-PSS" : spec == KeySpec.EC_P256 ? "SHA256withECDSA" : "SHA384withECDSA");
        if (rsa) {
          jdk.setParameter(new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1));
        }
        jdk.initVerify(pub);
        jdk.update(M);
        assertTrue(jdk.verify(sig), spec + ": B's signature verifies with the public key");
        assertTrue(a.crypto().verify(keyId, alg, M, sig), spec + ": A verifies B's signature");
      }
      default -> fail("unexpected " + spec);
    }
  }

  @Test
  void badRequestsFailBeforeTheTokenIsTouched() {
    int before = allObjects(a);
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> a.clusterKeys().generateForReplication(KeySpec.AES_256,
        KeyUsage.ENCRYPT_DECRYPT, "x", "0123"));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> a.clusterKeys().generateForReplication(KeySpec.AES_256,
        KeyUsage.ENCRYPT_DECRYPT, "x", "zz" + newKeyId().substring(2)));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> a.clusterKeys().generateForReplication(KeySpec.AES_256,
        KeyUsage.ENCRYPT_DECRYPT, "x", null));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> a.clusterKeys().generateForReplication(KeySpec.EC_P256,
        KeyUsage.ENCRYPT_DECRYPT, "x", newKeyId()));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> a.clusterKeys().generateForReplication(KeySpec.EC_P256,
        KeyUsage.SIGN_VERIFY, null, newKeyId()));
    assertEquals(before, allObjects(a));
  }

  @Test
  void aTokenWithoutTheClusterKeyCannotGenerateForTheCluster() {
    try (HsmToken lone = HsmToken.open(SoftHsmFixture.newToken("gen-lone"))) {
      HsmException e = assertHsm(ErrorCode.NOT_ALLOWED_BY_POLICY, () -> lone.clusterKeys().generateForReplication(
          KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "x", newKeyId()));
      assertTrue(e.getMessage().contains("no cluster key"), e.getMessage());
      assertEquals(0, allObjects(lone));
    }
  }

  @Test
  void aBlobMadeForTheClusterCannotBeUnwrappedIntoAnExportableKey() {
    ReplicaBlob blob = a.clusterKeys().generateForReplication(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "guarded", newKeyId());
    // What a token User could try with the cluster key directly: the cluster key's unwrap template refuses it.
    HsmException e = assertThrows(HsmException.class, () -> b.pool().call("attack", s -> {
      long ck = ClusterKeys.find(s, org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_SECRET_KEY, ClusterKeys.CLUSTER_KEY_ID);
      return s.unwrapKey(Mechanisms.aesKeyWrapPad(), ck, blob.wrapped(), new AttributeVector()
          .class_(org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_SECRET_KEY).keyType(org.xipki.pkcs11.wrapper.PKCS11Constants.CKK_AES)
          .token(false).sensitive(false).extractable(true).private_(true).wrapWithTrusted(false));
    }));
    assertEquals(org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_TEMPLATE_INCONSISTENT, e.ckr(), e.serverDetail());
  }
}
