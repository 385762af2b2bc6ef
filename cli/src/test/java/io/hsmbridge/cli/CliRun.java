package io.hsmbridge.cli;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Runs {@link Main#run} in-process with captured streams and a controlled environment. */
final class CliRun {
  final int code;
  final String out;
  final String err;

  private CliRun(int code, String out, String err) {
    this.code = code;
    this.out = out;
    this.err = err;
  }

  static CliRun run(Path home, Map<String, String> extraEnv, String... args) {
    return runWithInput(home, extraEnv, "", args);
  }

  /** Runs with {@code stdin} as standard input (and no terminal: secrets are read from it). */
  static CliRun runWithInput(Path home, Map<String, String> extraEnv, String stdin, String... args) {
    Map<String, String> env = new HashMap<>(extraEnv);
    env.put("HSMBRIDGE_HOME", home.toString());
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code;
    try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
      code = Main.run(args, new Cli(o, e, new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)), env, null));
    }
    return new CliRun(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  static CliRun run(Path home, String... args) {
    return run(home, Map.of(), args);
  }

  List<String> errLines() {
    return err.lines().toList();
  }

  @Override
  public String toString() {
    return "exit " + code + "\n--- out:\n" + out + "--- err:\n" + err;
  }
}
