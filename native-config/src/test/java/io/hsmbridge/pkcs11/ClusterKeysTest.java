package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.assertHsm;
import static io.hsmbridge.pkcs11.TestSupport.flip;
import static org.junit.jupiter.api.Assertions.*;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.xipki.pkcs11.wrapper.AttributeVector;

/**
 * Two real SoftHSM2 tokens (two slots of one module) become one cluster: A creates the trusted cluster
 * key, B receives it wrapped under its own transport key, and user keys made on A are recreated on B
 * from blobs wrapped under the cluster key. Every step is checked with real crypto on both tokens.
 */
class ClusterKeysTest {
  private static final byte[] M = "replicate me".getBytes(StandardCharsets.UTF_8);
  private static HsmToken a;
  private static HsmToken b;
  private static String keptOnA;

  @BeforeAll
  static void formCluster() {
    a = HsmToken.open(SoftHsmFixture.newToken("cluster-a"));
    b = HsmToken.open(SoftHsmFixture.newToken("cluster-b"));
    keptOnA = a.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "made before the cluster key", false).keyId();
    assertFalse(a.clusterKeys().hasClusterKey());
    a.clusterKeys().createClusterKey();
    byte[] transport = b.clusterKeys().createTransportKey();
    b.clusterKeys().installClusterKey(a.clusterKeys().wrapClusterKeyFor(transport));
  }

  @AfterAll
  static void close() {
    a.close();
    b.close();
  }

  @Test
  void bothHoldTheClusterKeyAndNoTransportObjectIsLeft() throws Exception {
    assertTrue(a.clusterKeys().hasClusterKey());
    assertTrue(b.clusterKeys().hasClusterKey());
    for (HsmToken t : new HsmToken[] {a, b}) {
      int leftovers = t.pool().call("count", s -> s.findAllObjectsSingle(new AttributeVector().id(ClusterKeys.TRANSPORT_KEY_ID)).length
          + s.findAllObjectsSingle(new AttributeVector().id(ClusterKeys.PEER_TRANSPORT_ID)).length);
      assertEquals(0, leftovers, t.label());
    }
    assertHsm(ErrorCode.NOT_ALLOWED_BY_POLICY, () -> a.clusterKeys().createClusterKey());
  }

  /**
   * A joiner installs only the cluster's own key: the key of another cluster (what a rogue answerer would hand
   * it) is refused inside the token by its check value, before anything is written; the real one then installs.
   */
  @Test
  void aJoinerRefusesAClusterKeyWhoseCheckValueIsNotTheClustersOwn() {
    byte[] expected = a.clusterKeys().clusterKeyCheckValue();
    assertEquals(ClusterKeys.CHECK_VALUE_BYTES, expected.length);
    assertArrayEquals(expected, b.clusterKeys().clusterKeyCheckValue(), "one cluster key, one check value");
    assertArrayEquals(expected, a.clusterKeys().clusterKeyCheckValue(), "deterministic");
    try (HsmToken rogue = HsmToken.open(SoftHsmFixture.newToken("cluster-rogue"));
        HsmToken joiner = HsmToken.open(SoftHsmFixture.newToken("cluster-joiner"))) {
      rogue.clusterKeys().createClusterKey();
      assertFalse(java.util.Arrays.equals(expected, rogue.clusterKeys().clusterKeyCheckValue()));
      byte[] transport = joiner.clusterKeys().createTransportKey();
      assertHsm(ErrorCode.ACCESS_DENIED, () -> joiner.clusterKeys().installClusterKey(rogue.clusterKeys().wrapForJoiner(transport), expected));
      assertFalse(joiner.clusterKeys().hasClusterKey(), "nothing of the rogue's key was written");
      assertArrayEquals(transport, joiner.clusterKeys().transportPublicKey(), "the transport key is kept for the next answer");
      joiner.clusterKeys().installClusterKey(a.clusterKeys().wrapForJoiner(transport), expected);
      assertArrayEquals(expected, joiner.clusterKeys().clusterKeyCheckValue());
      assertNull(joiner.clusterKeys().transportPublicKey(), "the transport pair is destroyed once the key is in");
    }
  }

  @Test
  void keysMadeBeforeTheSoStepsStillWork() {
    // SO work logs the User out, which invalidates private-object handles: the cache must have been refreshed.
    CryptoService.Encrypted e = a.crypto().encrypt(keptOnA, Algorithm.AES_GCM, M, null);
    assertArrayEquals(M, a.crypto().decrypt(keptOnA, Algorithm.AES_GCM, e.ciphertext(), e.iv(), null));
  }

  @Test
  void secretKeysReplicateAndInteroperate() {
    String aes = a.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "aes-r", false).keyId();
    KeyInfo onB = b.clusterKeys().installReplica(a.clusterKeys().wrapForReplication(aes));
    assertEquals(a.keys().describe(aes), onB);
    CryptoService.Encrypted e = a.crypto().encrypt(aes, Algorithm.AES_GCM, M, M);
    assertArrayEquals(M, b.crypto().decrypt(aes, Algorithm.AES_GCM, e.ciphertext(), e.iv(), M));

    String hmac = a.keys().generate(KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, "hmac-r", false).keyId();
    b.clusterKeys().installReplica(a.clusterKeys().wrapForReplication(hmac));
    assertArrayEquals(a.crypto().mac(hmac, Algorithm.HMAC_SHA256, M), b.crypto().mac(hmac, Algorithm.HMAC_SHA256, M));
  }

  @Test
  void keyPairsReplicateWithTheirPublicHalf() throws Exception {
    Object[][] cases = {
        {KeySpec.EC_P256, Algorithm.ECDSA_SHA256, "SHA256withECDSA"},
        {KeySpec.RSA_2048, Algorithm.RSA_PSS_SHA256, "RSASSA-PSS"}};
    for (Object[] c : cases) {
      KeySpec spec = (KeySpec) c[0];
      Algorithm alg = (Algorithm) c[1];
      String id = a.keys().generate(spec, KeyUsage.SIGN_VERIFY, "pair-" + spec, false).keyId();
      b.clusterKeys().installReplica(a.clusterKeys().wrapForReplication(id));
      assertArrayEquals(a.keys().publicKey(id), b.keys().publicKey(id), spec + " public key");
      byte[] sigB = b.crypto().sign(id, alg, M);
      assertTrue(a.crypto().verify(id, alg, M, sigB), spec + ": A verifies B's signature");
      PublicKey pub = KeyFactory.getInstance(spec == KeySpec.RSA_2048 ? "RSA" : spec == KeySpec.EC_P256 ? "EC" : "Ed25519")
          .generatePublic(new X509EncodedKeySpec(a.keys().publicKey(id)));
      Signature jdk = Signature.getInstance((String) c[2]);
      if (spec == KeySpec.RSA_2048) {
        jdk.setParameter(new java.security.spec.PSSParameterSpec("SHA-256", "MGF1",
            java.security.spec.MGF1ParameterSpec.SHA256, 32, 1));
      }
      jdk.initVerify(pub);
      jdk.update(M);
      assertTrue(jdk.verify(sigB), spec + ": the JDK verifies B's signature");
    }
  }

  /** SoftHSM2 2.6.1 cannot wrap Ed25519 private keys at all (measured): they cannot leave their HSM. */
  @Test
  void ed25519KeysCannotBeReplicatedOnThisToken() {
    String id = a.keys().generate(KeySpec.ED25519, KeyUsage.SIGN_VERIFY, "ed", false).keyId();
    HsmException e = assertHsm(ErrorCode.NOT_ALLOWED_BY_POLICY, () -> a.clusterKeys().wrapForReplication(id));
    assertTrue(e.getMessage().contains("ED25519"), e.getMessage());
  }

  @Test
  void installingTheSameReplicaTwiceChangesNothing() {
    String id = a.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "twice", false).keyId();
    ReplicaBlob blob = a.clusterKeys().wrapForReplication(id);
    KeyInfo first = b.clusterKeys().installReplica(blob);
    int count = b.keys().count();
    assertEquals(first, b.clusterKeys().installReplica(blob));
    assertEquals(count, b.keys().count());
  }

  @Test
  void exportableKeysAreNotReplicatedUnderTheClusterKey() {
    String id = a.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "exportable", true).keyId();
    assertHsm(ErrorCode.NOT_ALLOWED_BY_POLICY, () -> a.clusterKeys().wrapForReplication(id));
  }

  @Test
  void aReplicaBlobCannotBeUnwrappedIntoAReadableKey() {
    String id = a.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "guarded", false).keyId();
    ReplicaBlob blob = a.clusterKeys().wrapForReplication(id);
    // What a token User (e.g. the host operator) could try directly: unwrap as non-sensitive, extractable.
    HsmException e = assertThrows(HsmException.class, () -> b.pool().call("attack", s -> {
      long ck = ClusterKeys.find(s, CKO_SECRET_KEY, ClusterKeys.CLUSTER_KEY_ID);
      return s.unwrapKey(Mechanisms.aesKeyWrapPad(), ck, blob.wrapped(), new AttributeVector().class_(CKO_SECRET_KEY)
          .keyType(CKK_AES).token(false).sensitive(false).extractable(true).private_(true).wrapWithTrusted(false));
    }));
    assertEquals(CKR_TEMPLATE_INCONSISTENT, e.ckr(), e.serverDetail());
    // And an untrusted key cannot wrap the replica out again (CKA_WRAP_WITH_TRUSTED).
    b.clusterKeys().installReplica(blob);
    String kek = b.keys().generate(KeySpec.AES_256, KeyUsage.WRAP_UNWRAP, "untrusted kek", false).keyId();
    HsmException raw = assertThrows(HsmException.class, () -> b.pool().call("attack", s ->
        s.wrapKey(Mechanisms.aesKeyWrapPad(), b.keys().entry(kek).handle(), b.keys().entry(id).handle())));
    assertEquals(CKR_KEY_NOT_WRAPPABLE, raw.ckr(), raw.serverDetail());
  }

  @Test
  void aTamperedClusterKeyBlobIsAnOpaqueFailureAndInstallsNothing() {
    HsmToken c = HsmToken.open(SoftHsmFixture.newToken("cluster-c"));
    try {
      byte[] transport = c.clusterKeys().createTransportKey();
      byte[] blob = a.clusterKeys().wrapClusterKeyFor(transport);
      HsmException e = assertHsm(ErrorCode.CRYPTO_FAILURE, () -> c.clusterKeys().installClusterKey(flip(blob, 10)));
      assertEquals(ErrorCode.CRYPTO_FAILURE.summary(), e.getMessage());
      assertFalse(c.clusterKeys().hasClusterKey());
    } finally {
      c.close();
    }
  }
}
