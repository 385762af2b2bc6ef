package io.hsmbridge.agent.backup;

import io.hsmbridge.agent.backup.store.BackupCatalog;
import io.hsmbridge.agent.backup.store.BackupRecord;
import io.hsmbridge.agent.replication.Snapshots;
import io.hsmbridge.agent.replication.TokenApplier;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.protocol.ErrorCode;
import java.util.List;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * The mutation log's snapshots are this cluster's READY backups in {@code backup.dir} (issue #12 item 4;
 * docs/replication.md "Compaction"): Raft may purge entries up to a backup this HSM's token includes,
 * and an HSM behind the purged part restores the newest backup over its token
 * ({@link BackupRestorer#restoreOver}) and applies the entries after it. Every HSM must reach the same
 * store (a shared directory), or one that lags cannot catch up.
 */
public final class BackupSnapshots implements Snapshots {
  private static final Logger LOG = Logger.getLogger(BackupSnapshots.class.getName());
  /** How long the list of backups is reused: Raft may ask after every applied entry. */
  private static final long REFRESH_NANOS = 10_000_000_000L;

  private final String hsmId;
  private final String cluster;
  private final HsmToken hsm;
  private final TokenApplier applier;
  private final BackupCatalog catalog;
  private final Consumer<Boolean> restoring;
  private volatile List<BackupRecord> ready = List.of();
  private volatile long listedAt = System.nanoTime() - REFRESH_NANOS;

  /**
   * @param restoring told true before a restore writes to the token and false after (the HSM does not
   *     serve meanwhile)
   */
  public BackupSnapshots(String hsmId, String cluster, HsmToken hsm, TokenApplier applier, BackupCatalog catalog,
      Consumer<Boolean> restoring) {
    this.hsmId = hsmId;
    this.cluster = cluster;
    this.hsm = hsm;
    this.applier = applier;
    this.catalog = catalog;
    this.restoring = restoring;
  }

  @Override
  public long newestAtOrBefore(long index) {
    if (System.nanoTime() - listedAt >= REFRESH_NANOS) {
      try {
        ready = catalog.ready(cluster);
      } catch (RuntimeException e) {
        LOG.warning(hsmId + " cannot list the backups for log compaction: " + e.getMessage());
      }
      listedAt = System.nanoTime();
    }
    for (BackupRecord r : ready) {
      if (r.appliedIndex() <= index) {
        return r.appliedIndex();
      }
    }
    return -1;
  }

  @Override
  public Point restoreAtLeast(long minIndex) {
    for (BackupRecord r : catalog.ready(cluster)) {
      if (r.appliedIndex() < minIndex) {
        break;
      }
      String id = r.backupId().value();
      byte[] bytes;
      BackupFile file;
      try {
        bytes = catalog.backupFile(r.backupId());
        file = BackupFile.parse(bytes);
      } catch (RuntimeException e) {
        LOG.warning(hsmId + " skips backup " + id + " for catching up: " + BackupRestorer.reason(e));
        continue;
      }
      if (file.appliedTerm() < 0 || file.appliedIndex() < minIndex) {
        LOG.warning(hsmId + " skips backup " + id + " for catching up: its file does not say the log entry's term"
            + " or is before index " + minIndex);
        continue;
      }
      if (hsm.appliedIndex().read() >= file.appliedIndex()) {
        // The token already includes it (its log was lost, not its token): nothing to write, only to claim.
        try {
          BackupRestorer.authenticated(hsm, bytes, cluster);
        } catch (HsmException e) {
          LOG.warning(hsmId + " skips backup " + id + " for catching up: " + BackupRestorer.reason(e));
          continue;
        }
        LOG.info(hsmId + " already holds the state of backup " + id + " (index " + file.appliedIndex()
            + "): its log starts after it");
        return new Point(file.appliedTerm(), file.appliedIndex());
      }
      long started = System.nanoTime();
      restoring.accept(true);
      try {
        BackupRestorer.Restored restored = applier.replaceState(() -> BackupRestorer.restoreOver(hsm, bytes, cluster));
        LOG.info(hsmId + " restored backup " + id + " over its token (" + restored.keys() + " keys, " + restored.users()
            + " users) in " + (System.nanoTime() - started) / 1_000_000 + " ms; it applies the log after index "
            + restored.appliedIndex());
        return new Point(restored.appliedTerm(), restored.appliedIndex());
      } catch (HsmException e) {
        if (e.code() != ErrorCode.CRYPTO_FAILURE && e.code() != ErrorCode.INVALID_PARAMETER
            && e.code() != ErrorCode.NOT_ALLOWED_BY_POLICY) {
          throw e; // the token failed part-way: the old index stays, and the restore is repeated
        }
        LOG.warning(hsmId + " could not restore backup " + id + " (" + BackupRestorer.reason(e) + "); trying an older one");
      } finally {
        restoring.accept(false);
      }
    }
    return null;
  }
}
