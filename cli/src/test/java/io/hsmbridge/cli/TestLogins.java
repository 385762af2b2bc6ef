package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * The one way the cluster tests get their users: activate the cluster they started and log in, through
 * the command line as an operator would ({@code cluster activate}, {@code login}, {@code user create}).
 * Sessions live in session files in {@code dir} (never in the cluster's data directory); a test picks one
 * per command with {@link #co()} or {@link #cu()} (the environment {@code HSMBRIDGE_SESSION_FILE}), or sends
 * {@link #coToken()} / {@link #cuToken()} in a raw request's {@code session}.
 */
final class TestLogins {
  static final String ADMIN = "admin";
  static final String CRYPTO_USER = "alice";

  private final Path home;
  private final Path dir;

  private TestLogins(Path home, Path dir) {
    this.home = home;
    this.dir = dir;
  }

  /** The users of a cluster already activated (e.g. restored from a backup): nobody logged in yet. */
  static TestLogins of(Path home, Path dir) {
    return new TestLogins(home, dir);
  }

  /** A new local cluster of 3 HSMs ({@code up --hsms 3}) in a temp home, activated as {@link #activate} does. */
  static TestLogins upAndActivate(String name) throws IOException {
    Path home = Files.createTempDirectory("hsmbridge-" + name);
    CliRun up = CliRun.run(home, "up", "--hsms", "3", "--port", "0");
    assertEquals(0, up.code, up.toString());
    return activate(home, Files.createTempDirectory("hsmbridge-" + name + "-logins"));
  }

  /** Stops the cluster and prints {@code report} under the test's name; keeps it in target/{@code file} unless null. */
  void down(String test, CharSequence report, String file) throws IOException {
    CliRun down = CliRun.run(home, "down");
    System.out.println("=== " + test + " report ===\n" + report + "down: exit " + down.code);
    keepLogs(home, test + "-logs");
    if (file != null) {
      Files.createDirectories(Path.of("target"));
      Files.writeString(Path.of("target", file), report.toString());
    }
  }

  /** Copies every node's log of {@code home} to {@code target/<dirName>/<node>.log}, for post-mortems. */
  static void keepLogs(Path home, String dirName) {
    Path target = Path.of("target", dirName);
    try (java.util.stream.Stream<Path> dirs = Files.list(home)) {
      for (Path d : dirs.filter(Files::isDirectory).toList()) {
        Path log = d.resolve("node.log");
        if (Files.exists(log)) {
          Files.createDirectories(target);
          Files.copy(log, target.resolve(d.getFileName() + ".log"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
      }
    } catch (IOException e) {
      System.out.println("cannot keep the node logs: " + e);
    }
  }

  Path home() {
    return home;
  }

  /** The last 30 lines of every node's log of {@code home}, for a failure message. */
  static String logTails(Path home) {
    StringBuilder b = new StringBuilder();
    try (java.util.stream.Stream<Path> dirs = Files.list(home)) {
      for (Path d : dirs.filter(Files::isDirectory).sorted().toList()) {
        Path log = d.resolve("node.log");
        if (Files.exists(log)) {
          java.util.List<String> lines = Files.readAllLines(log);
          b.append("\n--- ").append(log).append('\n')
              .append(String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size())));
        }
      }
    } catch (IOException e) {
      b.append("\n(cannot read the logs: ").append(e.getMessage()).append(')');
    }
    return b.toString();
  }

  /** Activates the cluster of {@code home}, logs in its admin, creates the crypto user alice and logs her in. */
  static TestLogins activate(Path home, Path dir) {
    TestLogins t = new TestLogins(home, dir);
    t.ok(CliRun.run(home, Map.of(), "cluster", "activate", "--password-file", t.passwordFile(ADMIN).toString()));
    t.login(ADMIN);
    t.createUser(CRYPTO_USER, "CU");
    t.login(CRYPTO_USER);
    return t;
  }

  /** Creates a user as the admin (no admin quorum) with the password {@link #passwordFile} holds. */
  void createUser(String name, String role) {
    ok(CliRun.run(home, co(), "user", "create", name, "--role", role, "--password-file", passwordFile(name).toString()));
  }

  /** Logs {@code user} in; its session goes to {@link #sessionFile}. */
  void login(String user) {
    CliRun r = ok(CliRun.run(home, sessionOf(user), "login", "--user", user, "--password-file", passwordFile(user).toString()));
    assertTrue(r.out.startsWith("logged in as " + user + " ("), r::toString);
  }

  /** Environment for a command run with {@code user}'s session. */
  Map<String, String> sessionOf(String user) {
    return Map.of(SessionFile.ENV, sessionFile(user).toString());
  }

  Map<String, String> co() {
    return sessionOf(ADMIN);
  }

  Map<String, String> cu() {
    return sessionOf(CRYPTO_USER);
  }

  String coToken() {
    return new SessionFile(sessionFile(ADMIN)).token();
  }

  String cuToken() {
    return new SessionFile(sessionFile(CRYPTO_USER)).token();
  }

  Path sessionFile(String user) {
    return dir.resolve(user + ".session");
  }

  /**
   * {@code user}'s password, read from {@link #passwordFile} each time (as an application's password callback
   * reading its secret store would); a new array the caller may clear.
   */
  char[] password(String user) {
    try {
      return Files.readString(passwordFile(user)).strip().toCharArray();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A 0600 file with {@code user}'s password (made up from the name: tests need no secrecy, only 12+ chars). */
  Path passwordFile(String user) {
    Path f = dir.resolve(user + ".password");
    if (!Files.exists(f)) {
      try {
        PrivateFiles.write(f, ("password of " + user + " for tests\n").getBytes(StandardCharsets.UTF_8));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return f;
  }

  private static CliRun ok(CliRun r) {
    assertEquals(0, r.code, r::toString);
    return r;
  }
}
