package io.hsmbridge.cli;

import java.io.Console;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Map;

/**
 * What a command may touch of the outside world: streams, environment, the terminal and the repository
 * directory (from {@code -Dhsmbridge.repo}, set by the ./hsmbridge script). Tests pass their own.
 *
 * @param terminal reads a secret without echo; null when there is no terminal (then secrets come from
 *     files, the environment or one line of standard input)
 * @param repoDir null when not started through the script
 */
record Cli(PrintStream out, PrintStream err, InputStream in, Map<String, String> env, String repoDir,
    Terminal terminal) {

  /** Prompts on the controlling terminal without echo. */
  @FunctionalInterface
  interface Terminal {
    /** The line typed (without its newline), or null at end of input. */
    char[] readSecret(String prompt);
  }

  /** Without a terminal: what tests and child processes use. */
  Cli(PrintStream out, PrintStream err, InputStream in, Map<String, String> env, String repoDir) {
    this(out, err, in, env, repoDir, null);
  }

  static Cli system() {
    Console console = System.console();
    Terminal terminal = console == null ? null : prompt -> console.readPassword("%s", prompt);
    return new Cli(System.out, System.err, System.in, System.getenv(), System.getProperty("hsmbridge.repo"), terminal);
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
