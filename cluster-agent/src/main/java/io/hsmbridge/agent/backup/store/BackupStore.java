package io.hsmbridge.agent.backup.store;

import io.hsmbridge.pkcs11.HsmException;
import java.util.List;
import java.util.Optional;

/**
 * A place that holds backup files and, beside each, its {@link BackupRecord}: UNTRUSTED storage. Files
 * may be read, altered, deleted or replaced by whoever can reach the storage. The HSM authenticates a
 * backup file's content when it restores it; a store never decides anything from what it reads, it only
 * hands bytes back unchanged (an altered file included) and must not crash on garbage: a malformed
 * record is a typed {@link HsmException}, or an {@link Entry#unreadable} in {@link #list()}.
 *
 * <p>Writes are atomic (a reader sees a whole file or none), and a backup file is written once: never
 * overwritten. Every failure is an {@link HsmException}. Implementations are thread-safe. One
 * {@link BackupCatalog} per store at a time makes the lifecycle decisions; the store has none.
 */
public interface BackupStore {
  /** The store's name as recorded in copies ({@code sourceStore}) and shown to operators. */
  String name();

  /**
   * Writes the backup file of {@code id}, atomically and durably. Refused (INVALID_PARAMETER) when the id
   * already has a file: a backup file is never replaced.
   */
  void put(BackupId id, byte[] bytes);

  /** The backup file's bytes exactly as stored (UNKNOWN_KEY when it has none). */
  byte[] get(BackupId id);

  /** Whether {@code id} has a backup file. */
  boolean hasFile(BackupId id);

  /** Removes the backup file of {@code id}, if any; its record stays. */
  void deleteFile(BackupId id);

  /** Removes the backup file and the record of {@code id}, whichever exist. */
  void delete(BackupId id);

  /** The record of {@code id}: empty when it has none, a typed error (INTERNAL) when it is unreadable. */
  Optional<BackupRecord> readRecord(BackupId id);

  /** Writes a record for a new backup, atomically; refused (INVALID_PARAMETER) when the id has one already. */
  void createRecord(BackupRecord record);

  /** Replaces the record of a backup, atomically. */
  void replaceRecord(BackupRecord record);

  /**
   * Every backup the store holds a file or a record for, in no particular order. Names that are not
   * backup ids (temporary files, anything else) are not listed. Never fails on a bad record: it is
   * listed as {@link Entry#unreadable}.
   */
  List<Entry> list();

  /** The retention period stored with the catalog, empty when never set; a typed error when unreadable. */
  Optional<Integer> readRetentionDays();

  /** Stores the retention period (the catalog checks its range). */
  void writeRetentionDays(int days);

  /**
   * One backup as {@link #list()} found it.
   *
   * @param id the backup
   * @param record its record, null when unreadable or missing
   * @param problem why the record could not be read, null when it could
   * @param hasFile whether its backup file is there
   */
  record Entry(BackupId id, BackupRecord record, String problem, boolean hasFile) {
    public static Entry readable(BackupRecord record, boolean hasFile) {
      return new Entry(record.backupId(), record, null, hasFile);
    }

    public static Entry unreadable(BackupId id, String problem, boolean hasFile) {
      return new Entry(id, null, problem, hasFile);
    }

    public boolean isReadable() {
      return record != null;
    }
  }
}
