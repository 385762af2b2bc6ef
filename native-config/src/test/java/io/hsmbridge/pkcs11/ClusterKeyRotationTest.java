package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.assertHsm;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Rotating the cluster key on real SoftHSM2 tokens (docs/replication.md, "Rotating the cluster key"): the
 * next generation travels under the carrier and every HSM installs it; new replicas are wrapped under it and
 * say so in their blob, old ones (unmarked) still install under generation 1 without any trial; a token
 * without the generation refuses a blob that names it; a joiner receives every generation.
 */
class ClusterKeyRotationTest {
  private static final byte[] M = "travels under generation 2".getBytes(StandardCharsets.UTF_8);
  private HsmToken first;
  private HsmToken second;

  @BeforeEach
  void aClusterOfTwo() {
    first = HsmToken.open(SoftHsmFixture.newToken("ckrot-first"));
    first.clusterKeys().createClusterKey();
    first.backupKeys().createBackupKey();
    second = HsmToken.open(SoftHsmFixture.newToken("ckrot-second"));
    second.clusterKeys().installClusterKey(first.clusterKeys().wrapForJoiner(second.clusterKeys().createTransportKey()));
  }

  @AfterEach
  void close() {
    first.close();
    second.close();
  }

  @Test
  void newReplicasTravelUnderTheNewGenerationAndOldBlobsStillInstall() throws Exception {
    ReplicaBlob before = first.clusterKeys().generateForReplication(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "before",
        GenerateForReplicationTest.newKeyId());
    assertEquals(0, before.wrapped().length % 8, "generation 1: an AES key wrap, unmarked");

    NextGeneration next = first.clusterKeys().prepareClusterKeyRotation();
    assertEquals(2, next.generation());
    assertEquals(List.of(1), first.clusterKeys().clusterKeyGenerations(), "nothing stored before the log applies it");
    for (HsmToken t : List.of(first, second)) {
      assertTrue(t.clusterKeys().installClusterKeyGeneration(next.generation(), next.label(), next.wrapped()));
      assertFalse(t.clusterKeys().installClusterKeyGeneration(next.generation(), next.label(), next.wrapped()));
      assertEquals(List.of(1, 2), t.clusterKeys().clusterKeyGenerations());
    }

    String keyId = GenerateForReplicationTest.newKeyId();
    ReplicaBlob after = second.clusterKeys().generateForReplication(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "after", keyId);
    byte[] marked = after.wrapped();
    assertEquals(4, marked.length % 8, "marked with its generation");
    assertEquals(2, ClusterKeys.blobGeneration(marked));
    for (HsmToken t : List.of(first, second)) {
      t.clusterKeys().installReplica(after);
      t.clusterKeys().installReplica(before); // made before the rotation, applied after it: generation 1, no trial
    }
    CryptoService.Encrypted e = first.crypto().encrypt(keyId, Algorithm.AES_GCM, M, null);
    assertArrayEquals(M, second.crypto().decrypt(keyId, Algorithm.AES_GCM, e.ciphertext(), e.iv(), null));
    CryptoService.Encrypted old = second.crypto().encrypt(before.keyId(), Algorithm.AES_GCM, M, null);
    assertArrayEquals(M, first.crypto().decrypt(before.keyId(), Algorithm.AES_GCM, old.ciphertext(), old.iv(), null));

    // A key re-wrapped for another HSM (repair) goes under the newest generation too.
    assertEquals(2, ClusterKeys.blobGeneration(first.clusterKeys().wrapForReplication(keyId).wrapped()));

    // A joiner after the rotation receives both generations and installs a generation-2 blob.
    try (HsmToken joiner = HsmToken.open(SoftHsmFixture.newToken("ckrot-joiner"))) {
      ClusterKeys.JoinerKeys keys = first.clusterKeys().wrapForJoiner(joiner.clusterKeys().createTransportKey());
      assertEquals(1, keys.newerClusterKeys().size());
      joiner.clusterKeys().installClusterKey(keys);
      assertEquals(List.of(1, 2), joiner.clusterKeys().clusterKeyGenerations());
      joiner.clusterKeys().installReplica(after);
      joiner.clusterKeys().installReplica(before);
      assertArrayEquals(M, joiner.crypto().decrypt(keyId, Algorithm.AES_GCM, e.ciphertext(), e.iv(), null));
    }
  }

  @Test
  void aBlobThatNamesAGenerationTheTokenLacksOrWhoseMarkIsBrokenIsRefused() {
    NextGeneration next = first.clusterKeys().prepareClusterKeyRotation();
    first.clusterKeys().installClusterKeyGeneration(next.generation(), next.label(), next.wrapped());
    ReplicaBlob after = first.clusterKeys().generateForReplication(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "after",
        GenerateForReplicationTest.newKeyId());
    int keys = second.keys().count();
    HsmException lacking = assertHsm(ErrorCode.NOT_ALLOWED_BY_POLICY, () -> second.clusterKeys().installReplica(after));
    assertTrue(lacking.getMessage().contains("no cluster key generation 2"), lacking.getMessage());

    byte[] wrongGeneration = after.wrapped();
    wrongGeneration[3] = 3;
    assertHsm(ErrorCode.NOT_ALLOWED_BY_POLICY, () -> first.clusterKeys().installReplica(with(after, wrongGeneration)));
    byte[] brokenMark = after.wrapped();
    brokenMark[0] ^= 1;
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> first.clusterKeys().installReplica(with(after, brokenMark)));
    byte[] generationOne = after.wrapped();
    generationOne[2] = 0;
    generationOne[3] = 1;
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> first.clusterKeys().installReplica(with(after, generationOne)));
    assertEquals(keys, second.keys().count(), "nothing installed");
  }

  @Test
  void aRotationNeedsTheCarrierAndAnotherClustersDoesNotUnwrapHere() {
    try (HsmToken noCarrier = HsmToken.open(SoftHsmFixture.newToken("ckrot-old"))) {
      noCarrier.clusterKeys().createClusterKey(); // a cluster made before rotation existed: no backup key, no carrier
      HsmException e = assertHsm(ErrorCode.NOT_ALLOWED_BY_POLICY, () -> noCarrier.clusterKeys().prepareClusterKeyRotation());
      assertTrue(e.getMessage().contains("no key carrier"), e.getMessage());
    }
    try (HsmToken foreign = HsmToken.open(SoftHsmFixture.newToken("ckrot-foreign"))) {
      foreign.clusterKeys().createClusterKey();
      foreign.backupKeys().createBackupKey();
      NextGeneration theirs = foreign.clusterKeys().prepareClusterKeyRotation();
      assertHsm(ErrorCode.CRYPTO_FAILURE,
          () -> first.clusterKeys().installClusterKeyGeneration(theirs.generation(), theirs.label(), theirs.wrapped()));
      assertEquals(List.of(1), first.clusterKeys().clusterKeyGenerations());
    }
  }

  private static ReplicaBlob with(ReplicaBlob b, byte[] wrapped) {
    return new ReplicaBlob(b.keyId(), b.label(), b.spec(), b.usage(), wrapped, b.ecPoint());
  }
}
