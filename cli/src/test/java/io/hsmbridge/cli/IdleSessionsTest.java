package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue #11 item 2, a session's idle limit is cluster state, on a real 3-HSM cluster with a standalone bridge
 * ({@code auth.sessionIdleSeconds=8} on every front door): a session used at hsm2's front door only stays
 * alive at hsm1's, where it was made and then left unused for longer than the limit; once idle everywhere it
 * is refused by a front door that never held it, though an agent (which does not see idleness) would vouch
 * for it. Before front doors reported their sessions' use to each other, hsm1 ended it after 8 s of
 * silence there, and the bridge took it on an agent's word.
 */
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class IdleSessionsTest {
  private static final int IDLE_SECONDS = 8;
  private static Path home;
  private static TestLogins logins;
  private static final StringBuilder REPORT = new StringBuilder();

  @BeforeAll
  static void up() throws IOException {
    logins = TestLogins.upAndActivate("idle-sessions");
    home = logins.home();
    assertEquals(0, CliRun.run(home, "down").code);
    // What an operator does: a front-door setting in HOME/front-door.properties, which `up` gives every front door.
    Files.writeString(home.resolve(ClusterLayout.FRONT_DOOR_OVERRIDES), "auth.sessionIdleSeconds=" + IDLE_SECONDS + "\n",
        StandardCharsets.UTF_8);
    CliRun up = CliRun.run(home, "up");
    assertEquals(0, up.code, up.toString());
    for (String node : new String[] {"hsm1", "hsm2", "hsm3", "bridge"}) {
      assertTrue(Files.readString(home.resolve(node).resolve("node.properties"))
          .contains("auth.sessionIdleSeconds=" + IDLE_SECONDS), node + "'s node.properties has the setting");
    }
  }

  @AfterAll
  static void down() throws IOException {
    logins.down("IdleSessionsTest", REPORT, null);
  }

  @Test
  void aSessionIsIdleOnlyWhenIdleAtEveryFrontDoor() throws Exception {
    String password = Files.readString(logins.passwordFile(TestLogins.CRYPTO_USER)).strip();
    String session;
    try (BridgeClient hsm1 = at("hsm1")) {
      session = hsm1.request(new JsonObject().put("op", "auth.login").put("user", TestLogins.CRYPTO_USER)
          .put("password", password)).getString("session");
    }
    long lastUse;
    try (BridgeClient hsm2 = at("hsm2")) {
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(IDLE_SECONDS * 2L);
      do { // used at hsm2 only, every half second, for twice the limit
        hsm2.request(new JsonObject().put("op", "key.list").put("session", session));
        lastUse = System.nanoTime();
        Thread.sleep(500);
      } while (System.nanoTime() < until);
    }
    try (BridgeClient hsm1 = at("hsm1")) {
      assertEquals(TestLogins.CRYPTO_USER, whoami(hsm1, session),
          "hsm1 made the session and has not seen it for " + IDLE_SECONDS * 2 + " s, but it was used at hsm2");
    }
    REPORT.append("a session made at hsm1, then used at hsm2 only for ").append(IDLE_SECONDS * 2)
        .append(" s (idle limit ").append(IDLE_SECONDS).append(" s): still served at hsm1\n");

    Thread.sleep(TimeUnit.SECONDS.toMillis(IDLE_SECONDS + 2)); // now idle at every front door
    long idleMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - lastUse);
    try (BridgeClient bridge = LocalBridge.connect(home, Duration.ofSeconds(30))) {
      HsmBridgeException e = assertThrows(HsmBridgeException.class, () -> whoami(bridge, session));
      assertEquals(ErrorCode.NOT_AUTHENTICATED, e.code(), "idle " + idleMs + " ms everywhere, asked at the bridge,"
          + " which never held it");
    }
    try (BridgeClient hsm2 = at("hsm2")) {
      HsmBridgeException e = assertThrows(HsmBridgeException.class,
          () -> hsm2.request(new JsonObject().put("op", "key.list").put("session", session)));
      assertEquals(ErrorCode.NOT_AUTHENTICATED, e.code(), "idle " + idleMs + " ms, asked at hsm2, which held it");
    }
    REPORT.append("then unused for ").append(idleMs).append(" ms: refused at the bridge (never held it; an agent would"
        + " have vouched for it) and at hsm2\n");
  }

  private static BridgeClient at(String node) {
    return LocalBridge.connect(home, node, Duration.ofSeconds(30));
  }

  private static String whoami(BridgeClient c, String session) {
    return c.request(new JsonObject().put("op", "auth.whoami").put("session", session)).getString("user");
  }
}
