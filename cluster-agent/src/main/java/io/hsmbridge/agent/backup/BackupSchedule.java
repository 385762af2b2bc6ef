package io.hsmbridge.agent.backup;

import io.hsmbridge.agent.AgentConfig;
import io.hsmbridge.agent.backup.store.BackupRecord;
import io.hsmbridge.agent.backup.store.BackupState;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Properties;

/**
 * When the cluster's next backup is due (issue #12 item 3), decided by every HSM from the shared catalog
 * alone, so no coordinator is needed: a backup is due when the cluster has none (it was just activated),
 * when the newest is older than {@code backup.interval} (default 24 h), or when the Raft membership
 * changed after the newest backup's index (an HSM added or removed). The HSMs take turns by rank (their
 * place in the sorted member list): the first makes it at once, the second {@link #STAGGER} later if
 * the first has not begun one by then, and so on; a backup begun (CREATE_IN_PROGRESS) counts, so only
 * one HSM is busy with it.
 */
public final class BackupSchedule {
  public static final Duration DEFAULT_INTERVAL = Duration.ofHours(24);
  /** How much later each next HSM in rank takes over a due backup. */
  public static final Duration STAGGER = Duration.ofMinutes(2);

  private BackupSchedule() {}

  /**
   * Why a backup is due now, or null when it is not.
   *
   * @param newest the newest READY or CREATE_IN_PROGRESS backup of the cluster
   * @param activated whether the cluster has users (a cluster not activated yet has nothing to back up)
   * @param membershipChangedAt the log index of the latest membership change this HSM applied (0: none)
   */
  static String due(Optional<BackupRecord> newest, boolean activated, long membershipChangedAt, Instant now,
      Duration interval) {
    if (!activated || interval.isZero()) {
      return null;
    }
    if (newest.isEmpty()) {
      return "the cluster has no backup yet";
    } else if (!newest.get().createdAt().plus(interval).isAfter(now)) {
      return "the newest backup is " + interval.toMinutes() + " minutes old or older";
    } else if (membershipChangedAt > newest.get().appliedIndex()) {
      return "the HSMs changed after the newest backup (log index " + membershipChangedAt + ")";
    }
    return null;
  }

  /**
   * Whether the HSM of {@code rank} makes a backup due since {@code firstSeenDue} (when this HSM first saw
   * it due): the first at once, each next one {@link #STAGGER} later, in case those before it are down.
   */
  static boolean myTurn(int rank, Instant firstSeenDue, Instant now) {
    return !firstSeenDue.plus(STAGGER.multipliedBy(rank)).isAfter(now);
  }

  /** The newest READY or CREATE_IN_PROGRESS backup of {@code cluster} among {@code records}. */
  static Optional<BackupRecord> newest(List<BackupRecord> records, String cluster) {
    return records.stream()
        .filter(r -> r.clusterName().equals(cluster))
        .filter(r -> r.state() == BackupState.READY || r.state() == BackupState.CREATE_IN_PROGRESS)
        .max(java.util.Comparator.comparing(BackupRecord::createdAt));
  }

  /**
   * {@code backup.interval}: a number with a unit ({@code 30m}, {@code 24h}, {@code 7d}), or {@code 0} /
   * {@code off} for no scheduled backups (lifecycle backups too); at least 5 minutes.
   */
  public static Duration interval(Properties p) {
    String v = p.getProperty("backup.interval");
    if (v == null || v.isBlank()) {
      return DEFAULT_INTERVAL;
    }
    v = v.trim().toLowerCase(Locale.ROOT);
    if (v.equals("0") || v.equals("off")) {
      return Duration.ZERO;
    }
    Duration d;
    try {
      long n = Long.parseLong(v.substring(0, v.length() - 1));
      d = switch (v.charAt(v.length() - 1)) {
        case 'm' -> Duration.ofMinutes(n);
        case 'h' -> Duration.ofHours(n);
        case 'd' -> Duration.ofDays(n);
        default -> null;
      };
    } catch (NumberFormatException | StringIndexOutOfBoundsException e) {
      d = null;
    }
    if (d == null || d.compareTo(Duration.ofMinutes(5)) < 0 || d.compareTo(Duration.ofDays(379)) > 0) {
      throw AgentConfig.invalid("backup.interval must be 5m..379d (e.g. 24h), or 0/off for none; got '" + v + "'");
    }
    return d;
  }
}
