package io.hsmbridge.agent.backup.store;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The directory store on a real temporary directory: the contract, plus what an attacker with write
 * access to the directory can put there (garbage, truncated or wrong-typed records, links, stray files).
 */
class DirectoryBackupStoreTest extends BackupStoreContract {
  @TempDir
  Path tmp;
  private int stores;

  @Override
  BackupStore newStore() {
    return DirectoryBackupStore.open("local", tmp.resolve("store" + stores++));
  }

  private DirectoryBackupStore store() {
    return (DirectoryBackupStore) newStore();
  }

  private static BackupRecord readyRecord(BackupId id) {
    return BackupRecord.creating(id, "prod", "hsm1", 5, T).withSize(4).withState(BackupState.READY, T);
  }

  @Test
  void theDirectoryIs0700AndItsFiles0600() throws IOException {
    DirectoryBackupStore store = store();
    BackupId id = BackupId.random();
    store.put(id, bytes("data"));
    store.createRecord(readyRecord(id));
    store.writeRetentionDays(30);
    assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(store.directory())));
    for (Path p : List.of(store.fileOf(id), store.recordOf(id), store.directory().resolve("retention.json"))) {
      assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(p)), p.toString());
    }
  }

  @Test
  void aBackupDirThatIsAFileIsAConfigError() throws IOException {
    Path file = Files.writeString(tmp.resolve("not-a-dir"), "x");
    HsmException e = assertThrows(HsmException.class, () -> DirectoryBackupStore.open("local", file));
    assertEquals(ErrorCode.CONFIG_INVALID, e.code());
    assertTrue(e.getMessage().contains("backup.dir"), e.getMessage());
    assertThrows(HsmException.class, () -> DirectoryBackupStore.open("bad/name", tmp.resolve("d")));
  }

  @Test
  void putLeavesNoTemporaryFileAndListIgnoresStrayOnes() throws IOException {
    DirectoryBackupStore store = store();
    for (int i = 0; i < 20; i++) {
      BackupId id = BackupId.random();
      store.put(id, bytes("backup " + i));
      store.createRecord(readyRecord(id));
    }
    try (Stream<Path> files = Files.list(store.directory())) {
      assertEquals(40, files.count(), "only <id>.hbk and <id>.json remain");
    }
    // What a crash mid-write leaves, and other names that are not backups.
    Files.writeString(store.directory().resolve(".tmp-123.part"), "half a fi");
    Files.writeString(store.directory().resolve("backup-abcdefghijk.hbk.tmp"), "x");
    Files.writeString(store.directory().resolve("notes.json"), "{}");
    Files.createDirectory(store.directory().resolve("backup-zzzzzzzzzzz"));
    List<BackupStore.Entry> entries = store.list();
    assertEquals(20, entries.size());
    assertTrue(entries.stream().allMatch(BackupStore.Entry::isReadable));
  }

  @Test
  void garbageTruncatedAndWrongTypedRecordsAreReportedNotThrown() throws IOException {
    DirectoryBackupStore store = store();
    BackupId good = BackupId.random();
    store.createRecord(readyRecord(good));
    store.put(good, bytes("good"));
    String full = new String(readyRecord(BackupId.random()).toBytes(), StandardCharsets.UTF_8);
    byte[][] bad = {
        {(byte) 0xff, 0x00, 0x13, 0x37},
        full.substring(0, full.length() / 2).getBytes(StandardCharsets.UTF_8),
        full.replace("\"appliedIndex\":5", "\"appliedIndex\":\"five\"").getBytes(StandardCharsets.UTF_8),
        new byte[0],
        new byte[DirectoryBackupStore.MAX_RECORD_BYTES + 1],
    };
    for (byte[] content : bad) {
      BackupId id = BackupId.random();
      Files.write(store.recordOf(id), content);
      HsmException e = assertThrows(HsmException.class, () -> store.readRecord(id));
      assertEquals(ErrorCode.INTERNAL, e.code());
      assertTrue(e.getMessage().contains(id.value()), e.getMessage());
    }
    List<BackupStore.Entry> entries = store.list();
    assertEquals(1 + bad.length, entries.size());
    assertEquals(1, entries.stream().filter(BackupStore.Entry::isReadable).count());
    entries.stream().filter(e -> !e.isReadable()).forEach(e -> assertNotNull(e.problem()));
  }

  @Test
  void aRecordCopiedFromAnotherBackupIsUnreadableUnderThisName() throws IOException {
    DirectoryBackupStore store = store();
    BackupId a = BackupId.random();
    BackupId b = BackupId.random();
    store.createRecord(readyRecord(a));
    Files.copy(store.recordOf(a), store.recordOf(b));
    HsmException e = assertThrows(HsmException.class, () -> store.readRecord(b));
    assertTrue(e.getMessage().contains("names backup " + a), e.getMessage());
  }

  /** The store is not the authority on content: the HSM that restores a file authenticates it. */
  @Test
  void aTamperedFileIsReturnedExactlyAsStored() throws IOException {
    DirectoryBackupStore store = store();
    BackupId id = BackupId.random();
    store.put(id, bytes("original backup"));
    byte[] tampered = bytes("TAMPERED backup, longer than before");
    Files.write(store.fileOf(id), tampered);
    assertArrayEquals(tampered, store.get(id));
    Files.write(store.fileOf(id), new byte[0]);
    assertArrayEquals(new byte[0], store.get(id), "a truncated file too: the HSM refuses it, not the store");
  }

  @Test
  void symbolicLinksAreNeverFollowed() throws IOException {
    DirectoryBackupStore store = store();
    Path secret = Files.writeString(tmp.resolve("agent-tls-key.pem"), "PRIVATE KEY");
    BackupId id = BackupId.random();
    store.createRecord(readyRecord(id));
    Files.createSymbolicLink(store.fileOf(id), secret);
    assertFalse(store.hasFile(id));
    HsmException e = assertThrows(HsmException.class, () -> store.get(id));
    assertFalse(e.getMessage().contains("PRIVATE KEY"));
    BackupId linked = BackupId.random();
    Files.createSymbolicLink(store.recordOf(linked), store.recordOf(id));
    assertThrows(HsmException.class, () -> store.readRecord(linked));
    // Replacing a record whose name is a link replaces the link, never the file it points at.
    store.replaceRecord(readyRecord(linked).withNeverExpires(true));
    assertEquals(readyRecord(id), store.readRecord(id).orElseThrow());
    assertFalse(Files.isSymbolicLink(store.recordOf(linked)));
  }

  @Test
  void aFileLargerThanTheLimitIsATypedError() throws IOException {
    DirectoryBackupStore store = DirectoryBackupStore.open("small", tmp.resolve("small"), 16);
    BackupId id = BackupId.random();
    store.put(id, new byte[17]);
    HsmException e = assertThrows(HsmException.class, () -> store.get(id));
    assertEquals(ErrorCode.INTERNAL, e.code());
    assertTrue(e.getMessage().contains("limit"), e.getMessage());
  }

  @Test
  void aGarbageRetentionFileIsATypedError() throws IOException {
    DirectoryBackupStore store = store();
    for (String text : List.of("ninety", "{\"v\":1,\"retentionDays\":\"90\"}", "{\"retentionDays\":90}", "[]")) {
      Files.writeString(store.directory().resolve(DirectoryBackupStore.RETENTION_FILE), text);
      HsmException e = assertThrows(HsmException.class, store::readRetentionDays, text);
      assertEquals(ErrorCode.INTERNAL, e.code());
    }
  }
}
