package io.hsmbridge.bridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.agent.node.NodeRole;
import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.vertx.core.json.JsonObject;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Starting and stopping a one-HSM cluster's node in this process, as {@link NodeMain} starts it: an HSM
 * host (agent, Raft group of one, users) with its front door. endpoint.json exists exactly while it
 * serves; a start that fails leaves none and releases the token.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class NodeLifecycleTest {
  @TempDir
  Path dir;

  private TestNodes.Pki pki;

  @BeforeEach
  void pki() {
    pki = TestNodes.Pki.in(dir.resolve("pki"));
  }

  @Test
  void endpointJsonExistsExactlyWhileServing() throws Exception {
    TestNodes.Token token = TestNodes.Token.fresh("life");
    Path state = dir.resolve("state");
    Map<String, String> props = TestNodes.nodeProperties("life-node", token.label(), token.userPin(), token.soPin(),
        state, pki);
    NodeConfig config = TestNodes.config(dir, props);
    // The defaults are what an HSM host of a cluster runs: no other kind of node exists.
    assertEquals(NodeRole.AGENT, config.role());
    assertTrue(config.node().frontDoor(), "an HSM host is a front door by default");
    assertNotNull(config.raft(), "a Raft group, of one");

    NodeMain.Running node = NodeMain.start(config);
    Path endpoint = state.resolve("endpoint.json");
    int port;
    TestNodes.CryptoUser user;
    try {
      assertTrue(Files.exists(endpoint));
      JsonObject e = TestNodes.endpoint(state);
      assertEquals("agent", e.getString("role"));
      assertEquals("127.0.0.1", e.getString("host"));
      port = e.getInteger("port");
      assertTrue(port > 0);
      assertTrue(e.getBoolean("tls"), "the front door runs TLS with its cluster certificate");
      assertEquals(ProcessHandle.current().pid(), e.getLong("pid"));
      assertEquals("life-node", e.getString("hsmId"));
      assertFalse(Files.exists(state.resolve("endpoint.json.tmp")));
      assertFalse(Files.readString(endpoint).contains(Files.readString(token.userPin()).trim()), "no PIN in it");
      try (Hsm hsm = Hsm.connect("127.0.0.1", port, pki.clientTls())) {
        assertEquals("OK", hsm.health().getString("status"));
        assertEquals(ErrorCode.NOT_AUTHENTICATED, assertThrows(HsmBridgeException.class,
            () -> hsm.generateKey(KeySpec.AES_256, "nobody", null, false)).code(), "keys need a logged-in user");
        user = TestNodes.activate(hsm);
        hsm.generateKey(KeySpec.AES_256, "survives restart", null, false);
      }
    } finally {
      node.stop();
    }
    assertFalse(Files.exists(endpoint), "stop removes endpoint.json");
    node.stop(); // idempotent
    HsmBridgeException refused = assertThrows(HsmBridgeException.class,
        () -> Hsm.connect("127.0.0.1", port, pki.clientTls()));
    assertEquals(ErrorCode.NO_HSM_AVAILABLE, refused.code());

    // the same token and Raft log open again (no re-initialisation, no second cluster key); the key is there
    NodeMain.Running again = NodeMain.start(TestNodes.config(dir, props));
    try (Hsm hsm = Hsm.connect("127.0.0.1", TestNodes.endpoint(state).getInteger("port"), pki.clientTls())) {
      hsm.login(user.name(), user.password());
      assertEquals(1, hsm.listKeys("survives restart").size());
    } finally {
      again.stop();
    }
    assertFalse(Files.exists(endpoint));
  }

  @Test
  void wrongPinFailsWithTokenLoginFailedAndWritesNoEndpoint() throws Exception {
    TestNodes.Token token = TestNodes.Token.fresh("pin");
    Path state = dir.resolve("state");
    Map<String, String> props = TestNodes.nodeProperties("pin-node", token.label(), token.userPin(), token.soPin(),
        state, pki);
    // initialise the token with its real PINs, then close it again
    NodeMain.start(TestNodes.config(dir, props)).stop();

    Path wrongPin = SoftHsmFixture.writePin(dir.resolve("wrong.pin"));
    String wrong = Files.readString(wrongPin).trim();
    Files.createDirectories(state);
    Files.writeString(state.resolve("endpoint.json"), "{\"port\":1,\"pid\":1}\n"); // stale, from a crash
    Map<String, String> wrongProps = new HashMap<>(props);
    wrongProps.put("pin.user.file", wrongPin.toString());
    HsmException e = assertThrows(HsmException.class, () -> NodeMain.start(TestNodes.config(dir, wrongProps)));
    assertEquals(ErrorCode.TOKEN_LOGIN_FAILED, e.code(), e.getMessage());
    assertTrue(e.clientMessage().startsWith("TOKEN_LOGIN_FAILED: "), e.clientMessage());
    assertFalse(e.clientMessage().contains(wrong), "the PIN is not in the message");
    assertFalse(Files.exists(state.resolve("endpoint.json")), "no endpoint.json (the stale one is gone too)");

    // the right PIN still works afterwards
    NodeMain.Running ok = NodeMain.start(TestNodes.config(dir, props));
    try {
      assertTrue(Files.exists(state.resolve("endpoint.json")));
    } finally {
      ok.stop();
    }
  }

  @Test
  void missingTokenFailsWithTokenNotFoundAndWritesNoEndpoint() {
    TestNodes.Token token = TestNodes.Token.fresh("absent");
    Path state = dir.resolve("state");
    Map<String, String> props = TestNodes.nodeProperties("absent-node", token.label(), token.userPin(), token.soPin(),
        state, pki);
    props.put("token.initialize", "false");
    HsmException e = assertThrows(HsmException.class, () -> NodeMain.start(TestNodes.config(dir, props)));
    assertEquals(ErrorCode.TOKEN_NOT_FOUND, e.code(), e.getMessage());
    assertTrue(e.getMessage().contains(token.label()), "names the token: " + e.getMessage());
    assertFalse(Files.exists(state.resolve("endpoint.json")));
  }

  @Test
  void aStateDirThatIsNotADirectoryFailsWithConfigInvalid() throws Exception {
    TestNodes.Token token = TestNodes.Token.fresh("nostate");
    Path state = dir.resolve("state-nostate");
    Map<String, String> props = TestNodes.nodeProperties("nostate", token.label(), token.userPin(), token.soPin(),
        state, pki);
    Files.delete(state);
    Files.writeString(state, "a file where the state directory should be\n");
    HsmException e = assertThrows(HsmException.class, () -> NodeMain.start(TestNodes.config(dir, props)));
    assertEquals(ErrorCode.CONFIG_INVALID, e.code(), e.getMessage());
    assertTrue(e.getMessage().contains("state.dir"), "names the setting: " + e.getMessage());
  }

  @Test
  void missingLibraryFailsWithTokenNotFound() {
    TestNodes.Token token = TestNodes.Token.fresh("nolib");
    Path state = dir.resolve("state");
    Map<String, String> props = TestNodes.nodeProperties("nolib", token.label(), token.userPin(), token.soPin(), state,
        pki);
    props.put("pkcs11.library", dir.resolve("no-such-pkcs11.so").toString());
    HsmException e = assertThrows(HsmException.class, () -> NodeMain.start(TestNodes.config(dir, props)));
    assertEquals(ErrorCode.TOKEN_NOT_FOUND, e.code(), e.getMessage());
    assertFalse(Files.exists(state.resolve("endpoint.json")));
  }

  @Test
  void portInUseFailsCleanlyAndReleasesTheToken() throws Exception {
    TestNodes.Token token = TestNodes.Token.fresh("port");
    Path state = dir.resolve("state");
    Map<String, String> props = TestNodes.nodeProperties("port-node", token.label(), token.userPin(), token.soPin(),
        state, pki);
    try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      props.put("bridge.tcp.port", String.valueOf(taken.getLocalPort()));
      HsmException e = assertThrows(HsmException.class, () -> NodeMain.start(TestNodes.config(dir, props)));
      assertTrue(e.getMessage().contains(String.valueOf(taken.getLocalPort())), e.getMessage());
      assertFalse(Files.exists(state.resolve("endpoint.json")));
    }
    // the token, the Raft port and the membership port were released: the same node starts on port 0
    props.put("bridge.tcp.port", "0");
    NodeMain.Running node = NodeMain.start(TestNodes.config(dir, props));
    try (Hsm hsm = Hsm.connect("127.0.0.1", TestNodes.endpoint(state).getInteger("port"), pki.clientTls())) {
      assertEquals("OK", hsm.health().getString("status"));
    } finally {
      node.stop();
    }
  }

  @Test
  void nodeConfigRejectsBadKeys() {
    TestNodes.Token token = TestNodes.Token.fresh("cfg");
    Map<String, String> props = TestNodes.nodeProperties("cfg", token.label(), token.userPin(), token.soPin(),
        dir.resolve("state"), pki);
    for (String[] bad : new String[][] {{"bridge.tcp.port", "70000"}, {"bridge.tcp.port", "-1"},
        {"bridge.tcp.port", "http"}, {"bridge.agentTimeoutMs", "10"}, {"node.eventLoops", "0"},
        {"node.role", "all"}, {"node.role", "everything"}, {"cluster.enabled", "false"}}) {
      Map<String, String> p = new HashMap<>(props);
      p.put(bad[0], bad[1]);
      HsmException e = assertThrows(HsmException.class, () -> TestNodes.config(dir, p), bad[0] + "=" + bad[1]);
      assertEquals(ErrorCode.CONFIG_INVALID, e.code());
      assertTrue(e.getMessage().contains(bad[0]), e.getMessage());
    }
    Map<String, String> all = new HashMap<>(props);
    all.put("node.role", "all");
    HsmException removed = assertThrows(HsmException.class, () -> TestNodes.config(dir, all));
    assertTrue(removed.getMessage().contains("node.role=all was removed"), removed.getMessage());
  }
}
