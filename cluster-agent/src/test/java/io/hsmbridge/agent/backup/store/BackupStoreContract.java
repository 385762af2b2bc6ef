package io.hsmbridge.agent.backup.store;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * What every {@link BackupStore} must do (OpenBao's shared backend suite, sdk/physical/testing.go): a
 * store implementation's test extends this and says how to make an empty store.
 */
abstract class BackupStoreContract {
  static final Instant T = Instant.parse("2027-01-01T00:00:00Z");

  /** A new, empty store. */
  abstract BackupStore newStore();

  static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void putThenGetGivesTheSameBytes() {
    BackupStore store = newStore();
    BackupId id = BackupId.random();
    byte[] content = new byte[100_000];
    new java.util.Random(1).nextBytes(content);
    assertFalse(store.hasFile(id));
    store.put(id, content);
    assertTrue(store.hasFile(id));
    assertArrayEquals(content, store.get(id));
  }

  @Test
  void getOfAnAbsentBackupIsUnknown() {
    BackupStore store = newStore();
    HsmException e = assertThrows(HsmException.class, () -> store.get(BackupId.of("backup-abcdefghijk")));
    assertEquals(ErrorCode.UNKNOWN_KEY, e.code());
    assertTrue(e.getMessage().contains("backup-abcdefghijk"), e.getMessage());
  }

  @Test
  void aFileIsNeverPutTwiceUnderOneId() {
    BackupStore store = newStore();
    BackupId id = BackupId.random();
    store.put(id, bytes("first"));
    HsmException e = assertThrows(HsmException.class, () -> store.put(id, bytes("second")));
    assertEquals(ErrorCode.INVALID_PARAMETER, e.code());
    assertArrayEquals(bytes("first"), store.get(id), "the first file is untouched");
  }

  @Test
  void recordsAreCreatedOnceAndReplacedAtomically() {
    BackupStore store = newStore();
    BackupRecord r = BackupRecord.creating(BackupId.random(), "prod", "hsm1", 3, T);
    assertEquals(Optional.empty(), store.readRecord(r.backupId()));
    store.createRecord(r);
    assertEquals(Optional.of(r), store.readRecord(r.backupId()));
    assertEquals(ErrorCode.INVALID_PARAMETER, assertThrows(HsmException.class, () -> store.createRecord(r)).code());
    BackupRecord failed = r.withState(BackupState.FAILED, T.plusSeconds(1));
    store.replaceRecord(failed);
    assertEquals(Optional.of(failed), store.readRecord(r.backupId()));
  }

  @Test
  void listShowsFilesAndRecordsAndDeleteRemovesThem() {
    BackupStore store = newStore();
    BackupRecord withFile = BackupRecord.creating(BackupId.random(), "prod", "hsm1", 1, T);
    BackupRecord recordOnly = BackupRecord.creating(BackupId.random(), "prod", "hsm1", 2, T);
    store.createRecord(withFile);
    store.put(withFile.backupId(), bytes("x"));
    store.createRecord(recordOnly);
    List<BackupStore.Entry> entries = store.list();
    assertEquals(2, entries.size());
    for (BackupStore.Entry e : entries) {
      assertTrue(e.isReadable());
      assertEquals(e.id().equals(withFile.backupId()), e.hasFile());
    }
    store.deleteFile(withFile.backupId());
    assertFalse(store.hasFile(withFile.backupId()));
    assertTrue(store.readRecord(withFile.backupId()).isPresent(), "deleteFile keeps the record");
    store.delete(recordOnly.backupId());
    store.delete(withFile.backupId());
    assertEquals(List.of(), store.list());
    store.delete(withFile.backupId()); // nothing there: no error
  }

  @Test
  void aFileWithoutItsRecordIsListedAsUnreadable() {
    BackupStore store = newStore();
    BackupId id = BackupId.random();
    store.put(id, bytes("orphan"));
    BackupStore.Entry e = store.list().get(0);
    assertFalse(e.isReadable());
    assertTrue(e.hasFile());
    assertTrue(e.problem().contains("no record"), e.problem());
  }

  @Test
  void retentionIsStoredAndReadBack() {
    BackupStore store = newStore();
    assertEquals(Optional.empty(), store.readRetentionDays());
    store.writeRetentionDays(30);
    assertEquals(Optional.of(30), store.readRetentionDays());
    store.writeRetentionDays(200);
    assertEquals(Optional.of(200), store.readRetentionDays());
    assertEquals(List.of(), store.list(), "the setting is not a backup");
  }
}
