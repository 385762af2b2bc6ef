package io.hsmbridge.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;

/**
 * Reads the third-party test vectors that {@link JceVectorsTest} runs through the provider: NIST CAVP response
 * files and RFC/PKCS#1 vector texts, as pyca/cryptography ships them in Debian's {@code python3-cryptography-vectors}
 * (installed by {@code .ci/run}). Nothing here is ours: the files are read as published.
 */
final class VectorFiles {
  /** Where Debian installs the package; {@code -Dhsmbridge.vectors=DIR} points elsewhere. */
  static final String DEFAULT_DIR = "/usr/lib/python3/dist-packages/cryptography_vectors";

  private VectorFiles() {}

  /**
   * The vector directory. Without it the test is skipped with what to install, except under {@code CI=true}
   * where it must run: {@code .ci/run} installs the package.
   */
  static Path dir() {
    Path dir = Path.of(System.getProperty("hsmbridge.vectors", DEFAULT_DIR));
    boolean present = Files.isDirectory(dir.resolve("ciphers"));
    String missing = "no test vectors in " + dir + ": apt-get install python3-cryptography-vectors"
        + " (or -Dhsmbridge.vectors=DIR of pyca/cryptography's cryptography_vectors)";
    if (!present && "true".equals(System.getenv("CI"))) {
      throw new AssertionError(missing + "; CI=true runs them (.ci/run installs the package)");
    }
    Assumptions.assumeTrue(present, missing);
    return dir;
  }

  /**
   * One test case of a CAVP response file: its {@code [name = value]} section headers and its {@code name = value}
   * lines (names as written), and whether it is marked {@code FAIL} (a decryption that must be refused).
   */
  record Case(Map<String, String> section, Map<String, String> fields, boolean fail) {
    byte[] hex(String name) {
      String v = fields.get(name);
      if (v == null) {
        throw new IllegalStateException("vector without " + name + ": " + fields);
      }
      return HexFormat.of().parseHex(v);
    }

    int sectionInt(String name) {
      return Integer.parseInt(section.get(name));
    }
  }

  /**
   * The cases of a CAVP {@code .rsp} file. A case starts at a line whose name is {@code startField} (e.g. {@code
   * Count}); section headers ({@code [Keylen = 256]}, {@code [DECRYPT]}) apply to the cases after them.
   */
  static List<Case> cavp(Path file, String startField) {
    List<Case> cases = new ArrayList<>();
    Map<String, String> section = new LinkedHashMap<>();
    Map<String, String> fields = null;
    boolean fail = false;
    boolean sectionOpen = false;
    for (String raw : lines(file)) {
      String line = raw.strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      if (line.startsWith("[") && line.endsWith("]")) {
        if (fields != null) {
          cases.add(new Case(Map.copyOf(section), fields, fail)); // a header ends the case before it
          fields = null;
        }
        if (!sectionOpen) {
          section = new LinkedHashMap<>(); // a new run of headers starts a new section
          sectionOpen = true;
        }
        String inner = line.substring(1, line.length() - 1);
        int eq = inner.indexOf('=');
        section.put(eq < 0 ? inner.strip() : inner.substring(0, eq).strip(), eq < 0 ? "" : inner.substring(eq + 1).strip());
        continue;
      }
      sectionOpen = false;
      if (line.equals("FAIL")) {
        fail = true;
        continue;
      }
      int eq = line.indexOf('=');
      if (eq < 0) {
        continue;
      }
      String name = line.substring(0, eq).strip();
      String value = line.substring(eq + 1).strip();
      if (name.equals(startField)) {
        if (fields != null) {
          cases.add(new Case(Map.copyOf(section), fields, fail));
        }
        fields = new LinkedHashMap<>();
        fail = false;
      }
      if (fields != null) {
        fields.put(name, value);
      } else {
        section.put(name, value); // a section's own values before its first case (e.g. n, e, d of a modulus)
      }
    }
    if (fields != null) {
      cases.add(new Case(Map.copyOf(section), fields, fail));
    }
    return cases;
  }

  /**
   * The blocks of a PKCS#1 vector text ({@code oaep-vect.txt}): each {@code # Name:} comment followed by lines
   * of hex octets, in file order, as (name, bytes) pairs; from the first line that contains {@code from} on.
   */
  static List<Map.Entry<String, byte[]>> hexBlocks(Path file, String from) {
    List<Map.Entry<String, byte[]>> blocks = new ArrayList<>();
    String name = null;
    StringBuilder hex = new StringBuilder();
    boolean started = false;
    for (String raw : lines(file)) {
      String line = raw.strip();
      started = started || line.contains(from);
      if (!started) {
        continue;
      }
      if (line.startsWith("# ") && line.endsWith(":")) {
        if (name != null && hex.length() > 0) {
          blocks.add(Map.entry(name, HexFormat.of().parseHex(hex)));
        }
        name = line.substring(2, line.length() - 1).strip();
        hex.setLength(0);
      } else if (name != null && !line.isEmpty() && line.matches("[0-9a-fA-F ]+")) {
        hex.append(line.replace(" ", ""));
      } else if (name != null && (line.isEmpty() || line.startsWith("#"))) {
        if (hex.length() > 0) {
          blocks.add(Map.entry(name, HexFormat.of().parseHex(hex)));
        }
        name = null;
        hex.setLength(0);
      }
    }
    if (name != null && hex.length() > 0) {
      blocks.add(Map.entry(name, HexFormat.of().parseHex(hex)));
    }
    return blocks;
  }

  private static List<String> lines(Path file) {
    try {
      return Files.readAllLines(file);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the vector file " + file, e);
    }
  }
}
