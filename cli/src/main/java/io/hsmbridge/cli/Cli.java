package io.hsmbridge.cli;

import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Map;

/**
 * What a command may touch of the outside world: streams, environment and the repository directory
 * (from {@code -Dhsmbridge.repo}, set by the ./hsmbridge script). Tests pass their own.
 *
 * @param repoDir null when not started through the script
 */
record Cli(PrintStream out, PrintStream err, InputStream in, Map<String, String> env, String repoDir) {

  static Cli system() {
    return new Cli(System.out, System.err, System.in, System.getenv(), System.getProperty("hsmbridge.repo"));
  }

  /**
   * The data directory: {@code --home}, else {@code $HSMBRIDGE_HOME}, else {@code <repo>/.hsmbridge}
   * (the current directory when the repo is unknown).
   */
  Path home(Path homeOption) {
    Path p;
    String fromEnv = env.get("HSMBRIDGE_HOME");
    if (homeOption != null) {
      p = homeOption;
    } else if (fromEnv != null && !fromEnv.isBlank()) {
      p = Path.of(fromEnv);
    } else if (repoDir != null && !repoDir.isBlank()) {
      p = Path.of(repoDir, ".hsmbridge");
    } else {
      p = Path.of(".hsmbridge");
    }
    return p.toAbsolutePath().normalize();
  }

  boolean debugFromEnv() {
    return "1".equals(env.get("HSMBRIDGE_DEBUG")) || "true".equalsIgnoreCase(env.get("HSMBRIDGE_DEBUG"));
  }
}
