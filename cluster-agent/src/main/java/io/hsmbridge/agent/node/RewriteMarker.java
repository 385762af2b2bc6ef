package io.hsmbridge.agent.node;

import io.hsmbridge.pkcs11.RewriteJournal;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * The agent's {@link RewriteJournal}: a file in its state directory that exists, synced to disk, while the
 * token rewrites an existing object in place. If the process dies meanwhile the file stays, and the next
 * start reads it ({@link #leftOpen}) before it decides how much of the log a quarantined object file costs.
 * Rewrites are rare (a key's label), so the sync they pay is too.
 */
final class RewriteMarker implements RewriteJournal {
  static final String FILE = "in-place-rewrite";

  private final Path file;

  RewriteMarker(Path stateDir) {
    this.file = stateDir.resolve(FILE);
  }

  /** What the last process was rewriting when it stopped, or null when it was rewriting nothing. */
  String leftOpen() {
    try {
      return Files.exists(file) ? Files.readString(file, StandardCharsets.UTF_8).trim() : null;
    } catch (IOException e) {
      return "(unreadable marker " + file + ": " + e.getMessage() + ")";
    }
  }

  /** Forgets what a stopped process left open: once its consequence has been decided. */
  void clear() {
    try {
      Files.deleteIfExists(file);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot delete " + file, e);
    }
  }

  @Override
  public synchronized Scope begin(String what) {
    try {
      Files.createDirectories(file.getParent());
      try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
          StandardOpenOption.TRUNCATE_EXISTING)) {
        channel.write(ByteBuffer.wrap((what + "\n").getBytes(StandardCharsets.UTF_8)));
        channel.force(true);
      }
      syncDirectory();
    } catch (IOException e) {
      // Not knowing would later cost a whole-log replay that might be needed, or skip one that is: refuse.
      throw new UncheckedIOException("cannot record an in-place rewrite in " + file, e);
    }
    return this::clear;
  }

  /** The file's directory entry must be on disk too, or a power cut could lose the marker's creation. */
  private void syncDirectory() {
    try (FileChannel dir = FileChannel.open(file.getParent(), StandardOpenOption.READ)) {
      dir.force(true);
    } catch (IOException e) {
      // Some file systems cannot open a directory for syncing; the file itself is synced.
    }
  }
}
