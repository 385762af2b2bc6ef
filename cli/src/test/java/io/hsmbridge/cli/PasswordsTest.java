package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;

/** Password sources in their order: file, environment, terminal, one line of stdin; never argv. */
class PasswordsTest {
  private static final String ENV = Passwords.PASSWORD_ENV;
  private static final java.util.Set<String> SECRET_WORDS =
      java.util.Set.of("password", "pass", "passphrase", "secret", "pin", "token", "session");

  @TempDir
  Path dir;

  private final List<String> prompts = new ArrayList<>();

  private Cli cli(Map<String, String> env, String stdin, String... typed) {
    Deque<String> lines = new ArrayDeque<>(List.of(typed));
    Cli.Terminal terminal = typed.length == 0 ? null : prompt -> {
      prompts.add(prompt);
      String l = lines.poll();
      return l == null ? null : l.toCharArray();
    };
    PrintStream sink = new PrintStream(new java.io.ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    return new Cli(sink, sink, new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)), env, null, terminal);
  }

  private static char[] read(Cli cli, Path file, boolean confirm) {
    return Passwords.read(cli, file, ENV, "password for alice", confirm);
  }

  @Test
  void aFileWinsAndOnlyItsFirstLineCounts() throws IOException {
    Path f = Files.writeString(dir.resolve("pw"), "from the file\r\nsecond line\n");
    assertArrayEquals("from the file".toCharArray(), read(cli(Map.of(ENV, "from env"), "stdin\n", "typed"), f, false));
    Files.writeString(f, "no newline at the end ünïcode");
    assertArrayEquals("no newline at the end ünïcode".toCharArray(), read(cli(Map.of(), ""), f, false));
    Files.writeString(f, "\nsecond");
    assertEquals(f + " is empty: it should hold the password for alice on its first line",
        assertThrows(CliException.class, () -> read(cli(Map.of(), ""), f, false)).getMessage());
    Path missing = dir.resolve("missing");
    assertEquals("no such file: " + missing + " (the password for alice)",
        assertThrows(CliException.class, () -> read(cli(Map.of(), ""), missing, false)).getMessage());
  }

  @Test
  void thenTheEnvironmentThenTheTerminalThenStdin() {
    assertArrayEquals("from env".toCharArray(), read(cli(Map.of(ENV, "from env"), "stdin\n", "typed"), null, false));
    assertArrayEquals("typed".toCharArray(), read(cli(Map.of(ENV, ""), "stdin\n", "typed"), null, false));
    assertEquals(List.of("Password for alice: "), prompts);
    assertArrayEquals("first line".toCharArray(), read(cli(Map.of(), "first line\r\nsecond\n"), null, false));
    assertArrayEquals("no newline".toCharArray(), read(cli(Map.of(), "no newline"), null, false));
  }

  @Test
  void aNewPasswordIsTypedTwice() {
    assertArrayEquals("twice the same".toCharArray(), read(cli(Map.of(), "", "twice the same", "twice the same"), null, true));
    assertEquals(List.of("Password for alice: ", "The same again: "), prompts);
    assertEquals("the two password for alices differ; nothing was changed",
        assertThrows(CliException.class, () -> read(cli(Map.of(), "", "one", "other"), null, true)).getMessage());
  }

  @Test
  void withNoSourceTheErrorNamesThemAll() {
    assertEquals("no password for alice: give it in a file (--password-file FILE), in $" + ENV
            + ", at a terminal, or as one line on standard input",
        assertThrows(CliException.class, () -> read(cli(Map.of(), ""), null, false)).getMessage());
    assertEquals("no password for alice: give it in a file (--password-file FILE), in $" + ENV
            + ", at a terminal, or as one line on standard input",
        assertThrows(CliException.class, () -> read(cli(Map.of(), "\n"), null, false)).getMessage());
  }

  /** Every option and parameter of every command: a secret may be named only as a file. */
  @Test
  void noCommandTakesAPasswordOrKeyOnTheCommandLine() {
    CommandLine root = new CommandLine(new HsmbridgeCommand(cli(Map.of(), "")));
    List<String> checked = new ArrayList<>();
    walk(root, checked);
    assertTrue(checked.contains("hsmbridge login --password-file"), checked::toString);
    assertTrue(checked.contains("hsmbridge cluster activate --preco-password-file"), checked::toString);
    assertTrue(checked.contains("hsmbridge user passwd --password-file"), checked::toString);
    assertTrue(checked.contains("hsmbridge key delete --quorum-token"), checked::toString);
    assertTrue(checked.contains("hsmbridge login --session-file"), checked::toString);
  }

  private static void walk(CommandLine c, List<String> checked) {
    String cmd = c.getCommandSpec().qualifiedName();
    for (OptionSpec o : c.getCommandSpec().options()) {
      for (String name : o.names()) {
        List<String> words = List.of(name.toLowerCase(Locale.ROOT).replaceFirst("^-+", "").split("-"));
        if (words.stream().anyMatch(SECRET_WORDS::contains)) {
          assertEquals(Path.class, o.typeInfo().getType(), cmd + " " + name + " must name a file, not carry the secret");
          checked.add(cmd + " " + name);
        }
      }
    }
    for (PositionalParamSpec p : c.getCommandSpec().positionalParameters()) {
      String label = p.paramLabel().toLowerCase(Locale.ROOT);
      assertTrue(!label.contains("pass") && !label.contains("secret"), cmd + " " + p.paramLabel());
    }
    c.getSubcommands().values().forEach(s -> walk(s, checked));
  }

  @Test
  void loginReadsOneLineOfStdinWhenNothingElseGivesAPassword() {
    Path home = dir.resolve("home");
    CliRun r = CliRun.runWithInput(home, Map.of(), "the password\n", "login", "--user", "alice");
    // It got as far as connecting: the password was found.
    assertEquals(List.of("hsmbridge: " + CliException.NOT_RUNNING), r.errLines(), r::toString);
    CliRun none = CliRun.runWithInput(home, Map.of(), "", "login", "--user", "alice");
    assertTrue(none.err.startsWith("hsmbridge: no password for alice: give it in a file"), none::toString);
  }
}
