package io.hsmbridge.pkcs11;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.ErrorCode;
import java.security.KeyPairGenerator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The disaster-recovery path of the PBK on real SoftHSM2 tokens (docs/disaster-recovery.md): a cluster
 * HSM escrows it to a recovery token's public key; after the disaster the recovery token hands it to a
 * fresh HSM's transport key, and the fresh HSM opens a backup's EBK with it. The wrong recovery token,
 * a foreign key, a repeated install and an altered blob are refused inside the tokens.
 */
class RecoveryKeysTest {
  private static HsmToken cluster;
  private static HsmToken recovery;
  private static HsmToken otherRecovery;
  private static byte[] wrappedEbk;
  private static byte[] escrow;

  @BeforeAll
  static void aClusterHsmEscrowsItsPbk() {
    cluster = HsmToken.open(SoftHsmFixture.newToken("dr-cluster"));
    cluster.clusterKeys().createClusterKey();
    cluster.backupKeys().createBackupKey();
    wrappedEbk = cluster.backupKeys().begin(); // a backup's EBK, wrapped under the PBK
    cluster.backupKeys().end();
    recovery = HsmToken.open(SoftHsmFixture.newToken("dr-recovery"));
    otherRecovery = HsmToken.open(SoftHsmFixture.newToken("dr-other"));
    byte[] recoveryKey = recovery.recoveryKeys().createRecoveryKey();
    assertArrayEquals(recoveryKey, recovery.recoveryKeys().recoveryKey());
    otherRecovery.recoveryKeys().createRecoveryKey();
    escrow = cluster.recoveryKeys().escrow(recoveryKey).wrapped();
  }

  @AfterAll
  static void close() {
    for (HsmToken t : new HsmToken[] {cluster, recovery, otherRecovery}) {
      if (t != null) {
        t.close();
      }
    }
  }

  @Test
  void aFreshHsmGetsThePbkThroughTheRecoveryTokenAndOpensTheClustersBackups() {
    try (HsmToken fresh = HsmToken.open(SoftHsmFixture.newToken("dr-fresh"))) {
      assertThrows(HsmException.class, () -> fresh.backupKeys().open(wrappedEbk), "no PBK yet");
      byte[] transport = fresh.clusterKeys().createTransportKey();
      byte[] handed = recovery.recoveryKeys().transfer(escrow, transport);
      fresh.recoveryKeys().installBackupKey(handed);
      assertTrue(fresh.backupKeys().hasBackupKey());
      fresh.backupKeys().open(wrappedEbk); // the EBK of the old cluster's backup unwraps: the same PBK
      fresh.backupKeys().end();
      HsmException again = assertThrows(HsmException.class, () -> fresh.recoveryKeys().installBackupKey(handed));
      assertEquals(ErrorCode.NOT_ALLOWED_BY_POLICY, again.code(), again.getMessage());
    }
  }

  @Test
  void theWrongRecoveryTokenAnAlteredBlobAndAForeignKeyAreRefused() throws Exception {
    try (HsmToken fresh = HsmToken.open(SoftHsmFixture.newToken("dr-fresh2"))) {
      byte[] transport = fresh.clusterKeys().createTransportKey();
      HsmException wrongToken = assertThrows(HsmException.class, () -> otherRecovery.recoveryKeys().transfer(escrow, transport));
      assertEquals(ErrorCode.CRYPTO_FAILURE, wrongToken.code(), wrongToken.getMessage());
      byte[] altered = escrow.clone();
      altered[altered.length / 2] ^= 1;
      HsmException alteredEscrow = assertThrows(HsmException.class, () -> recovery.recoveryKeys().transfer(altered, transport));
      assertEquals(ErrorCode.CRYPTO_FAILURE, alteredEscrow.code(), alteredEscrow.getMessage());
      byte[] handed = recovery.recoveryKeys().transfer(escrow, transport);
      handed[3] ^= 1;
      HsmException alteredHand = assertThrows(HsmException.class, () -> fresh.recoveryKeys().installBackupKey(handed));
      assertEquals(ErrorCode.CRYPTO_FAILURE, alteredHand.code(), alteredHand.getMessage());
      assertFalse(fresh.backupKeys().hasBackupKey());
    }
    KeyPairGenerator ec = KeyPairGenerator.getInstance("EC");
    byte[] notRsa = ec.generateKeyPair().getPublic().getEncoded();
    HsmException foreign = assertThrows(HsmException.class, () -> cluster.recoveryKeys().escrow(notRsa));
    assertEquals(ErrorCode.INVALID_PARAMETER, foreign.code(), foreign.getMessage());
    HsmException noPbk = assertThrows(HsmException.class, () -> recovery.recoveryKeys().escrow(recovery.recoveryKeys().recoveryKey()));
    assertEquals(ErrorCode.NOT_ALLOWED_BY_POLICY, noPbk.code(), noPbk.getMessage());
  }
}
