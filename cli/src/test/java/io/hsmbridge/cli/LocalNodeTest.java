package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.OptionalLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Spawning and stopping real (fake) node processes; no token, no network. */
class LocalNodeTest {
  private static final Path LIB = Path.of("/nonexistent/lib.so"); // only written into node.properties

  @TempDir
  Path tmp;

  private LocalNode node;

  private LocalNode node(Class<?> main) {
    node = new LocalNode(new Home(tmp), main.getName(), Duration.ofSeconds(30));
    return node;
  }

  @AfterEach
  void stop() throws IOException {
    if (node != null) {
      node.stop();
    }
  }

  @Test
  void reportsTheNodesOwnErrorLine() {
    LocalNode n = node(FakeNodes.Failing.class);
    CliException e = assertThrows(CliException.class, () -> n.start(0, LIB));
    assertEquals("token not found: no token labelled hsmbridge-hsm1 (node log: " + n.home().nodeLog() + ")",
        e.getMessage());
    assertFalse(Files.exists(n.home().nodePid()));
  }

  @Test
  void reportsExitCodeAndLastLineWhenTheNodeSaysNothing() throws IOException {
    LocalNode n = node(FakeNodes.Crashing.class);
    Files.createDirectories(n.home().hsmDir());
    Files.writeString(n.home().nodeLog(), "hsmbridge: an error of an earlier run\n");
    CliException e = assertThrows(CliException.class, () -> n.start(0, LIB));
    assertTrue(e.getMessage().startsWith(
        "the node exited with code 3 before it was ready: Exception in thread main: boom"), e.getMessage());
  }

  @Test
  void startsWaitsForTheEndpointAndStops() throws IOException {
    LocalNode n = node(FakeNodes.Ready.class);
    Endpoint ep = n.start(0, LIB);
    assertEquals("hsm1", ep.hsmId());
    assertEquals(ep.pid(), Long.parseLong(Files.readString(n.home().nodePid()).strip()));
    assertEquals(OptionalLong.of(ep.pid()), n.runningPid());
    assertEquals(ep, n.runningEndpoint().orElseThrow());

    assertEquals(OptionalLong.of(ep.pid()), n.stop());
    assertFalse(ProcessHandle.of(ep.pid()).map(ProcessHandle::isAlive).orElse(false));
    assertFalse(Files.exists(n.home().endpointJson()));
    assertFalse(Files.exists(n.home().nodePid()));
    assertTrue(n.runningPid().isEmpty());
    assertTrue(n.stop().isEmpty(), "stop is idempotent");
  }

  @Test
  void aPidThatIsNotTheNodeIsNeverSignalled() throws IOException {
    // Not through node(): @AfterEach must not stop() this one.
    LocalNode n = new LocalNode(new Home(tmp), FakeNodes.Ready.class.getName(), Duration.ofSeconds(30));
    Files.createDirectories(n.home().hsmDir());
    long self = ProcessHandle.current().pid(); // alive, but its command line is not the node's
    Files.writeString(n.home().nodePid(), self + "\n");
    assertTrue(n.runningPid().isEmpty());
    assertTrue(n.stop().isEmpty());
  }
}
