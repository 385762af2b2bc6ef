package io.hsmbridge.agent.backup.store;

import io.hsmbridge.pkcs11.HsmException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.UnaryOperator;
import java.util.logging.Logger;

/**
 * The lifecycle of the backups in one {@link BackupStore}, CloudHSM's semantics (docs/backup-lifecycle.md):
 * {@link #begin} then {@link #complete} or {@link #fail}; {@link #delete} makes a backup PENDING_DELETION,
 * restorable for {@link #RESTORE_WINDOW} by {@link #restoreDeleted}; {@link #sweep} ends what is due
 * (stale creations FAILED, deletions DELETED, old FAILED and DELETED records purged, retention applied).
 * Every transition the state table ({@link BackupState#next()}) does not allow is a typed error naming
 * the state. Time comes from the injected clock only.
 *
 * <p>Thread-safe: record changes are serialised; a backup file is written outside the lock. One
 * catalog per store at a time (two processes changing one directory could lose a transition).
 */
public final class BackupCatalog {
  public static final int DEFAULT_RETENTION_DAYS = 90;
  public static final int MIN_RETENTION_DAYS = 7;
  public static final int MAX_RETENTION_DAYS = 379;
  /** How long a deleted backup can be restored (CloudHSM: 7 days). */
  public static final Duration RESTORE_WINDOW = Duration.ofDays(7);

  private static final Logger LOG = Logger.getLogger(BackupCatalog.class.getName());

  /**
   * How long records wait in the states that end on a timer.
   *
   * @param staleCreate a CREATE_IN_PROGRESS older than this lost its maker: FAILED
   * @param failedKept a FAILED record (and any file) is purged this long after it failed
   * @param deletedKept a DELETED record is purged this long after its file was removed
   */
  public record Bounds(Duration staleCreate, Duration failedKept, Duration deletedKept) {
    public static final Bounds DEFAULTS = new Bounds(Duration.ofHours(1), Duration.ofDays(7), Duration.ofDays(30));

    public Bounds {
      for (Duration d : new Duration[] {staleCreate, failedKept, deletedKept}) {
        if (d == null || d.isNegative() || d.isZero()) {
          throw BackupFailures.badParam("catalog bounds must be positive durations");
        }
      }
    }
  }

  /**
   * What one {@link #sweep()} did. {@code problems} lists what it could not read or change (an unreadable
   * record, retention not applied): those are left as they are, for an operator.
   */
  public record SweepReport(List<BackupId> failed, List<BackupId> expiredByRetention, List<BackupId> deleted,
      List<BackupId> purged, List<String> problems) {
    public boolean changedNothing() {
      return failed.isEmpty() && expiredByRetention.isEmpty() && deleted.isEmpty() && purged.isEmpty();
    }
  }

  private final BackupStore store;
  private final Clock clock;
  private final Bounds bounds;
  private final Object lock = new Object();

  /** A catalog whose creations go stale after {@code staleCreate}, other bounds the defaults. */
  public BackupCatalog(BackupStore store, Clock clock, Duration staleCreate) {
    this(store, clock, new Bounds(staleCreate, Bounds.DEFAULTS.failedKept(), Bounds.DEFAULTS.deletedKept()));
  }

  public BackupCatalog(BackupStore store, Clock clock, Bounds bounds) {
    this.store = Objects.requireNonNull(store, "store");
    this.clock = Objects.requireNonNull(clock, "clock");
    this.bounds = Objects.requireNonNull(bounds, "bounds");
  }

  /** A catalog at agent start: creations left CREATE_IN_PROGRESS past the bound by a killed maker become FAILED. */
  public static BackupCatalog open(BackupStore store, Clock clock, Bounds bounds) {
    BackupCatalog catalog = new BackupCatalog(store, clock, bounds);
    catalog.failStaleCreations();
    return catalog;
  }

  public BackupStore store() {
    return store;
  }

  /** Begins a new backup of {@code clusterName} made by {@code sourceHsm}: a new id, CREATE_IN_PROGRESS. */
  public BackupRecord begin(String clusterName, String sourceHsm, long appliedIndex) {
    return begin(BackupRecord.creating(BackupId.random(), clusterName, sourceHsm, appliedIndex, clock.instant()));
  }

  /**
   * Records {@code record} (CREATE_IN_PROGRESS, see {@link BackupRecord#creating}) before its file is made,
   * so that a maker that dies leaves a record the catalog can fail. Refused when its id exists.
   */
  public BackupRecord begin(BackupRecord record) {
    if (record.state() != BackupState.CREATE_IN_PROGRESS || record.sizeBytes() != 0) {
      throw BackupFailures.badParam("a backup begins CREATE_IN_PROGRESS with no file, not " + record.state());
    }
    store.createRecord(record);
    return record;
  }

  /**
   * Writes the backup file (atomically) and only then makes the backup READY. Refused unless
   * CREATE_IN_PROGRESS; when the backup was failed meanwhile (a sweep found it stale), the file just
   * written is removed again and the error names FAILED.
   */
  public BackupRecord complete(BackupId id, byte[] bytes) {
    if (bytes == null || bytes.length == 0) {
      throw BackupFailures.badParam("a backup file is never empty");
    }
    synchronized (lock) {
      requireState(describe(id), BackupState.CREATE_IN_PROGRESS, "complete");
    }
    // Outside the lock: a large file does not hold up the other backups.
    store.put(id, bytes);
    synchronized (lock) {
      BackupRecord r = describe(id);
      if (r.state() != BackupState.CREATE_IN_PROGRESS) {
        store.deleteFile(id);
        throw BackupFailures.wrongState(id, r.state(), "complete");
      }
      BackupRecord ready = r.withSize(bytes.length).withState(BackupState.READY, clock.instant());
      store.replaceRecord(ready);
      return ready;
    }
  }

  /** Its maker failed: FAILED, any file it left removed. Only from CREATE_IN_PROGRESS. */
  public BackupRecord fail(BackupId id) {
    BackupRecord failed = change(id, r -> moved(r, BackupState.CREATE_IN_PROGRESS, BackupState.FAILED, "fail"));
    store.deleteFile(id);
    return failed;
  }

  /** READY to PENDING_DELETION: restorable for {@link #RESTORE_WINDOW}. */
  public BackupRecord delete(BackupId id) {
    return change(id, r -> moved(r, BackupState.READY, BackupState.PENDING_DELETION, "delete"));
  }

  /**
   * PENDING_DELETION back to READY, within {@link #RESTORE_WINDOW} of the deletion. A backup older than
   * the retention period also becomes neverExpires: otherwise the next sweep would delete it again (an
   * operator clears the flag to hand it back to retention).
   */
  public BackupRecord restoreDeleted(BackupId id) {
    Integer retention = retentionOrNull();
    return change(id, r -> {
      Instant now = clock.instant();
      BackupRecord ready = moved(r, BackupState.PENDING_DELETION, BackupState.READY, "restore");
      if (now.isAfter(r.stateChangedAt().plus(RESTORE_WINDOW))) {
        throw BackupFailures.badParam("cannot restore backup " + id + ": it was deleted at " + r.stateChangedAt()
            + ", more than " + RESTORE_WINDOW.toDays() + " days ago");
      }
      boolean pastRetention = retention == null || now.isAfter(r.createdAt().plus(Duration.ofDays(retention)));
      return pastRetention ? ready.withNeverExpires(true) : ready;
    });
  }

  /** Exempts a backup from retention, or hands it back. Not for FAILED or DELETED backups. */
  public BackupRecord setNeverExpires(BackupId id, boolean neverExpires) {
    return change(id, r -> {
      if (r.state() == BackupState.FAILED || r.state() == BackupState.DELETED) {
        throw BackupFailures.wrongState(id, r.state(), "change neverExpires of");
      }
      return r.withNeverExpires(neverExpires);
    });
  }

  /** The record of {@code id}: UNKNOWN_KEY when the store has none, INTERNAL when it is unreadable. */
  public BackupRecord describe(BackupId id) {
    return store.readRecord(id).orElseThrow(() -> BackupFailures.notFound(id, store.name()));
  }

  /** The file of a READY backup, as stored: the HSM that restores it authenticates it, nothing here does. */
  public byte[] backupFile(BackupId id) {
    BackupRecord r = describe(id);
    if (r.state() != BackupState.READY) {
      throw BackupFailures.wrongState(id, r.state(), "read");
    }
    return store.get(id);
  }

  /** Every backup, oldest first; unreadable ones last (by id), with their problem. */
  public List<BackupStore.Entry> list() {
    List<BackupStore.Entry> entries = new ArrayList<>(store.list());
    entries.sort(Comparator.comparing((BackupStore.Entry e) -> !e.isReadable())
        .thenComparing(e -> e.isReadable() ? e.record().createdAt() : Instant.EPOCH)
        .thenComparing(e -> e.id().value()));
    return entries;
  }

  /** The newest READY backup of any cluster. */
  public Optional<BackupRecord> newestReady() {
    return readyRecords().stream().max(NEWEST_LAST);
  }

  /** The newest READY backup of {@code clusterName}: the one retention never removes. */
  public Optional<BackupRecord> newestReady(String clusterName) {
    return readyRecords().stream().filter(r -> r.clusterName().equals(clusterName)).max(NEWEST_LAST);
  }

  /** Every READY backup of {@code clusterName}, highest applied index first (what log compaction uses). */
  public List<BackupRecord> ready(String clusterName) {
    return readyRecords().stream().filter(r -> r.clusterName().equals(clusterName))
        .sorted(Comparator.comparingLong(BackupRecord::appliedIndex).reversed()).toList();
  }

  private static final Comparator<BackupRecord> NEWEST_LAST =
      Comparator.comparing(BackupRecord::createdAt).thenComparing(r -> r.backupId().value());

  private List<BackupRecord> readyRecords() {
    return store.list().stream().filter(BackupStore.Entry::isReadable).map(BackupStore.Entry::record)
        .filter(r -> r.state() == BackupState.READY).toList();
  }

  /** The retention period in days (default {@value #DEFAULT_RETENTION_DAYS}); a typed error when the stored one is unreadable or out of range. */
  public int retentionDays() {
    int days = store.readRetentionDays().orElse(DEFAULT_RETENTION_DAYS);
    if (days < MIN_RETENTION_DAYS || days > MAX_RETENTION_DAYS) {
      throw BackupFailures.unreadable("the retention setting of store " + store.name(),
          days + " days is outside " + MIN_RETENTION_DAYS + ".." + MAX_RETENTION_DAYS);
    }
    return days;
  }

  private Integer retentionOrNull() {
    try {
      return retentionDays();
    } catch (HsmException e) {
      return null;
    }
  }

  /** Sets the retention period: {@value #MIN_RETENTION_DAYS}..{@value #MAX_RETENTION_DAYS} days, else INVALID_PARAMETER. */
  public void setRetention(int days) {
    if (days < MIN_RETENTION_DAYS || days > MAX_RETENTION_DAYS) {
      throw BackupFailures.badParam("backup retention is " + MIN_RETENTION_DAYS + ".." + MAX_RETENTION_DAYS
          + " days, not " + days);
    }
    synchronized (lock) {
      store.writeRetentionDays(days);
    }
  }

  /**
   * Copies the READY backup {@code id} into {@code target}'s store as a new backup (new id, READY,
   * created now there) that records where it came from: {@code backup copy-to-region --to STORE}. The
   * bytes are copied as stored; the HSM that restores the copy authenticates them.
   */
  public BackupRecord copyTo(BackupId id, BackupCatalog target) {
    if (target == this) {
      throw BackupFailures.badParam("a backup is copied to another store");
    }
    BackupRecord source = describe(id);
    if (source.state() != BackupState.READY) {
      throw BackupFailures.wrongState(id, source.state(), "copy");
    }
    byte[] bytes = store.get(id);
    BackupRecord copy = target.begin(source.copiedAs(BackupId.random(), store.name(), target.clock.instant()));
    try {
      return target.complete(copy.backupId(), bytes);
    } catch (HsmException e) {
      try {
        target.fail(copy.backupId());
      } catch (HsmException again) {
        e.addSuppressed(again);
      }
      throw e;
    }
  }

  /**
   * At the start of {@code sourceHsm}'s agent: the backups it was making when it stopped (killed mid-way)
   * become FAILED at once, their partial files removed; nothing else can be making them. Returns them.
   */
  public List<BackupId> failInterruptedBy(String sourceHsm) {
    List<BackupId> failed = new ArrayList<>();
    List<String> problems = new ArrayList<>();
    synchronized (lock) {
      for (BackupStore.Entry e : store.list()) {
        if (e.isReadable() && e.record().state() == BackupState.CREATE_IN_PROGRESS && sourceHsm.equals(e.record().sourceHsm())) {
          guarded(e.id(), problems, () -> {
            store.replaceRecord(e.record().withState(BackupState.FAILED, clock.instant()));
            store.deleteFile(e.id());
            failed.add(e.id());
          });
        }
      }
    }
    problems.forEach(LOG::warning);
    return failed;
  }

  /** CREATE_IN_PROGRESS records older than the bound become FAILED (their maker was killed); returns them. */
  public List<BackupId> failStaleCreations() {
    List<BackupId> failed = new ArrayList<>();
    List<String> problems = new ArrayList<>();
    synchronized (lock) {
      for (BackupStore.Entry e : store.list()) {
        if (e.isReadable() && e.record().state() == BackupState.CREATE_IN_PROGRESS) {
          guarded(e.id(), problems, () -> failIfStale(e.record(), clock.instant(), failed));
        }
      }
    }
    problems.forEach(LOG::warning);
    return failed;
  }

  /**
   * Ends what is due, in one pass under the lock: stale creations FAILED; PENDING_DELETION past the
   * restore window DELETED (file removed, record kept as DELETED for {@link Bounds#deletedKept()});
   * FAILED and DELETED records past their bound purged (record and any file); retention: READY backups
   * created more than the retention period ago become PENDING_DELETION, except each cluster's newest
   * READY backup and those flagged neverExpires. Unreadable records are left alone and reported, and an
   * unreadable retention setting skips retention (deleting is never the default).
   */
  public SweepReport sweep() {
    List<BackupId> failed = new ArrayList<>();
    List<BackupId> expired = new ArrayList<>();
    List<BackupId> deleted = new ArrayList<>();
    List<BackupId> purged = new ArrayList<>();
    List<String> problems = new ArrayList<>();
    Integer retention = null;
    try {
      retention = retentionDays();
    } catch (HsmException e) {
      problems.add("retention not applied: " + e.getMessage());
    }
    synchronized (lock) {
      Instant now = clock.instant();
      List<BackupRecord> ready = new ArrayList<>();
      for (BackupStore.Entry e : store.list()) {
        if (!e.isReadable()) {
          problems.add(e.id() + " left as it is: " + e.problem());
          continue;
        }
        BackupRecord r = e.record();
        guarded(r.backupId(), problems, () -> {
          switch (r.state()) {
            case CREATE_IN_PROGRESS -> failIfStale(r, now, failed);
            case PENDING_DELETION -> {
              if (now.isAfter(r.stateChangedAt().plus(RESTORE_WINDOW))) {
                store.deleteFile(r.backupId());
                store.replaceRecord(r.withState(BackupState.DELETED, now));
                deleted.add(r.backupId());
              }
            }
            case FAILED -> purgeAfter(r, bounds.failedKept(), now, purged);
            case DELETED -> purgeAfter(r, bounds.deletedKept(), now, purged);
            case READY -> ready.add(r);
          }
        });
      }
      if (retention != null) {
        applyRetention(ready, retention, now, expired, problems);
      }
    }
    SweepReport report = new SweepReport(List.copyOf(failed), List.copyOf(expired), List.copyOf(deleted),
        List.copyOf(purged), List.copyOf(problems));
    if (!report.changedNothing() || !problems.isEmpty()) {
      LOG.info("backup store " + store.name() + " sweep: " + report);
    }
    return report;
  }

  private void applyRetention(List<BackupRecord> ready, int days, Instant now, List<BackupId> expired,
      List<String> problems) {
    Map<String, BackupRecord> newest = new HashMap<>();
    for (BackupRecord r : ready) {
      newest.merge(r.clusterName(), r, (a, b) -> NEWEST_LAST.compare(a, b) >= 0 ? a : b);
    }
    Duration period = Duration.ofDays(days);
    for (BackupRecord r : ready) {
      boolean kept = r.neverExpires() || newest.get(r.clusterName()) == r || !now.isAfter(r.createdAt().plus(period));
      if (!kept) {
        guarded(r.backupId(), problems, () -> {
          store.replaceRecord(r.withState(BackupState.PENDING_DELETION, now));
          expired.add(r.backupId());
        });
      }
    }
  }

  private void failIfStale(BackupRecord r, Instant now, List<BackupId> failed) {
    if (now.isAfter(r.stateChangedAt().plus(bounds.staleCreate()))) {
      store.replaceRecord(r.withState(BackupState.FAILED, now));
      store.deleteFile(r.backupId());
      failed.add(r.backupId());
    }
  }

  private void purgeAfter(BackupRecord r, Duration kept, Instant now, List<BackupId> purged) {
    if (now.isAfter(r.stateChangedAt().plus(kept))) {
      store.delete(r.backupId());
      purged.add(r.backupId());
    }
  }

  /** One backup that cannot be changed (an I/O error) must not stop the others: it is reported. */
  private static void guarded(BackupId id, List<String> problems, Runnable work) {
    try {
      work.run();
    } catch (HsmException e) {
      problems.add(id + ": " + e.getMessage());
    }
  }

  /** Reads, changes and writes back one record under the lock. */
  private BackupRecord change(BackupId id, UnaryOperator<BackupRecord> how) {
    synchronized (lock) {
      BackupRecord changed = how.apply(describe(id));
      store.replaceRecord(changed);
      return changed;
    }
  }

  /** {@code r} moved from {@code from} (else a typed error naming its state) to {@code to}, now. */
  private BackupRecord moved(BackupRecord r, BackupState from, BackupState to, String action) {
    requireState(r, from, action);
    if (!from.canBecome(to)) {
      throw new IllegalStateException(from + " -> " + to + " is not in the state table");
    }
    return r.withState(to, clock.instant());
  }

  private static void requireState(BackupRecord r, BackupState expected, String action) {
    if (r.state() != expected) {
      throw BackupFailures.wrongState(r.backupId(), r.state(), action);
    }
  }

  @Override
  public String toString() {
    return "BackupCatalog[" + store.name() + "]";
  }
}
