package io.hsmbridge.pkcs11;

import static org.junit.jupiter.api.Assertions.*;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.ErrorCode;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.xipki.pkcs11.wrapper.AttributeVector;

/**
 * Rotating the backup key (PBK) on real SoftHSM2 tokens (docs/backups.md, "Rotating the backup key"): the
 * next generation is made inside one HSM, travels under the carrier, and every HSM's SO installs it; new
 * backups are made under it and older ones still open; a joiner receives every generation; two racing
 * rotations end the same on every HSM; a foreign cluster's rotation, and a User holding the carrier, get
 * nothing.
 */
class BackupKeyRotationTest {
  private HsmToken first;
  private HsmToken second;
  private HsmToken foreign;

  /** Each test its own tokens: a rotation changes them for good. */
  @BeforeEach
  void aClusterOfTwo() {
    first = HsmToken.open(SoftHsmFixture.newToken("rot-first"));
    first.clusterKeys().createClusterKey();
    first.backupKeys().createBackupKey();
    second = HsmToken.open(SoftHsmFixture.newToken("rot-second"));
    second.clusterKeys().installClusterKey(first.clusterKeys().wrapForJoiner(second.clusterKeys().createTransportKey()));
    foreign = HsmToken.open(SoftHsmFixture.newToken("rot-foreign"));
    foreign.clusterKeys().createClusterKey();
    foreign.backupKeys().createBackupKey();
  }

  @AfterEach
  void close() {
    for (HsmToken t : new HsmToken[] {first, second, foreign}) {
      if (t != null) {
        t.close();
      }
    }
  }

  @Test
  void aRotationReachesEveryHsmNewBackupsUseItOldOnesStillOpenAndAJoinerGetsEveryGeneration() {
    byte[] before = ebk(first); // a backup made under the generation held now
    int was = first.backupKeys().generations().get(first.backupKeys().generations().size() - 1);

    NextGeneration next = first.backupKeys().prepareRotation();
    assertEquals(was + 1, next.generation());
    assertEquals(List.of(was), tail(first.backupKeys().generations()), "nothing stored before the log applies it");
    for (HsmToken hsm : new HsmToken[] {first, second}) {
      assertTrue(hsm.backupKeys().installGeneration(next.generation(), next.label(), next.wrapped()));
      assertFalse(hsm.backupKeys().installGeneration(next.generation(), next.label(), next.wrapped()), "idempotent");
      assertEquals(next.generation(), last(hsm.backupKeys().generations()));
    }

    byte[] after = ebk(second); // made under the new generation on the other HSM
    opens(first, after);
    opens(second, before);
    opens(first, before);
    // The new generation is another key: the old one alone does not open a backup made after the rotation.
    try (HsmToken oldOnly = HsmToken.open(SoftHsmFixture.newToken("rot-old-only"))) {
      oldOnly.clusterKeys().installClusterKey(new ClusterKeys.JoinerKeys(first.clusterKeys().wrapClusterKeyFor(
          oldOnly.clusterKeys().createTransportKey()), List.of(), null));
      assertFalse(oldOnly.backupKeys().hasBackupKey());
    }

    try (HsmToken joiner = HsmToken.open(SoftHsmFixture.newToken("rot-joiner"))) {
      ClusterKeys.JoinerKeys keys = second.clusterKeys().wrapForJoiner(joiner.clusterKeys().createTransportKey());
      assertEquals(second.backupKeys().generations().size(), keys.backupKeys().size());
      assertNotNull(keys.carrier());
      joiner.clusterKeys().installClusterKey(keys);
      assertEquals(second.backupKeys().generations(), joiner.backupKeys().generations());
      opens(joiner, before);
      opens(joiner, after);
      // and it can install the generation after that, which needs the carrier
      NextGeneration third = joiner.backupKeys().prepareRotation();
      assertTrue(joiner.backupKeys().installGeneration(third.generation(), third.label(), third.wrapped()));
    }
  }

  @Test
  void twoRotationsRacingForOneGenerationEndTheSameOnEveryHsm() {
    NextGeneration a = first.backupKeys().prepareRotation();
    NextGeneration b = second.backupKeys().prepareRotation();
    assertEquals(a.generation(), b.generation(), "both computed the next generation before either was applied");
    // The log orders them: a first. Every HSM installs a and refuses b, whatever made which.
    for (HsmToken hsm : new HsmToken[] {first, second}) {
      hsm.backupKeys().installGeneration(a.generation(), a.label(), a.wrapped());
      HsmException refused = assertThrows(HsmException.class,
          () -> hsm.backupKeys().installGeneration(b.generation(), b.label(), b.wrapped()));
      assertEquals(ErrorCode.NOT_ALLOWED_BY_POLICY, refused.code(), refused.getMessage());
      assertTrue(refused.getMessage().contains("from another rotation"), refused.getMessage());
    }
    opens(second, ebk(first));
  }

  @Test
  void anotherClustersRotationDoesNotUnwrapHere() {
    NextGeneration theirs = foreign.backupKeys().prepareRotation();
    int generations = first.backupKeys().generations().size();
    HsmException e = assertThrows(HsmException.class,
        () -> first.backupKeys().installGeneration(theirs.generation() + 10, theirs.label(), theirs.wrapped()));
    assertEquals(ErrorCode.CRYPTO_FAILURE, e.code(), e.getMessage());
    assertEquals(generations, first.backupKeys().generations().size(), "nothing installed");
    byte[] altered = first.backupKeys().prepareRotation().wrapped();
    altered[altered.length / 2] ^= 1;
    HsmException flipped = assertThrows(HsmException.class,
        () -> first.backupKeys().installGeneration(BackupKeys.MAX_GENERATION, "x", altered));
    assertEquals(ErrorCode.CRYPTO_FAILURE, flipped.code(), flipped.getMessage());
  }

  @Test
  void aUserHoldingTheCarrierCannotTurnARotationIntoAKeyOfItsOwn() {
    NextGeneration next = first.backupKeys().prepareRotation();
    List<AttributeVector> attempts = List.of(
        secret().sensitive(false).extractable(true).encrypt(true),
        secret().sensitive(true).extractable(true).wrapWithTrusted(false).wrap(true).unwrap(true),
        // exactly a PBK's attributes, as a User: CKA_TRUSTED is the SO's alone
        secret().private_(false).trusted(true).sensitive(true).extractable(true).wrapWithTrusted(true)
            .encrypt(false).decrypt(false).sign(false).verify(false).derive(false).wrap(true).unwrap(true));
    for (AttributeVector template : attempts) {
      HsmException e = assertThrows(HsmException.class, () -> first.pool().call("attack", s -> s.unwrapKey(
          Mechanisms.aesKeyWrapPad(), ClusterKeys.find(s, CKO_SECRET_KEY, BackupKeys.CARRIER_ID), next.wrapped(), template)),
          template.toString());
      assertNotNull(e.ckr(), "refused by the token itself: " + e.getMessage());
    }
  }

  @Test
  void theEscrowTakesTheNewestGenerationAndARecoveredHsmOpensItsBackups() {
    try (HsmToken recovery = HsmToken.open(SoftHsmFixture.newToken("rot-recovery"));
        HsmToken fresh = HsmToken.open(SoftHsmFixture.newToken("rot-fresh"))) {
      NextGeneration next = first.backupKeys().prepareRotation();
      first.backupKeys().installGeneration(next.generation(), next.label(), next.wrapped());
      byte[] backup = ebk(first);
      RecoveryKeys.Escrowed escrowed = first.recoveryKeys().escrow(recovery.recoveryKeys().createRecoveryKey());
      assertEquals(next.generation(), escrowed.generation());
      byte[] handed = recovery.recoveryKeys().transfer(escrowed.wrapped(), fresh.clusterKeys().createTransportKey());
      fresh.recoveryKeys().installBackupKey(escrowed.generation(), handed);
      assertEquals(List.of(next.generation()), fresh.backupKeys().generations());
      opens(fresh, backup);
      assertFalse(fresh.backupKeys().hasCarrier());
      fresh.backupKeys().createCarrierIfMissing(); // the restored cluster's own, for its later rotations
      fresh.backupKeys().createCarrierIfMissing();
      assertTrue(fresh.backupKeys().hasCarrier());
      assertEquals(next.generation() + 1, fresh.backupKeys().prepareRotation().generation());
    }
  }

  private static byte[] ebk(HsmToken hsm) {
    try {
      return hsm.backupKeys().begin();
    } finally {
      hsm.backupKeys().end();
    }
  }

  private static void opens(HsmToken hsm, byte[] wrappedEbk) {
    try {
      hsm.backupKeys().open(wrappedEbk);
    } finally {
      hsm.backupKeys().end();
    }
  }

  private static int last(List<Integer> generations) {
    return generations.get(generations.size() - 1);
  }

  private static List<Integer> tail(List<Integer> generations) {
    return List.of(last(generations));
  }

  private static AttributeVector secret() {
    return new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_AES).token(false).private_(true);
  }
}
