package io.hsmbridge.agent.replication;

import java.util.Objects;
import java.util.Properties;

/**
 * How this HSM's copy of the mutation log is compacted (docs/replication.md, "Compaction"): every
 * {@code everyEntries} applied entries it looks for a newer backup ({@link Snapshots}) and, when there is
 * one, purges the closed log segments at or before it that every HSM has committed. Segments of
 * {@code segmentBytes} are the unit of purging.
 *
 * @param snapshots where backups come from; {@link Snapshots#NONE} turns compaction off
 * @param everyEntries how many applied entries between two looks for a newer backup
 * @param segmentBytes the size of one log segment file
 */
public record Compaction(Snapshots snapshots, long everyEntries, long segmentBytes) {
  public static final long DEFAULT_EVERY = 1024;
  public static final long DEFAULT_SEGMENT_BYTES = 4L * 1024 * 1024;
  /** Smaller segments would make a file per handful of entries. */
  public static final long MIN_SEGMENT_BYTES = 16L * 1024;

  /** No compaction: the log keeps every entry (a cluster without backups). */
  public static final Compaction OFF = new Compaction(Snapshots.NONE, DEFAULT_EVERY, DEFAULT_SEGMENT_BYTES);

  public Compaction {
    Objects.requireNonNull(snapshots, "snapshots");
    if (everyEntries < 1) {
      throw new IllegalArgumentException("raft.compaction.entries must be at least 1, not " + everyEntries);
    }
    if (segmentBytes < MIN_SEGMENT_BYTES) {
      throw new IllegalArgumentException("raft.log.segmentBytes must be at least " + MIN_SEGMENT_BYTES + ", not " + segmentBytes);
    }
  }

  public boolean enabled() {
    return snapshots != Snapshots.NONE;
  }

  /**
   * From {@code raft.compaction.entries} (default {@value #DEFAULT_EVERY}; {@code off} turns it off) and
   * {@code raft.log.segmentBytes} (default 4 MiB) of node.properties, over {@code snapshots}.
   *
   * @throws IllegalArgumentException for a value that is not a number in range
   */
  public static Compaction from(Properties p, Snapshots snapshots) {
    String every = p.getProperty("raft.compaction.entries", Long.toString(DEFAULT_EVERY)).trim();
    long segment = number(p, "raft.log.segmentBytes", DEFAULT_SEGMENT_BYTES);
    if (every.equalsIgnoreCase("off")) {
      return new Compaction(Snapshots.NONE, DEFAULT_EVERY, segment);
    }
    return new Compaction(snapshots, number(p, "raft.compaction.entries", DEFAULT_EVERY), segment);
  }

  private static long number(Properties p, String name, long otherwise) {
    String v = p.getProperty(name);
    if (v == null || v.isBlank()) {
      return otherwise;
    }
    try {
      return Long.parseLong(v.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(name + " must be a whole number, not '" + v.trim() + "'");
    }
  }
}
