package io.hsmbridge.pkcs11;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.SecureRandom;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * Real SoftHSM2 tokens for tests. Surefire points SOFTHSM2_CONF at {@code target/softhsm/softhsm2.conf};
 * the first use in a JVM writes that config over an empty token directory, and every
 * {@link #newToken} initialises a fresh token (its own slot) with random PINs kept in files.
 */
public final class SoftHsmFixture {
  private static final List<String> LIBRARY_CANDIDATES = List.of(
      "/usr/lib/softhsm/libsofthsm2.so",
      "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
      "/usr/local/lib/softhsm/libsofthsm2.so");
  private static final AtomicInteger COUNTER = new AtomicInteger();
  private static final SecureRandom RANDOM = new SecureRandom();
  private static Path root;

  private SoftHsmFixture() {}

  /** The SoftHSM2 module; fails the test with the fix when softhsm2 is not installed. */
  public static Path library() {
    String override = System.getenv("HSMBRIDGE_PKCS11_LIBRARY");
    if (override != null) {
      return Paths.get(override);
    }
    for (String c : LIBRARY_CANDIDATES) {
      if (Files.exists(Paths.get(c))) {
        return Paths.get(c);
      }
    }
    throw new IllegalStateException("libsofthsm2.so not found: apt-get install -y softhsm2");
  }

  /** The directory holding the config, token store and PIN files of this test JVM. */
  public static synchronized Path root() {
    if (root == null) {
      String conf = System.getenv("SOFTHSM2_CONF");
      if (conf == null) {
        throw new IllegalStateException("SOFTHSM2_CONF is not set (surefire sets it; see the parent pom)");
      }
      Path confPath = Paths.get(conf);
      Path dir = confPath.getParent();
      try {
        deleteTree(dir);
        Files.createDirectories(dir.resolve("tokens"));
        Files.createDirectories(dir.resolve("pins"));
        Files.writeString(confPath, softHsmConf(dir.resolve("tokens")), StandardCharsets.UTF_8);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      root = dir;
    }
    return root;
  }

  public static String softHsmConf(Path tokenDir) {
    return "directories.tokendir = " + tokenDir + "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n";
  }

  /** A config for a new, not yet initialised token; {@link HsmToken#open} initialises it. */
  public static TokenConfig newToken(String prefix) {
    Path dir = root();
    String label = prefix + "-" + COUNTER.incrementAndGet();
    Path userPin = writePin(dir.resolve("pins").resolve(label + ".user"));
    Path soPin = writePin(dir.resolve("pins").resolve(label + ".so"));
    return TokenConfig.of(library(), label, PinSource.fromFile(userPin), PinSource.fromFile(soPin), true);
  }

  /** Writes a random 20-character PIN; returns the file. */
  public static Path writePin(Path file) {
    String alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    StringBuilder pin = new StringBuilder();
    for (int i = 0; i < 20; i++) {
      pin.append(alphabet.charAt(RANDOM.nextInt(alphabet.length())));
    }
    try {
      Files.createDirectories(file.getParent());
      Files.writeString(file, pin + "\n", StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return file;
  }

  /**
   * The SoftHSM2 directory ({@code root()/tokens/<uuid>}) of the token with this label: the one whose
   * token.object holds the label blank-padded to 32 bytes, as SoftHSM2 stores it (a plain substring
   * match would confuse "t-1" with "t-12").
   *
   * @throws IllegalStateException when no directory (or more than one) holds the label
   */
  public static Path tokenDirectory(String label) {
    List<Path> found = IntegrityScan.softHsmTokenDirectories(root().resolve("tokens"), label);
    if (found.size() != 1) {
      throw new IllegalStateException("expected one token directory for '" + label + "', found " + found);
    }
    return found.get(0);
  }
  /**
   * What a kill in the middle of a token write leaves: an empty object file (and its lock file) in
   * {@code tokenDirectory}; returns the object file.
   */
  public static Path plantEmptyObject(Path tokenDirectory) throws IOException {
    String name = java.util.UUID.randomUUID().toString();
    Path object = Files.createFile(tokenDirectory.resolve(name + ".object"));
    Files.createFile(tokenDirectory.resolve(name + ".lock"));
    return object;
  }


  /** Writes {@code pin} and a newline to {@code file}; returns the file. */
  public static Path writePin(Path file, String pin) {
    try {
      Files.createDirectories(file.getParent());
      Files.writeString(file, pin + "\n", StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return file;
  }

  public static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) {
        Files.delete(p);
      }
    }
  }
}
