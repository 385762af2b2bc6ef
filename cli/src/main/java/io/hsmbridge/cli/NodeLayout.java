package io.hsmbridge.cli;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Creates a node's files: SoftHSM2 config, token directory and PIN files, and the token-only
 * {@code node.properties} of the benchmark's direct baseline. Idempotent: PINs are created once and never rewritten or read here; the
 * config files are rewritten on every start so that the ports and the library path follow.
 */
final class NodeLayout {
  static final String LIBRARY_ENV = "HSMBRIDGE_PKCS11_LIBRARY";
  static final List<String> LIBRARY_CANDIDATES = List.of(
      "/usr/lib/softhsm/libsofthsm2.so",
      "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
      "/usr/local/lib/softhsm/libsofthsm2.so");

  private static final int PIN_LENGTH = 24;
  private static final char[] PIN_ALPHABET =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".toCharArray();
  private static final Set<PosixFilePermission> DIR_PERMS = PosixFilePermissions.fromString("rwx------");
  private static final Set<PosixFilePermission> FILE_PERMS = PosixFilePermissions.fromString("rw-------");

  private static final SecureRandom RANDOM = new SecureRandom();

  private NodeLayout() {}

  /**
   * The PKCS#11 library: {@code $HSMBRIDGE_PKCS11_LIBRARY} if set, else the first SoftHSM2 library
   * found in the usual Debian/Ubuntu/source-build places.
   *
   * @throws CliException when there is none, saying how to install it
   */
  static Path findLibrary(Map<String, String> env) {
    String override = env.get(LIBRARY_ENV);
    if (override != null && !override.isBlank()) {
      Path p = Path.of(override);
      if (!Files.isRegularFile(p)) {
        throw new CliException("PKCS#11 library not found: " + override + " (from " + LIBRARY_ENV + ")");
      }
      return p;
    }
    for (String c : LIBRARY_CANDIDATES) {
      if (Files.isRegularFile(Path.of(c))) {
        return Path.of(c);
      }
    }
    throw new CliException("SoftHSM2 is not installed (no libsofthsm2.so in " + String.join(", ", LIBRARY_CANDIDATES)
        + "); install it with 'sudo apt-get install softhsm2' or set " + LIBRARY_ENV);
  }

  /** Creates the data directory (0700) when it is missing. */
  static void prepareHome(Home home) throws IOException {
    if (!Files.isDirectory(home.dir())) {
      Files.createDirectories(home.dir());
      Files.setPosixFilePermissions(home.dir(), DIR_PERMS);
    }
  }

  /**
   * Creates or refreshes what a node needs to hold a token: its directory and token store (0700), the
   * PIN files (created once, 0600) and {@code softhsm2.conf}.
   */
  static void prepareToken(NodeDir node) throws IOException {
    privateDir(node.dir());
    privateDir(node.tokensDir());
    createPinOnce(node.soPin());
    createPinOnce(node.userPin());
    writeIfChanged(node.softhsmConf(), softhsmConf(node));
  }

  /**
   * Creates or refreshes a token of its own in {@code HOME/hsm1} for {@code bench}'s direct PKCS#11
   * baseline: its {@code node.properties} holds the token keys only (no node ever starts on it).
   */
  static NodeDir prepareDirectToken(Home home, Path library) throws IOException {
    prepareHome(home);
    NodeDir node = home.hsm(Home.FIRST_HSM);
    prepareToken(node);
    writeIfChanged(node.nodeProperties(), NodeProperties.directToken(node, library));
    return node;
  }

  static String softhsmConf(NodeDir node) {
    return "directories.tokendir = " + node.tokensDir() + "\n"
        + "objectstore.backend = file\n"
        + "log.level = ERROR\n";
  }

  /** Creates a directory (and its parents) and makes it 0700. */
  static void privateDir(Path dir) throws IOException {
    Files.createDirectories(dir);
    Files.setPosixFilePermissions(dir, DIR_PERMS);
  }

  /** Writes a fresh random PIN to a new 0600 file; an existing PIN is kept (only its mode is fixed). */
  private static void createPinOnce(Path file) throws IOException {
    if (Files.exists(file)) {
      Files.setPosixFilePermissions(file, FILE_PERMS);
      return;
    }
    byte[] pin = new byte[PIN_LENGTH];
    try {
      for (int i = 0; i < pin.length; i++) {
        pin[i] = (byte) PIN_ALPHABET[RANDOM.nextInt(PIN_ALPHABET.length)];
      }
      FileAttribute<Set<PosixFilePermission>> mode = PosixFilePermissions.asFileAttribute(FILE_PERMS);
      try (SeekableByteChannel ch = Files.newByteChannel(file,
          Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE), mode)) {
        ByteBuffer buf = ByteBuffer.wrap(pin);
        while (buf.hasRemaining()) {
          ch.write(buf);
        }
      } catch (FileAlreadyExistsException raced) {
        // another 'up' created it first: keep theirs
      }
    } finally {
      Arrays.fill(pin, (byte) 0);
    }
  }

  /** Replaces the file atomically when its content differs (not for secrets: the mode is the umask's). */
  static void writeIfChanged(Path file, String content) throws IOException {
    if (Files.exists(file) && Files.readString(file, StandardCharsets.UTF_8).equals(content)) {
      return;
    }
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    Files.writeString(tmp, content, StandardCharsets.UTF_8);
    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }
}
