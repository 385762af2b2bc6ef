package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Spawning and stopping real (fake) node processes; no token, no network. */
class LocalNodeTest {
  private static final Path LIB = Path.of("/nonexistent/lib.so"); // only written into node.properties

  @TempDir
  Path tmp;

  private NodeDir dir;
  private LocalNode node;

  @BeforeEach
  void prepare() throws IOException {
    dir = prepareNode(new Home(tmp));
  }

  /** An HSM's directory (token files) with the keys the fake nodes read: its id and state directory. */
  private static NodeDir prepareNode(Home home) throws IOException {
    NodeLayout.prepareHome(home);
    NodeDir d = home.hsm(Home.FIRST_HSM);
    NodeLayout.prepareToken(d);
    Files.writeString(d.nodeProperties(), "hsm.id=" + d.name() + "\npkcs11.library=" + LIB + "\nstate.dir=" + d.dir() + "\n");
    return d;
  }

  private LocalNode node(Class<?> main) {
    node = new LocalNode(dir, main.getName(), Duration.ofSeconds(30));
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
    CliException e = assertThrows(CliException.class, n::start);
    assertEquals("token not found: no token labelled hsmbridge-hsm1 (node log: " + dir.nodeLog() + ")",
        e.getMessage());
    assertFalse(Files.exists(dir.nodePid()));
  }

  @Test
  void reportsExitCodeAndLastLineWhenTheNodeSaysNothing() throws IOException {
    LocalNode n = node(FakeNodes.Crashing.class);
    Files.writeString(dir.nodeLog(), "hsmbridge: an error of an earlier run\n");
    CliException e = assertThrows(CliException.class, n::start);
    assertTrue(e.getMessage().startsWith(
        "the node exited with code 3 before it was ready: Exception in thread main: boom"), e.getMessage());
    assertEquals(List.of("Exception in thread main: boom"), n.logTail(0, 1));
  }

  @Test
  void startsWaitsForTheEndpointAndStops() throws IOException {
    LocalNode n = node(FakeNodes.Ready.class);
    Endpoint ep = n.start();
    assertEquals("hsm1", ep.hsmId());
    assertEquals(ep.pid(), Long.parseLong(Files.readString(dir.nodePid()).strip()));
    assertEquals(OptionalLong.of(ep.pid()), n.runningPid());
    assertEquals(ep, n.runningEndpoint().orElseThrow());

    assertEquals(OptionalLong.of(ep.pid()), n.stop());
    assertFalse(ProcessHandle.of(ep.pid()).map(ProcessHandle::isAlive).orElse(false));
    assertFalse(Files.exists(dir.endpointJson()));
    assertFalse(Files.exists(dir.nodePid()));
    assertTrue(n.runningPid().isEmpty());
    assertTrue(n.stop().isEmpty(), "stop is idempotent");
  }

  @Test
  void aPidThatIsNotTheNodeIsNeverSignalled() throws IOException {
    // Not through node(): @AfterEach must not stop() this one.
    LocalNode n = new LocalNode(dir, FakeNodes.Ready.class.getName(), Duration.ofSeconds(30));
    long self = ProcessHandle.current().pid(); // alive, but its command line is not the node's
    Files.writeString(dir.nodePid(), self + "\n");
    assertTrue(n.runningPid().isEmpty());
    assertTrue(n.stop().isEmpty());
  }

  @Test
  void anotherMembersProcessIsNotThisOne() throws IOException {
    LocalNode n = node(FakeNodes.Ready.class);
    Endpoint ep = n.start();
    NodeDir other = prepareNode(new Home(tmp.resolve("other")));
    Files.writeString(other.nodePid(), ep.pid() + "\n"); // same main class, another node.properties
    LocalNode stranger = new LocalNode(other, FakeNodes.Ready.class.getName(), Duration.ofSeconds(30));
    assertTrue(stranger.runningPid().isEmpty());
    assertEquals(Map.of(), LocalNode.stopAll(List.of(stranger)));
    assertTrue(n.runningPid().isPresent(), "still running");
  }
}
