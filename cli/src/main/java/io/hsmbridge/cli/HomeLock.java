package io.hsmbridge.cli;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;

/**
 * An exclusive lock on a data directory, held by the commands that change the cluster (up, down, hsm
 * add, hsm remove) so that two of them never interleave their starts, stops and record updates.
 */
final class HomeLock implements AutoCloseable {
  private final FileChannel channel;
  private final FileLock lock;

  private HomeLock(FileChannel channel, FileLock lock) {
    this.channel = channel;
    this.lock = lock;
  }

  /**
   * Takes the lock without waiting; a data directory that does not exist needs none (there is nothing
   * in it to change, and locking must not create it).
   *
   * @throws CliException when another command holds it
   */
  static HomeLock acquire(Home home) throws IOException {
    if (!Files.isDirectory(home.dir())) {
      return new HomeLock(null, null);
    }
    FileChannel ch = FileChannel.open(home.lockFile(), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
    FileLock lock;
    try {
      lock = ch.tryLock();
    } catch (OverlappingFileLockException e) {
      lock = null; // held by this JVM (another command run in-process)
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
    if (lock == null) {
      ch.close();
      throw new CliException("another hsmbridge command is changing " + home.dir() + "; try again when it is done");
    }
    return new HomeLock(ch, lock);
  }

  @Override
  public void close() throws IOException {
    if (channel != null) {
      lock.release();
      channel.close();
    }
  }
}
