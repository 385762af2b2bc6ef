package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.assertHsm;
import static org.junit.jupiter.api.Assertions.*;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Keys the user marks "never extractable" (CKA_EXTRACTABLE=false): they work, but nothing can wrap them. */
class NeverExtractableTest {
  private static final byte[] M = "stays here".getBytes(StandardCharsets.UTF_8);
  private static HsmToken hsm;
  private static TokenInspector inspector;

  @BeforeAll
  static void open() {
    TokenConfig config = SoftHsmFixture.newToken("never");
    hsm = HsmToken.open(config);
    hsm.clusterKeys().createClusterKey();
    inspector = new TokenInspector(config);
  }

  @AfterAll
  static void close() {
    inspector.close();
    hsm.close();
  }

  @Test
  void aNeverExtractableKeyReadsSoAndWorks() {
    KeyInfo aes = hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "never aes", false, true);
    KeyInfo ec = hsm.keys().generate(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "never ec", false, true);
    for (KeyInfo k : new KeyInfo[] {aes, ec}) {
      assertFalse(k.extractable(), k.toString());
      assertFalse(k.exportable(), k.toString());
      assertTrue(k.sensitive(), k.toString());
    }
    // Read back from the token itself, not from what generate() returned.
    hsm.keys().rescan();
    assertFalse(hsm.keys().describe(aes.keyId()).extractable());
    assertFalse(hsm.keys().describe(ec.keyId()).extractable());
    CryptoService.Encrypted e = hsm.crypto().encrypt(aes.keyId(), Algorithm.AES_GCM, M, null);
    assertArrayEquals(M, hsm.crypto().decrypt(aes.keyId(), Algorithm.AES_GCM, e.ciphertext(), e.iv(), null));
    byte[] sig = hsm.crypto().sign(ec.keyId(), Algorithm.ECDSA_SHA256, M);
    assertTrue(hsm.crypto().verify(ec.keyId(), Algorithm.ECDSA_SHA256, M, sig));
  }

  @Test
  void theFourArgumentGenerateStillMakesExtractableKeys() {
    KeyInfo k = hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "default", false);
    assertTrue(k.extractable());
    assertFalse(k.exportable());
    KeyInfo exportable = hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "exportable", true);
    assertTrue(exportable.extractable());
    assertTrue(exportable.exportable());
  }

  @Test
  void exportableAndNeverExtractableTogetherAreRefusedAndMakeNothing() {
    int objects = inspector.objectCount();
    int keys = hsm.keys().count();
    HsmException e = assertHsm(ErrorCode.INVALID_PARAMETER,
        () -> hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "both", true, true));
    assertTrue(e.getMessage().contains("never extractable"), e.getMessage());
    assertEquals(objects, inspector.objectCount());
    assertEquals(keys, hsm.keys().count());
  }

  @Test
  void aNeverExtractableKeyCannotBeReplicatedNorWrappedByTheTrustedClusterKey() {
    String id = hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "pinned", false, true).keyId();
    HsmException e = assertHsm(ErrorCode.NOT_ALLOWED_BY_POLICY, () -> hsm.clusterKeys().wrapForReplication(id));
    assertTrue(e.getMessage().contains("never-extractable key cannot be replicated"), e.getMessage());
    // The token enforces it too: even the trusted cluster key cannot wrap it.
    HsmException raw = assertThrows(HsmException.class, () -> hsm.pool().call("direct wrap", s -> s.wrapKey(
        Mechanisms.aesKeyWrapPad(), ClusterKeys.find(s, CKO_SECRET_KEY, ClusterKeys.CLUSTER_KEY_ID),
        hsm.keys().entry(id).handle())));
    assertEquals(CKR_KEY_UNEXTRACTABLE, raw.ckr(), raw.serverDetail());
    // And an ordinary non-exportable key of the same token still replicates (the check is per key).
    String ok = hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "replicable", false).keyId();
    assertTrue(hsm.clusterKeys().wrapForReplication(ok).wrapped().length > 32);
  }
}
