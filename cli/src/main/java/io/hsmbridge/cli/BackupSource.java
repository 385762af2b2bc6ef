package io.hsmbridge.cli;

import io.hsmbridge.agent.backup.store.BackupId;
import io.hsmbridge.agent.backup.store.BackupRecord;
import io.hsmbridge.agent.backup.store.BackupState;
import io.hsmbridge.agent.backup.store.DirectoryBackupStore;
import io.hsmbridge.pkcs11.HsmException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What {@code up --from-backup} and {@code backup restore} take: a backup file, or a backup's id in a store
 * directory ({@code --store}: an old cluster's {@code backup.dir} or a {@code copy-to-region} store). A store
 * is untrusted: its record only decides which file to try and whether it is meant to be restorable (READY);
 * the HSM authenticates the file itself before anything of it is written.
 */
final class BackupSource {
  private BackupSource() {}

  /** The backup file {@code fileOrId} names. */
  static Path resolve(String fileOrId, Path store) {
    Path asFile = Path.of(fileOrId);
    if (Files.isRegularFile(asFile)) {
      return asFile;
    }
    if (!BackupId.isValid(fileOrId)) {
      throw new CliException("no backup file at " + fileOrId + ", and it is no backup id (backup-...)");
    }
    if (store == null) {
      throw new CliException("a backup id is looked up in a store: give --store DIR (the old cluster's backup.dir,"
          + " e.g. HOME/backups, or a copy-to-region store)");
    }
    if (!Files.isDirectory(store)) {
      throw new CliException("no backup store at " + store);
    }
    BackupId id = BackupId.of(fileOrId);
    BackupRecord record;
    try {
      record = DirectoryBackupStore.open("restore", store).readRecord(id)
          .orElseThrow(() -> new CliException("store " + store + " holds no backup " + id.value()));
    } catch (HsmException e) {
      throw new CliException("the record of " + id.value() + " in " + store + " is unreadable: " + e.getMessage());
    }
    if (record.state() != BackupState.READY) {
      throw new CliException("backup " + id.value() + " is " + record.state() + ", not READY"
          + (record.state() == BackupState.PENDING_DELETION ? " (bring it back with: backup restore-deleted " + id.value() + ")" : ""));
    }
    Path file = store.resolve(id.value() + DirectoryBackupStore.FILE_SUFFIX);
    if (!Files.isRegularFile(file)) {
      throw new CliException("backup " + id.value() + " has a record in " + store + " but no file");
    }
    return file;
  }
}
