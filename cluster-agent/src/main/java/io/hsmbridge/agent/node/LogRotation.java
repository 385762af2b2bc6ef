package io.hsmbridge.agent.node;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.logging.Handler;
import java.util.logging.LogManager;
import java.util.logging.Logger;

/**
 * Keeps a node's log file bounded when its launcher sends the node's output there ({@code ./hsmbridge up}
 * appends stdout and stderr to {@code node.log}): every {@value #CHECK_MS} ms, a file over
 * {@code hsmbridge.log.maxBytes} is copied to {@code node.log.1} (older copies shift up to
 * {@code node.log.<hsmbridge.log.files>}, the oldest is dropped) and truncated. The launcher opened the file for
 * appending, so the node's next line lands at the start of the emptied file. While it copies, it holds the
 * console handlers' locks: no log record is lost between the copy and the truncation (a line printed to
 * stderr directly, not through java.util.logging, can be).
 *
 * <p>Off unless the system property {@code hsmbridge.log.file} names the file.
 */
public final class LogRotation {
  static final long CHECK_MS = 2000;
  static final long DEFAULT_MAX_BYTES = 10L * 1024 * 1024;
  static final int DEFAULT_FILES = 5;

  private final Path file;
  private final long maxBytes;
  private final int files;

  LogRotation(Path file, long maxBytes, int files) {
    this.file = file;
    this.maxBytes = maxBytes;
    this.files = files;
  }

  /** Starts the check thread when {@code hsmbridge.log.file} is set; returns whether it did. */
  public static boolean installFromSystemProperties() {
    String f = System.getProperty("hsmbridge.log.file");
    if (f == null || f.isBlank()) {
      return false;
    }
    long max = Long.getLong("hsmbridge.log.maxBytes", DEFAULT_MAX_BYTES);
    int n = Integer.getInteger("hsmbridge.log.files", DEFAULT_FILES);
    LogRotation r = new LogRotation(Paths.get(f), Math.max(64 * 1024, max), Math.max(1, Math.min(n, 100)));
    Thread t = new Thread(r::loop, "hsmbridge-log-rotation");
    t.setDaemon(true);
    t.start();
    return true;
  }

  private void loop() {
    while (true) {
      try {
        Thread.sleep(CHECK_MS);
        rotateIfNeeded();
      } catch (InterruptedException e) {
        return;
      } catch (IOException | RuntimeException e) {
        Logger.getLogger(LogRotation.class.getName()).warning("log rotation of " + file + " failed: " + e);
      }
    }
  }

  /** Rotates when the file is over the cap; true if it did. */
  boolean rotateIfNeeded() throws IOException {
    if (!Files.exists(file) || Files.size(file) <= maxBytes) {
      return false;
    }
    Handler[] handlers = LogManager.getLogManager().getLogger("").getHandlers();
    rotateHolding(handlers, 0);
    return true;
  }

  private void rotateHolding(Handler[] handlers, int i) throws IOException {
    if (i < handlers.length) {
      synchronized (handlers[i]) { // StreamHandler.publish is synchronized on the handler
        handlers[i].flush();
        rotateHolding(handlers, i + 1);
      }
      return;
    }
    System.err.flush();
    for (int g = files; g >= 2; g--) {
      Path from = generation(g - 1);
      if (Files.exists(from)) {
        Files.move(from, generation(g), StandardCopyOption.REPLACE_EXISTING);
      }
    }
    // generation(0) is the live file: copy it, never move it (the node's stdout stays open on it).
    Files.copy(file, generation(1), StandardCopyOption.REPLACE_EXISTING);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      ch.truncate(0);
    }
  }

  /** {@code node.log} for 0, {@code node.log.K} for K. */
  Path generation(int g) {
    return g == 0 ? file : file.resolveSibling(file.getFileName() + "." + g);
  }
}
