package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.client.Session;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Where the session file is, how it is written (0600, atomically) and how the commands use it. */
class SessionFileTest {
  private static final String TOKEN = "Zm9vYmFyLXRva2VuLXRoYXQtbXVzdC1uZXZlci1iZS1wcmludGVk";
  private static final Session ALICE = new Session(TOKEN, "alice", "CU", 1_900_000_000_000L);

  @TempDir
  Path home;

  @Test
  void optionBeatsEnvironmentBeatsTheDataDirectory() {
    Home h = new Home(home);
    Path opt = home.resolve("opt.session");
    Path env = home.resolve("env.session");
    Map<String, String> withEnv = Map.of(SessionFile.ENV, env.toString());
    assertEquals(opt, SessionFile.locate(opt, withEnv, h).path());
    assertEquals(env, SessionFile.locate(null, withEnv, h).path());
    assertEquals(home.resolve("session"), SessionFile.locate(null, Map.of(SessionFile.ENV, " "), h).path());
    assertEquals(home.resolve("session"), SessionFile.locate(null, Map.of(), h).path());
  }

  @Test
  void writtenOwnerOnlyAndReadBack() throws IOException {
    SessionFile f = new SessionFile(home.resolve("sub/dir/session"));
    assertEquals(Optional.empty(), f.read());
    f.write(ALICE);
    assertEquals(PrivateFiles.OWNER_ONLY, Files.getPosixFilePermissions(f.path()));
    assertEquals("rwx------", java.nio.file.attribute.PosixFilePermissions.toString(
        Files.getPosixFilePermissions(f.path().getParent())), "a directory it creates is private too");
    assertEquals(Optional.of(ALICE), f.read());
    assertEquals(TOKEN, f.token());

    Session bob = new Session("other", "bob", "CO", 1L);
    f.write(bob);
    assertEquals(Optional.of(bob), f.read());
    assertEquals(PrivateFiles.OWNER_ONLY, Files.getPosixFilePermissions(f.path()));
    try (Stream<Path> left = Files.list(f.path().getParent())) {
      assertEquals(List.of(f.path()), left.toList(), "no temporary file is left behind");
    }
    assertTrue(f.delete());
    assertFalse(f.delete());
  }

  @Test
  void aDamagedFileIsNamedButNotQuoted() throws IOException {
    Path p = Files.writeString(home.resolve("session"), "{\"session\":\"" + TOKEN + "\"}");
    CliException e = assertThrows(CliException.class, () -> new SessionFile(p).read());
    assertEquals("the session file " + p + " is damaged; delete it and log in again", e.getMessage());
    Files.writeString(p, TOKEN);
    assertFalse(assertThrows(CliException.class, () -> new SessionFile(p).read()).getMessage().contains(TOKEN));
  }

  @Test
  void commandsReadTheSessionFileByPrecedence() throws IOException {
    Path stored = home.resolve("stored.session");
    new SessionFile(stored).write(ALICE);
    Map<String, String> envToNothing = Map.of(SessionFile.ENV, home.resolve("absent").toString());
    // No session where the environment points: whoami says how to log in, without a network round trip.
    CliRun r = CliRun.run(home, envToNothing, "whoami");
    assertEquals(ExitCodes.FAILURE, r.code, r::toString);
    assertEquals(List.of("hsmbridge: " + AuthHints.NOT_LOGGED_IN), r.errLines());
    // The option wins (on the root command or the subcommand): the session is found, then there is no cluster.
    for (String[] args : List.of(new String[] {"--session-file", stored.toString(), "whoami"},
        new String[] {"whoami", "--session-file", stored.toString()})) {
      CliRun o = CliRun.run(home, envToNothing, args);
      assertEquals(List.of("hsmbridge: " + CliException.NOT_RUNNING), o.errLines(), o::toString);
    }
    CliRun e = CliRun.run(home, Map.of(SessionFile.ENV, stored.toString()), "whoami");
    assertEquals(List.of("hsmbridge: " + CliException.NOT_RUNNING), e.errLines(), e::toString);
    assertFalse((r.out + r.err + e.out + e.err).contains(TOKEN));
  }

  @Test
  void logoutWithoutASessionSaysSoAndWithoutAClusterStillDeletesTheFile() throws IOException {
    CliRun none = CliRun.run(home, "logout");
    assertEquals(0, none.code, none::toString);
    assertEquals("not logged in (no " + home.resolve("session") + ")\n", none.out);

    new SessionFile(home.resolve("session")).write(ALICE);
    CliRun r = CliRun.run(home, "logout");
    assertEquals(ExitCodes.FAILURE, r.code, r::toString);
    assertEquals(List.of("hsmbridge: deleted " + home.resolve("session") + ", but the bridge was not told ("
        + CliException.NOT_RUNNING + "); the session ends by itself when idle"), r.errLines());
    assertFalse(Files.exists(home.resolve("session")));
  }
}
