package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_GENERAL_ERROR;

import io.hsmbridge.protocol.ErrorCode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
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
    List<Path> broken = new ArrayList<>();
    for (Path dir : tokenDirectories(tokenDir, tokenLabel)) {
      try (Stream<Path> files = Files.list(dir)) {
        files.filter(f -> f.getFileName().toString().endsWith(".object")).filter(IntegrityScan::unreadable)
            .forEach(broken::add);
      } catch (IOException e) {
        throw new HsmException(ErrorCode.TOKEN_CORRUPTED, "cannot list token directory " + dir + ": " + e.getMessage());
      }
    }
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
