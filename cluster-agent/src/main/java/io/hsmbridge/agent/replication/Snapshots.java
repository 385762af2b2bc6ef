package io.hsmbridge.agent.replication;

/**
 * Where the mutation log's snapshots come from (issue #12, "sync through backups"): a snapshot of this
 * log is a backup of the cluster, made inside an HSM at one applied index and kept in the backup store.
 * The log uses them twice: entries at or before a backup that every HSM has are purged, and an HSM that
 * fell behind the purged part restores a backup instead of replaying entries that are gone. No PKCS#11
 * type crosses this interface ({@code BackupSnapshots} is the token-backed one).
 */
public interface Snapshots {
  /** A restored backup: the term and index of the log entry it reflects. */
  record Point(long term, long index) {}

  /** The applied index of the newest backup of this cluster at or before {@code index}, or -1 when none. */
  long newestAtOrBefore(long index);

  /**
   * Restores over this HSM's token the newest backup of this cluster whose index is at least
   * {@code minIndex}, after checking the whole file inside the token; the token then holds exactly the
   * backup's state and index.
   *
   * @return the restored backup's point, or null when the store holds no such backup (or none that
   *     authenticates); the token is then unchanged
   * @throws RuntimeException when the token failed part-way (the restore is repeated at the next start)
   */
  Point restoreAtLeast(long minIndex);

  /** No backups: the log is never compacted (as before issue #12). */
  Snapshots NONE = new Snapshots() {
    @Override
    public long newestAtOrBefore(long index) {
      return -1;
    }

    @Override
    public Point restoreAtLeast(long minIndex) {
      return null;
    }
  };
}
