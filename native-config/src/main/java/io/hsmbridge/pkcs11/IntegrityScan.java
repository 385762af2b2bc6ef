package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_GENERAL_ERROR;

import io.hsmbridge.protocol.ErrorCode;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;
import java.util.stream.Stream;
import org.xipki.pkcs11.wrapper.AttributeVector;

/**
 * Start-up integrity scan. A process killed mid-write can leave object files a token cannot read; on
 * SoftHSM2 every templated search then fails with CKR_GENERAL_ERROR until they are removed. The scan
 * finds such objects, reports them, and (only when the operator asked for repair) moves them to a
 * quarantine directory beside the token store. Nothing is ever deleted.
 */
public final class IntegrityScan {
  private static final Logger LOG = Logger.getLogger(IntegrityScan.class.getName());

  /**
   * What a scan found.
   *
   * @param broken object files that cannot be read
   * @param quarantine where they were moved, or null when not repaired
   */
  public record Report(List<Path> broken, Path quarantine) {
    public boolean clean() {
      return broken.isEmpty();
    }

    public boolean repaired() {
      return quarantine != null;
    }
  }

  /** How long an empty object file must stay empty and untouched to count as a crash's leftover. */
  static final Duration SETTLE = Duration.ofMillis(200);

  private static final int SETTLE_LOOKS = 3;

  /** How long the scan waits for another process that is writing an object file. */
  static final Duration WRITER_WAIT = Duration.ofSeconds(5);

  private IntegrityScan() {}

  /**
   * Scans the SoftHSM2 token directory holding {@code tokenLabel}. With {@code repair}, broken files are
   * moved to quarantine; without it, a non-clean result fails with TOKEN_CORRUPTED and says how to repair.
   */
  static Report scanSoftHsmFiles(String tokenLabel, boolean repair) {
    Path tokenDir = softHsmTokenDir();
    if (tokenDir == null || tokenLabel == null || !Files.isDirectory(tokenDir)) {
      return new Report(List.of(), null);
    }
    List<Path> looksEmpty = new ArrayList<>();
    for (Path dir : tokenDirectories(tokenDir, tokenLabel)) {
      try (Stream<Path> files = Files.list(dir)) {
        files.filter(f -> f.getFileName().toString().endsWith(".object")).filter(IntegrityScan::unreadable)
            .forEach(looksEmpty::add);
      } catch (IOException e) {
        throw new HsmException(ErrorCode.TOKEN_CORRUPTED, "cannot list token directory " + dir + ": " + e.getMessage());
      }
    }
    List<Path> broken = leftByACrash(looksEmpty);
    broken.sort(null);
    if (broken.isEmpty()) {
      return new Report(List.of(), null);
    }
    Path quarantine = tokenDir.resolveSibling("hsmbridge-quarantine").resolve(Instant.now().toString().replace(':', '-'));
    if (!repair) {
      throw new HsmException(ErrorCode.TOKEN_CORRUPTED, "token storage holds " + broken.size()
          + " unreadable object file(s) left by a crash: " + broken
          + "; start again with integrity.repair=true to move them to " + quarantine.getParent());
    }
    try {
      Files.createDirectories(quarantine);
      for (Path f : broken) {
        Files.move(f, quarantine.resolve(f.getParent().getFileName() + "-" + f.getFileName()));
        Path lock = f.resolveSibling(f.getFileName().toString().replace(".object", ".lock"));
        Files.deleteIfExists(lock);
      }
    } catch (IOException e) {
      throw new HsmException(ErrorCode.TOKEN_CORRUPTED, "repair failed while moving broken objects to " + quarantine
          + ": " + e.getMessage());
    }
    LOG.warning("integrity scan: moved " + broken.size() + " unreadable object file(s) to " + quarantine);
    return new Report(List.copyOf(broken), quarantine);
  }

  /** After the token is open: a search over all token objects must succeed. */
  static void checkSearchable(SessionPool pool) {
    try {
      pool.call("integrity check", s -> SearchGuard.find(s, new AttributeVector().token(true)));
    } catch (HsmException e) {
      if (e.ckr() != null && e.ckr() == CKR_GENERAL_ERROR) {
        throw new HsmException(ErrorCode.TOKEN_CORRUPTED,
            "token cannot search its objects (CKR_GENERAL_ERROR): it likely holds objects a crash left unreadable;"
                + " see docs/operations.md#integrity", e.ckr(), e.serverDetail(), e);
      }
      throw e;
    }
  }

  /**
   * Of the files that looked empty, those that stay so with no writer at work. An empty object file is also
   * what a live SoftHSM2 shows another process: it stores an object by taking an fcntl write lock on the
   * file, truncating it and writing it again, and it creates a new object's file empty before it locks it.
   * So a file counts as a crash's leftover only when, read under a shared lock (which waits for a writer),
   * it is empty and unchanged at every look across {@link #SETTLE}. A tool that opens a token an agent is
   * serving (an operator's script, a test's tamper process) then sees no false corruption. Looking costs
   * {@code SETTLE} only when something looked empty, which is rare.
   */
  private static List<Path> leftByACrash(List<Path> looksEmpty) {
    List<Path> candidates = new ArrayList<>(looksEmpty);
    Map<Path, FileTime> firstSeen = new HashMap<>();
    for (int look = 0; look < SETTLE_LOOKS && !candidates.isEmpty(); look++) {
      if (look > 0) {
        pause(SETTLE.dividedBy(SETTLE_LOOKS - 1));
      }
      candidates.removeIf(f -> !emptyWithNoWriter(f, firstSeen));
    }
    for (Path f : looksEmpty) {
      if (!candidates.contains(f)) {
        LOG.info("integrity scan: " + f.getFileName() + " was empty while another process wrote it; not a crash's leftover");
      }
    }
    return candidates;
  }

  /**
   * Whether {@code f} is empty, and unchanged since the first look, when no writer holds it. Closing the
   * channel drops every fcntl lock this process holds on the file (POSIX), SoftHSM2's included when this JVM
   * has the token loaded too; that only matters while a third process reads the same token, and only for a
   * file that already looked empty.
   */
  private static boolean emptyWithNoWriter(Path f, Map<Path, FileTime> firstSeen) {
    try (FileChannel channel = FileChannel.open(f, StandardOpenOption.READ)) {
      FileLock lock = awaitReadLock(channel);
      if (lock == null) {
        return false; // a live process has been writing it all along: not a crash's leftover
      }
      try {
        if (channel.size() != 0) {
          return false;
        }
        FileTime modified = Files.getLastModifiedTime(f);
        FileTime first = firstSeen.putIfAbsent(f, modified);
        return first == null || first.equals(modified);
      } finally {
        lock.release();
      }
    } catch (NoSuchFileException e) {
      return false; // destroyed meanwhile
    } catch (IOException e) {
      return true; // cannot even be opened
    }
  }

  /** A shared lock on the whole file, waiting up to {@link #WRITER_WAIT} for a writer; null when it did not end. */
  private static FileLock awaitReadLock(FileChannel channel) throws IOException {
    long deadline = System.nanoTime() + WRITER_WAIT.toNanos();
    while (true) {
      FileLock lock;
      try {
        lock = channel.tryLock(0, Long.MAX_VALUE, true);
      } catch (OverlappingFileLockException e) {
        lock = null; // this JVM holds a lock on it through another channel: it is being written here
      }
      if (lock != null || System.nanoTime() > deadline) {
        return lock;
      }
      pause(Duration.ofMillis(5));
    }
  }

  private static void pause(Duration d) {
    try {
      Thread.sleep(d.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new HsmException(ErrorCode.TOKEN_UNAVAILABLE, "integrity scan interrupted");
    }
  }

  private static boolean unreadable(Path f) {
    try {
      return Files.size(f) == 0;
    } catch (IOException e) {
      return true;
    }
  }

  /**
   * Token sub-directories whose token.object names the label, or cannot be read at all. SoftHSM2 stores
   * the label blank-padded to 32 bytes; matching the padded form keeps "hsm1" from matching "hsm10".
   */
  private static List<Path> tokenDirectories(Path tokenDir, String label) {
    return tokenDirectories(tokenDir, label, true);
  }

  /** The sub-directories of a SoftHSM2 token store whose token.object names {@code label}. */
  public static List<Path> softHsmTokenDirectories(Path tokenDir, String label) {
    return tokenDirectories(tokenDir, label, false);
  }

  private static List<Path> tokenDirectories(Path tokenDir, String label, boolean includeUnreadable) {
    List<Path> dirs = new ArrayList<>();
    byte[] needle = String.format("%-32s", label).getBytes(StandardCharsets.UTF_8);
    try (DirectoryStream<Path> subdirs = Files.newDirectoryStream(tokenDir, Files::isDirectory)) {
      for (Path d : subdirs) {
        Path tokenObject = d.resolve("token.object");
        if (!Files.exists(tokenObject)) {
          continue;
        }
        byte[] content = Files.readAllBytes(tokenObject);
        if ((includeUnreadable && content.length == 0) || indexOf(content, needle) >= 0) {
          dirs.add(d);
        }
      }
    } catch (IOException e) {
      throw new HsmException(ErrorCode.TOKEN_CORRUPTED, "cannot read token directory " + tokenDir + ": " + e.getMessage());
    }
    return dirs;
  }

  private static int indexOf(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  /** directories.tokendir from $SOFTHSM2_CONF (or the default config), or null. */
  static Path softHsmTokenDir() {
    String conf = System.getenv("SOFTHSM2_CONF");
    Path confPath = Paths.get(conf != null ? conf : "/etc/softhsm/softhsm2.conf");
    if (!Files.isReadable(confPath)) {
      return null;
    }
    try {
      for (String line : Files.readAllLines(confPath, StandardCharsets.UTF_8)) {
        String l = line.trim();
        if (l.startsWith("directories.tokendir")) {
          int eq = l.indexOf('=');
          if (eq > 0) {
            return Paths.get(l.substring(eq + 1).trim());
          }
        }
      }
    } catch (IOException e) {
      LOG.warning("cannot read " + confPath + ": " + e.getMessage());
    }
    return null;
  }
}
