package io.hsmbridge.containers;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The measured figures of the container scenarios: every line is printed as it comes and the whole report
 * is written to {@code target/container-scenarios.txt} when the shared cluster closes (the convention of
 * cli's ClusterScenarioTest, which writes {@code target/cluster-scenarios.txt}). Thread-safe.
 */
final class Report {
  static final Path FILE = Path.of("target", "container-scenarios.txt");
  private static final StringBuilder LINES = new StringBuilder();

  private Report() {}

  static synchronized void note(String line) {
    LINES.append(line).append('\n');
    System.out.println("[containers] " + line);
  }

  /** Prints the report and writes it to {@link #FILE}. */
  static synchronized void write() {
    String text = "=== container scenarios (hsmbridge in containers, Testcontainers) ===\n" + LINES;
    System.out.println(text);
    try {
      Files.createDirectories(FILE.getParent());
      Files.writeString(FILE, text);
    } catch (IOException e) {
      System.out.println("cannot write " + FILE + ": " + e);
    }
  }

  static long ms(long startNanos) {
    return (System.nanoTime() - startNanos) / 1_000_000;
  }

  static String seconds(long millis) {
    return String.format("%.1f s", millis / 1000.0);
  }
}
