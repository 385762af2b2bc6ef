package io.hsmbridge.pkcs11;

import static org.junit.jupiter.api.Assertions.*;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.xipki.pkcs11.wrapper.AttributeVector;

/**
 * What a token User (the agent's PIN, in a thief's hands) might try with a backup file and the token's
 * PBK: unwrap the backup's EBK as a key of its own making (no unwrap template, or with DECRYPT to undo
 * the key wraps with raw AES), or wrap a key out with the PBK. Each must fail inside the token.
 */
class BackupKeysAttackTest {
  private static HsmToken hsm;
  private static byte[] wrappedEbk;
  private static String keyId;

  @BeforeAll
  static void tokenWithABackupInProgress() {
    hsm = HsmToken.open(SoftHsmFixture.newToken("backup-attack"));
    hsm.clusterKeys().createClusterKey();
    hsm.backupKeys().createBackupKey();
    keyId = hsm.clusterKeys().installReplica(hsm.clusterKeys().generateForReplication(KeySpec.AES_256,
        KeyUsage.ENCRYPT_DECRYPT, "guarded", "0000000000000000000000000000aa01")).keyId();
    wrappedEbk = hsm.backupKeys().begin();
    hsm.backupKeys().end();
  }

  @AfterAll
  static void close() {
    if (hsm != null) {
      hsm.close();
    }
  }

  @Test
  void aUserCannotUnwrapTheEbkUnderThePbkInAnyShape() {
    List<AttributeVector> attempts = List.of(
        // readable
        secret().sensitive(false).extractable(true).unwrap(true),
        // an unwrapping key without unwrap template: would unwrap every key as readable
        secret().sensitive(true).extractable(false).unwrap(true),
        // raw AES decrypt: would undo the key wraps block by block
        secret().sensitive(true).extractable(false).decrypt(true).unwrap(false),
        // exactly what the SO asks for, but as a User (CKA_TRUSTED is the SO's alone)
        secret().private_(false).trusted(true).sensitive(true).extractable(false).encrypt(false).decrypt(false)
            .sign(false).verify(false).unwrap(true));
    for (AttributeVector template : attempts) {
      HsmException e = assertThrows(HsmException.class, () -> hsm.pool().call("attack", s -> s.unwrapKey(
          Mechanisms.aesKeyWrapPad(), ClusterKeys.find(s, CKO_SECRET_KEY, BackupKeys.PBK_ID), wrappedEbk, template)),
          template.toString());
      assertNotNull(e.ckr(), "refused by the token itself: " + e.getMessage());
    }
  }

  @Test
  void aKeyWrappedUnderThePbkComesBackReadableToNoUser() {
    // The PBK is trusted, so a User can wrap a key under it; only the SO can unwrap under it again.
    byte[] blob = hsm.pool().call("wrap", s -> s.wrapKey(Mechanisms.aesKeyWrapPad(),
        ClusterKeys.find(s, CKO_SECRET_KEY, BackupKeys.PBK_ID), hsm.keys().entry(keyId).handle()));
    HsmException e = assertThrows(HsmException.class, () -> hsm.pool().call("attack", s -> s.unwrapKey(
        Mechanisms.aesKeyWrapPad(), ClusterKeys.find(s, CKO_SECRET_KEY, BackupKeys.PBK_ID), blob,
        secret().sensitive(false).extractable(true).encrypt(true).decrypt(true))));
    assertNotNull(e.ckr(), e.getMessage());
    byte[] value;
    try {
      value = hsm.pool().call("attack", s -> s.getAttrValues(ClusterKeys.find(s, CKO_SECRET_KEY, BackupKeys.PBK_ID), CKA_VALUE).value());
    } catch (HsmException refused) {
      value = null;
    }
    assertNull(value, "the PBK's value is never readable");
  }

  private static AttributeVector secret() {
    return new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_AES).token(false).private_(true);
  }
}
