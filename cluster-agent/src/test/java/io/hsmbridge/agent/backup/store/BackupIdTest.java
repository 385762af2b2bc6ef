package io.hsmbridge.agent.backup.store;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Ids are file names: only the strict pattern passes, so none can leave the store's directory. */
class BackupIdTest {

  @ParameterizedTest
  @ValueSource(strings = {"backup-abcdefghijk", "backup-234567abcdefghij", "backup-aaaaaaaaaaaaaaaa"})
  void wellFormedIdsAreAccepted(String id) {
    assertEquals(id, BackupId.of(id).value());
    assertEquals(id, BackupId.of(id).toString());
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "../x", "/etc/passwd", "a/b", "..", ".", "backup-", "backup-abcdefghij",
      "backup-abcdefghijklmnopq", "backup-../../etc/pw", "backup-abcdefghijk/..", "backup-abcdefghijk\\x",
      "BACKUP-ABCDEFGHIJK", "backup-ABCDEFGHIJK", "backup-abcdefgh1jk", "backup-abcdefghijk.hbk",
      "backup-abcdefghijk\n", "backup-abcdefghijk\u0000", " backup-abcdefghijk", "backup-abcdefghijk ",
      "backup-abcdéfghijk", "retention", "backup_abcdefghijk"})
  void everythingElseIsRefusedWithInvalidParameter(String id) {
    HsmException e = assertThrows(HsmException.class, () -> BackupId.of(id));
    assertEquals(ErrorCode.INVALID_PARAMETER, e.code());
    assertFalse(BackupId.isValid(id));
    assertFalse(e.getMessage().chars().anyMatch(Character::isISOControl), "the echo carries no control characters");
  }

  @Test
  void nullAndVeryLongIdsAreRefused() {
    assertEquals(ErrorCode.INVALID_PARAMETER, assertThrows(HsmException.class, () -> BackupId.of(null)).code());
    String longId = "backup-" + "a".repeat(100_000);
    HsmException e = assertThrows(HsmException.class, () -> BackupId.of(longId));
    assertTrue(e.getMessage().length() < 200, "a refused id is echoed cut short");
  }

  @Test
  void randomIdsAreValidAndDistinct() {
    Set<BackupId> seen = new HashSet<>();
    for (int i = 0; i < 1000; i++) {
      BackupId id = BackupId.random();
      assertTrue(BackupId.isValid(id.value()), id.value());
      assertTrue(seen.add(id));
    }
  }
}
