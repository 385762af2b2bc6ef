package io.hsmbridge.agent.backup;

import io.hsmbridge.agent.backup.store.BackupCatalog;
import io.hsmbridge.agent.backup.store.BackupRecord;
import io.hsmbridge.agent.backup.store.BackupStore;
import io.hsmbridge.pkcs11.HsmToken;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Logger;

/**
 * Makes this HSM's share of the scheduled and lifecycle backups ({@link BackupSchedule}) and applies the
 * catalog's retention: {@link #tick} is called periodically (AgentNode: every {@link #CHECK_EVERY}, on a
 * worker thread, only while this HSM serves). Never throws: a failed backup is FAILED in the catalog and
 * logged, and the next tick tries again.
 */
public final class BackupScheduler {
  private static final Logger LOG = Logger.getLogger(BackupScheduler.class.getName());
  public static final Duration CHECK_EVERY = Duration.ofSeconds(30);
  /** Retention and the FAILED / DELETED purges run at most this often. */
  static final Duration SWEEP_EVERY = Duration.ofHours(1);

  private final BackupOperations backups;
  private final HsmToken hsm;
  private final String cluster;
  private final Duration interval;
  private final int rank;
  private final Clock clock;
  private final AtomicLong membershipChangedAt = new AtomicLong();
  private Instant firstSeenDue;
  private Instant lastSweep = Instant.EPOCH;

  /** @param rank this HSM's place among the cluster's members in id order (0 = first) */
  public BackupScheduler(BackupOperations backups, HsmToken hsm, String cluster, Duration interval, int rank, Clock clock) {
    this.backups = backups;
    this.hsm = hsm;
    this.cluster = cluster;
    this.interval = interval;
    this.rank = rank;
    this.clock = clock;
  }

  /** Called with each membership change the log applies (an HSM added or removed). */
  public void membershipChanged(long index) {
    membershipChangedAt.accumulateAndGet(index, Math::max);
  }

  /** One look at the catalog: make a backup when it is due and it is this HSM's turn; sweep at most hourly. */
  public synchronized void tick() {
    BackupCatalog catalog = backups.catalog();
    if (catalog == null) {
      return;
    }
    try {
      Instant now = clock.instant();
      List<BackupRecord> records = catalog.list().stream().filter(BackupStore.Entry::isReadable)
          .map(BackupStore.Entry::record).toList();
      String why = BackupSchedule.due(BackupSchedule.newest(records, cluster), !hsm.users().list().isEmpty(),
          membershipChangedAt.get(), now, interval);
      if (why == null) {
        firstSeenDue = null;
      } else {
        if (firstSeenDue == null) {
          firstSeenDue = now;
        }
        if (BackupSchedule.myTurn(rank, firstSeenDue, now)) {
          LOG.info("a backup is due (" + why + "): this HSM makes it");
          backups.create();
          firstSeenDue = null;
        }
      }
      if (!lastSweep.plus(SWEEP_EVERY).isAfter(now)) {
        lastSweep = now;
        BackupCatalog.SweepReport report = catalog.sweep();
        if (!report.changedNothing()) {
          LOG.info("backup retention: " + report);
        }
      }
    } catch (RuntimeException e) {
      LOG.warning("scheduled backup work failed: " + e.getMessage());
    }
  }
}
