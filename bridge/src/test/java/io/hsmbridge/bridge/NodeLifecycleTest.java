package io.hsmbridge.bridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.vertx.core.json.JsonObject;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Starting and stopping an in-process node: endpoint.json exists exactly while the node serves. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class NodeLifecycleTest {
  @TempDir
  Path dir;

  @Test
  void endpointJsonExistsExactlyWhileServing() throws Exception {
    TestNodes.Token token = TestNodes.Token.fresh("life");
    Path state = dir.resolve("state");
    NodeMain.Node node = NodeMain.Node.start(TestNodes.config(dir,
        TestNodes.nodeProperties("life-node", token.label(), token.userPin(), token.soPin(), state)));
    Path endpoint = state.resolve("endpoint.json");
    try {
      assertTrue(Files.exists(endpoint));
      JsonObject e = new JsonObject(Files.readString(endpoint, StandardCharsets.UTF_8));
      assertEquals("127.0.0.1", e.getString("host"));
      assertEquals(node.port(), e.getInteger("port"));
      assertTrue(node.port() > 0);
      assertEquals(ProcessHandle.current().pid(), e.getLong("pid"));
      assertEquals("life-node", e.getString("hsmId"));
      assertFalse(Files.exists(state.resolve("endpoint.json.tmp")));
      assertFalse(Files.readString(endpoint).contains(Files.readString(token.userPin()).trim()), "no PIN in it");
      try (Hsm hsm = Hsm.connect("127.0.0.1", e.getInteger("port"))) {
        assertEquals("OK", hsm.health().getString("status"));
        hsm.generateKey(KeySpec.AES_256, "survives restart", null, false);
      }
    } finally {
      node.stop();
    }
    assertFalse(Files.exists(endpoint), "stop removes endpoint.json");
    node.stop(); // idempotent
    HsmBridgeException refused = assertThrows(HsmBridgeException.class, () -> Hsm.connect("127.0.0.1", node.port()));
    assertEquals(ErrorCode.NO_HSM_AVAILABLE, refused.code());

    // the same token opens again (no re-initialisation) and still holds the key
    NodeMain.Node again = NodeMain.Node.start(TestNodes.config(dir,
        TestNodes.nodeProperties("life-node", token.label(), token.userPin(), token.soPin(), state)));
    try (Hsm hsm = Hsm.connect("127.0.0.1", again.port())) {
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
    // initialise the token with its real PINs, then close it again
    NodeMain.Node.start(TestNodes.config(dir,
        TestNodes.nodeProperties("pin-node", token.label(), token.userPin(), token.soPin(), state))).stop();

    Path wrongPin = SoftHsmFixture.writePin(dir.resolve("wrong.pin"));
    String wrong = Files.readString(wrongPin).trim();
    Files.createDirectories(state);
    Files.writeString(state.resolve("endpoint.json"), "{\"port\":1,\"pid\":1}\n"); // stale, from a crash
    Map<String, String> props = TestNodes.nodeProperties("pin-node", token.label(), wrongPin, token.soPin(), state);
    HsmException e = assertThrows(HsmException.class, () -> NodeMain.Node.start(TestNodes.config(dir, props)));
    assertEquals(ErrorCode.TOKEN_LOGIN_FAILED, e.code(), e.getMessage());
    assertTrue(e.clientMessage().startsWith("TOKEN_LOGIN_FAILED: "), e.clientMessage());
    assertFalse(e.clientMessage().contains(wrong), "the PIN is not in the message");
    assertFalse(Files.exists(state.resolve("endpoint.json")), "no endpoint.json (the stale one is gone too)");

    // the right PIN still works afterwards
    NodeMain.Node ok = NodeMain.Node.start(TestNodes.config(dir,
        TestNodes.nodeProperties("pin-node", token.label(), token.userPin(), token.soPin(), state)));
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
        state);
    props.put("token.initialize", "false");
    HsmException e = assertThrows(HsmException.class, () -> NodeMain.Node.start(TestNodes.config(dir, props)));
    assertEquals(ErrorCode.TOKEN_NOT_FOUND, e.code(), e.getMessage());
    assertTrue(e.getMessage().contains(token.label()), "names the token: " + e.getMessage());
    assertFalse(Files.exists(state.resolve("endpoint.json")));
  }

  @Test
  void missingLibraryFailsWithTokenNotFound() {
    TestNodes.Token token = TestNodes.Token.fresh("nolib");
    Path state = dir.resolve("state");
    Map<String, String> props = TestNodes.nodeProperties("nolib", token.label(), token.userPin(), token.soPin(), state);
    props.put("pkcs11.library", dir.resolve("no-such-pkcs11.so").toString());
    HsmException e = assertThrows(HsmException.class, () -> NodeMain.Node.start(TestNodes.config(dir, props)));
    assertEquals(ErrorCode.TOKEN_NOT_FOUND, e.code(), e.getMessage());
    assertFalse(Files.exists(state.resolve("endpoint.json")));
  }

  @Test
  void portInUseFailsCleanlyAndReleasesTheToken() throws Exception {
    TestNodes.Token token = TestNodes.Token.fresh("port");
    Path state = dir.resolve("state");
    Map<String, String> props = TestNodes.nodeProperties("port-node", token.label(), token.userPin(), token.soPin(),
        state);
    try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      props.put("bridge.tcp.port", String.valueOf(taken.getLocalPort()));
      HsmException e = assertThrows(HsmException.class, () -> NodeMain.Node.start(TestNodes.config(dir, props)));
      assertTrue(e.getMessage().contains(String.valueOf(taken.getLocalPort())), e.getMessage());
      assertFalse(Files.exists(state.resolve("endpoint.json")));
    }
    props.put("bridge.tcp.port", "0");
    NodeMain.Node node = NodeMain.Node.start(TestNodes.config(dir, props));
    try (Hsm hsm = Hsm.connect("127.0.0.1", node.port())) {
      assertEquals("OK", hsm.health().getString("status"));
    } finally {
      node.stop();
    }
  }

  @Test
  void nodeConfigRejectsBadBridgeKeys() {
    TestNodes.Token token = TestNodes.Token.fresh("cfg");
    Map<String, String> props = TestNodes.nodeProperties("cfg", token.label(), token.userPin(), token.soPin(),
        dir.resolve("state"));
    for (String[] bad : new String[][] {{"bridge.tcp.port", "70000"}, {"bridge.tcp.port", "-1"},
        {"bridge.tcp.port", "http"}, {"bridge.agentTimeoutMs", "10"}, {"node.eventLoops", "0"}}) {
      Map<String, String> p = new java.util.HashMap<>(props);
      p.put(bad[0], bad[1]);
      HsmException e = assertThrows(HsmException.class, () -> TestNodes.config(dir, p), bad[0] + "=" + bad[1]);
      assertEquals(ErrorCode.CONFIG_INVALID, e.code());
      assertTrue(e.getMessage().contains(bad[0]), e.getMessage());
    }
  }
}
