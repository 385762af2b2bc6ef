package io.hsmbridge.agent.replication;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The snapshot this HSM has told Raft it holds: the term and index of the newest backup whose state its
 * token includes. Raft may purge this HSM's log up to it, so it must survive restarts: a token found
 * below it at the next start (wiped, or its index reset by an integrity repair) cannot replay what was
 * purged and restores a backup first. One line, {@code <term> <index>}, in the agent's data directory,
 * replaced atomically.
 */
final class SnapshotClaim {
  private final Path file;

  SnapshotClaim(Path file) {
    this.file = file;
  }

  /** The claimed point, or null when this HSM never claimed one (or for no file). */
  Snapshots.Point read() {
    if (file == null || !Files.exists(file)) {
      return null;
    }
    try {
      String[] parts = Files.readString(file, StandardCharsets.US_ASCII).trim().split(" ");
      if (parts.length != 2) {
        throw new IOException("not '<term> <index>'");
      }
      return new Snapshots.Point(Long.parseLong(parts[0]), Long.parseLong(parts[1]));
    } catch (IOException | NumberFormatException e) {
      throw new IllegalStateException("cannot read the log's snapshot record " + file + ": " + e.getMessage()
          + " (it names the newest backup this HSM's token includes; restore the file or start from a fresh token)", e);
    }
  }

  void write(Snapshots.Point point) {
    if (file == null) {
      return;
    }
    try {
      Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
      Files.writeString(tmp, point.term() + " " + point.index() + "\n", StandardCharsets.US_ASCII);
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot record the log's snapshot in " + file, e);
    }
  }
}
