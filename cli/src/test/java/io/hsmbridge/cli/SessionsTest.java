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
import java.util.Base64;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue #11, "Sessions are cluster state", on a real 3-HSM cluster: a session survives the SIGKILL and
 * restart of the bridge and the restart of every process (no new login); a logout is refused at once and
 * stays refused after the bridge restarts (it is recorded in the tokens, not in the bridge); a deleted
 * user's session is refused; a token edited to claim another role is refused by a front door that never
 * saw it, also for the operations the front door answers itself.
 */
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class SessionsTest {
  private static Path home;
  private static TestLogins logins;
  private static final StringBuilder REPORT = new StringBuilder();

  @BeforeAll
  static void up() throws IOException {
    logins = TestLogins.upAndActivate("sessions");
    home = logins.home();
  }

  @AfterAll
  static void down() throws IOException {
    logins.down("SessionsTest", REPORT, null);
  }

  @Test
  void sessionsOutliveEveryProcessAndLogoutDeletionAndForgeriesAreRefusedEverywhere() throws Exception {
    String alice = logins.cuToken();
    String admin = logins.coToken();
    assertServed(alice);

    long restart = restartBridgeAfterSigkill();
    long t0 = System.nanoTime();
    assertServed(alice);
    REPORT.append("bridge SIGKILLed and restarted in ").append(restart).append(" ms; alice's session served at once ("
        + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) + " ms, verified by an agent), no new login\n");
    assertEquals(0, CliRun.run(home, logins.cu(), "key", "list").code, "the CLI's session file still works");

    assertEquals(0, CliRun.run(home, "down").code);
    CliRun up = CliRun.run(home, "up");
    assertEquals(0, up.code, up.toString());
    assertServed(alice);
    assertServed(admin);
    REPORT.append("down + up of every process: alice's and the admin's sessions served, no new login\n");

    // A forged token: alice's, edited to claim CO. A front door that never saw it asks an agent first.
    String forgedCo = withRole(alice, "CO");
    restartBridgeAfterSigkill();
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(forgedCo, "cluster.check"), "answered by the front door itself");
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(forgedCo, "user.list"));
    assertServed(alice);

    // A deleted user's session.
    logins.createUser("dave", "CU");
    logins.login("dave");
    String dave = new SessionFile(logins.sessionFile("dave")).token();
    assertServed(dave);
    assertEquals(0, CliRun.run(home, logins.co(), "user", "delete", "dave").code);
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(dave, "key.list"));

    // Logout: refused at once, and still refused by a restarted bridge (recorded in the tokens).
    try (BridgeClient c = connect()) {
      assertEquals(Boolean.TRUE, c.request(new JsonObject().put("op", "auth.logout").put("session", alice))
          .getBoolean("loggedOut"));
    }
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(alice, "key.list"));
    restartBridgeAfterSigkill();
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(alice, "key.list"), "a restarted bridge refuses a logged-out session");
    assertServed(admin);
    REPORT.append("forged CO token refused (cluster.check, user.list); deleted user's session refused; logged-out"
        + " session refused at once and after a bridge restart\n");

    // A new password ends the user's other sessions everywhere; the session that changed it goes on.
    String password = Files.readString(logins.passwordFile("alice")).strip();
    String first = login("alice", password);
    String second = login("alice", password);
    String newPassword = password + " (changed)";
    try (BridgeClient c = connect()) {
      c.request(new JsonObject().put("op", "user.changePassword").put("name", "alice").put("password", newPassword)
          .put("session", first));
    }
    assertServed(first);
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(second, "key.list"), "the other session ended");
    restartBridgeAfterSigkill();
    assertServed(first);
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(second, "auth.whoami"), "also at a front door that never saw it");
    // An admin's reset ends every session of the user.
    try (BridgeClient c = connect()) {
      c.request(new JsonObject().put("op", "user.changePassword").put("name", "alice").put("password", password)
          .put("session", admin));
    }
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(first, "key.list"), "an admin's reset ends them all");
    assertServed(login("alice", password));
    REPORT.append("password change: the changing session goes on, the user's other session refused (also after a"
        + " bridge restart); an admin's reset ends every session of the user\n");
  }

  /**
   * A front door answers who-am-I and the cluster's status, check, audit and HSM removal itself, so no agent
   * would see a session it holds for them: a logout or deletion made through another front door must count
   * there at once all the same (it did not: hsm2 still answered who-am-I after the logout).
   */
  @Test
  void aFrontDoorThatHoldsASessionHonoursALogoutOrDeletionMadeThroughAnother() throws Exception {
    logins.createUser("erin", "CU");
    logins.login("erin");
    String erin = new SessionFile(logins.sessionFile("erin")).token();
    try (BridgeClient hsm2 = LocalBridge.connect(home, "hsm2", Duration.ofSeconds(30))) {
      assertEquals("erin", hsm2.request(new JsonObject().put("op", "auth.whoami").put("session", erin)).getString("user"));
      try (BridgeClient bridge = connect()) {
        assertEquals(Boolean.TRUE, bridge.request(new JsonObject().put("op", "auth.logout").put("session", erin))
            .getBoolean("loggedOut"));
      }
      HsmBridgeException e = assertThrows(HsmBridgeException.class,
          () -> hsm2.request(new JsonObject().put("op", "auth.whoami").put("session", erin)));
      assertEquals(ErrorCode.NOT_AUTHENTICATED, e.code(), "logged out through the bridge, asked at hsm2");

      logins.createUser("frank", "CO");
      logins.login("frank");
      String frank = new SessionFile(logins.sessionFile("frank")).token();
      assertTrue(hsm2.request(new JsonObject().put("op", "cluster.check").put("session", frank)).containsKey("consistent"),
          "held by hsm2's front door now");
      assertEquals(0, CliRun.run(home, logins.co(), "user", "delete", "frank").code);
      e = assertThrows(HsmBridgeException.class,
          () -> hsm2.request(new JsonObject().put("op", "cluster.check").put("session", frank)));
      assertEquals(ErrorCode.NOT_AUTHENTICATED, e.code(), "deleted through the bridge, a CO's op asked at hsm2");
    }
    REPORT.append("a session hsm2's front door held: refused there at once after a logout through the bridge"
        + " (who-am-I), and after its user's deletion (cluster.check)\n");
  }

  private static String login(String user, String password) {
    try (BridgeClient c = connect()) {
      return c.request(new JsonObject().put("op", "auth.login").put("user", user).put("password", password))
          .getString("session");
    }
  }

  // ----- helpers -----

  private static void assertServed(String session) {
    try (BridgeClient c = connect()) {
      JsonObject reply = c.request(new JsonObject().put("op", "auth.whoami").put("session", session));
      assertTrue(reply.getString("user") != null, reply.encode());
    }
  }

  private static ErrorCode refusal(String session, String op) {
    try (BridgeClient c = connect()) {
      HsmBridgeException e = assertThrows(HsmBridgeException.class,
          () -> c.request(new JsonObject().put("op", op).put("session", session)));
      return e.code();
    }
  }

  private static BridgeClient connect() {
    return LocalBridge.connect(home, Duration.ofSeconds(30));
  }

  /** SIGKILLs the bridge process and starts it again with {@code up}; the milliseconds {@code up} took. */
  private static long restartBridgeAfterSigkill() throws Exception {
    JsonObject ep = new JsonObject(Files.readString(home.resolve("bridge").resolve("endpoint.json")));
    ProcessHandle bridge = ProcessHandle.of(ep.getLong("pid")).orElseThrow();
    bridge.destroyForcibly();
    bridge.onExit().get(30, TimeUnit.SECONDS);
    long t0 = System.nanoTime();
    CliRun up = CliRun.run(home, "up");
    assertEquals(0, up.code, up.toString());
    return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
  }

  /** The token with its role field replaced (its proof unchanged). */
  private static String withRole(String token, String role) {
    String prefix = "hsb1.";
    assertTrue(token.startsWith(prefix), "a session token carries its proof: " + token.substring(0, 5));
    JsonObject carried = new JsonObject(new String(Base64.getUrlDecoder().decode(token.substring(prefix.length())),
        StandardCharsets.UTF_8));
    return prefix + Base64.getUrlEncoder().withoutPadding().encodeToString(carried.put("role", role).encode()
        .getBytes(StandardCharsets.UTF_8));
  }
}
