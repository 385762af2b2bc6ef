package io.hsmbridge.bridge.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Op;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * The front door with a controlled clock: session expiry (idle and absolute), what a client may not
 * smuggle in (principal; the quorum document and MFA challenge fields of earlier builds), role checks.
 * Quorum tokens and MFA challenges are the agents' now (cluster-agent {@code OneTimeCredentialsTest}).
 */
class FrontDoorTest {
  private final AtomicLong now = new AtomicLong(1_000_000);
  private final FrontDoor door = new FrontDoor(Duration.ofMinutes(15), Duration.ofMinutes(60), now::get);

  private String login(String user, Role role) {
    FrontDoor.Admitted a = door.admit(Op.AUTH_LOGIN, new JsonObject().put("op", "auth.login").put("user", user));
    return door.succeeded(Op.AUTH_LOGIN, a, new JsonObject().put("user", user).put("role", role.name())).getString("session");
  }

  private static ErrorCode refusal(Runnable r) {
    return assertThrows(HsmException.class, r::run).code();
  }

  @Test
  void sessionsEndWhenIdleOrTooOldOrLoggedOut() {
    String s = login("alice", Role.CU);
    assertTrue(s.length() >= 43, "256 random bits");
    assertNotEquals(s, login("alice", Role.CU));
    JsonObject list = new JsonObject().put("op", "key.list").put("session", s);
    for (int i = 0; i < 4; i++) { // used every 14 minutes: stays alive up to the absolute limit
      now.addAndGet(Duration.ofMinutes(14).toMillis());
      assertEquals("alice", door.admit(Op.KEY_LIST, list).session().user);
    }
    now.addAndGet(Duration.ofMinutes(14).toMillis()); // 70 min after login, past the 60 min limit
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(() -> door.admit(Op.KEY_LIST, list)));

    String idle = login("bob", Role.CU);
    now.addAndGet(Duration.ofMinutes(15).toMillis());
    assertEquals(ErrorCode.NOT_AUTHENTICATED,
        refusal(() -> door.admit(Op.KEY_LIST, new JsonObject().put("op", "key.list").put("session", idle))));

    String out = login("carol", Role.CU);
    FrontDoor.Admitted a = door.admit(Op.AUTH_LOGOUT, new JsonObject().put("op", "auth.logout").put("session", out));
    door.succeeded(Op.AUTH_LOGOUT, a, new JsonObject().put("loggedOut", true)); // the agent recorded it in the log
    assertEquals(ErrorCode.NOT_AUTHENTICATED,
        refusal(() -> door.admit(Op.AUTH_WHOAMI, new JsonObject().put("op", "auth.whoami").put("session", out))));
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(() -> door.admit(Op.KEY_LIST, new JsonObject().put("op", "key.list"))));
  }

  @Test
  void theSessionTokenCarriesTheAgentsProofAndAnotherFrontDoorTakesItOnlyOnceAnAgentVerifiedIt() {
    JsonObject proof = new JsonObject().put("sessionId", "abc").put("issuedAt", now.get())
        .put("expiresAt", now.get() + Duration.ofHours(8).toMillis()).put("proof", "AAAA");
    FrontDoor.Admitted login = door.admit(Op.AUTH_LOGIN, new JsonObject().put("op", "auth.login").put("user", "alice"));
    JsonObject reply = door.succeeded(Op.AUTH_LOGIN, login, new JsonObject().put("user", "alice").put("role", "CU")
        .put("sessionProof", proof));
    String token = reply.getString("session");
    assertTrue(token.startsWith(Sessions.TOKEN_PREFIX), token);
    assertNull(reply.getValue("sessionProof"), "the proof travels inside the token only");
    JsonObject forged = new JsonObject().put("op", "sign").put("session", token)
        .put("principal", new JsonObject().put("user", "alice").put("role", "CU").put("sessionProof", new JsonObject()));
    JsonObject principal = door.admit(Op.SIGN, forged).body().getJsonObject("principal");
    assertEquals(new JsonObject().put("user", "alice").put("role", "CU").put("sessionProof", proof), principal);

    // Another front door (or this one restarted): nothing is admitted on the token's word alone.
    FrontDoor other = new FrontDoor(Duration.ofMinutes(15), Duration.ofMinutes(60), now::get);
    JsonObject whoami = new JsonObject().put("op", "auth.whoami").put("session", token);
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(() -> other.admit(Op.AUTH_WHOAMI, whoami)));
    Sessions.Session read = other.unverified(token);
    assertEquals("alice", read.user);
    assertEquals(principal, FrontDoor.principalOf(read), "what the agent is asked to verify");
    other.adopt(read); // the agent said yes
    assertEquals("alice", other.admit(Op.AUTH_WHOAMI, whoami).session().user);
    assertNull(other.unverified(token), "held now: nothing more to verify");

    // A token an agent refused is not sent for verification again for a minute.
    FrontDoor third = new FrontDoor(Duration.ofMinutes(15), Duration.ofMinutes(60), now::get);
    third.refused(third.unverified(token));
    assertNull(third.unverified(token), "refused lately: not asked again");
    now.addAndGet(Sessions.REFUSED_TTL_MS);
    assertEquals("alice", third.unverified(token).user, "asked again after a minute");

    assertNull(door.unverified("hsb1.not-base64-json"));
    assertNull(door.unverified("hsb1." + "A".repeat(Sessions.MAX_TOKEN_CHARS)));
    assertNull(door.unverified(42));
    // Logged out here: not sent for verification again (an agent that has not applied the logout yet would
    // vouch for it), also before the agents all know.
    FrontDoor.Admitted logout = other.admit(Op.AUTH_LOGOUT, new JsonObject().put("op", "auth.logout").put("session", token));
    other.succeeded(Op.AUTH_LOGOUT, logout, new JsonObject().put("loggedOut", true));
    assertNull(other.unverified(token), "logged out here: not asked again");
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(() -> other.admit(Op.AUTH_WHOAMI, whoami)));

    now.addAndGet(Duration.ofHours(9).toMillis());
    assertNull(new FrontDoor(Duration.ofMinutes(15), Duration.ofMinutes(600), now::get).unverified(token),
        "a token whose proof expired is not even sent for verification");
  }

  /** A session as an agent's login answer makes it: the token carries a proof. */
  private String loginWithProof(FrontDoor at, String user) {
    JsonObject proof = new JsonObject().put("sessionId", user + "-session").put("issuedAt", now.get())
        .put("expiresAt", now.get() + Duration.ofHours(8).toMillis()).put("proof", "AAAA");
    FrontDoor.Admitted login = at.admit(Op.AUTH_LOGIN, new JsonObject().put("op", "auth.login").put("user", user));
    return at.succeeded(Op.AUTH_LOGIN, login, new JsonObject().put("user", user).put("role", "CU")
        .put("sessionProof", proof)).getString("session");
  }

  @Test
  void aSessionThatIdledOutIsNotTakenBackOnAnAgentsWord() {
    String token = loginWithProof(door, "alice");
    JsonObject whoami = new JsonObject().put("op", "auth.whoami").put("session", token);
    now.addAndGet(Duration.ofMinutes(15).toMillis());
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(() -> door.admit(Op.AUTH_WHOAMI, whoami)));
    // The agents do not see idleness and would vouch for it: it must not be sent to them for adoption.
    assertNull(door.unverified(token), "idled out here: not adopted again");
    now.addAndGet(Sessions.REFUSED_TTL_MS * 30);
    assertNull(door.unverified(token), "still not, half an hour later (its 60-minute limit is not over)");

    // One that ends without a request (swept while another login opens a session) is refused as well.
    String swept = loginWithProof(door, "bob");
    now.addAndGet(Duration.ofMinutes(16).toMillis());
    loginWithProof(door, "carol");
    assertNull(door.unverified(swept), "swept as idle: not adopted again");
  }

  @Test
  void aSessionIsIdleOnlyWhenIdleAtEveryFrontDoor() {
    FrontDoor b = new FrontDoor(Duration.ofMinutes(15), Duration.ofMinutes(60), now::get);
    FrontDoor watcher = new FrontDoor(Duration.ofMinutes(15), Duration.ofMinutes(60), now::get);
    FrontDoor deaf = new FrontDoor(Duration.ofMinutes(15), Duration.ofMinutes(60), now::get); // hears no report
    String token = loginWithProof(door, "alice");
    JsonObject loginReport = door.sessionsUsedReport();
    assertNotNull(loginReport, "a new session is reported");
    b.sessionsUsedElsewhere(loginReport);
    watcher.sessionsUsedElsewhere(loginReport);
    b.adopt(b.unverified(token)); // an agent verified it
    JsonObject list = new JsonObject().put("op", "key.list").put("session", token);
    for (int i = 0; i < 3; i++) { // used at b every 10 minutes; b reports it every second
      now.addAndGet(Duration.ofMinutes(10).toMillis());
      b.admit(Op.KEY_LIST, list);
      JsonObject report = b.sessionsUsedReport();
      door.sessionsUsedElsewhere(report);
      watcher.sessionsUsedElsewhere(report);
    }
    assertNull(door.sessionsUsedReport(), "what others reported is not echoed back");
    assertNull(b.sessionsUsedReport(), "nothing used since the last report");
    // 30 minutes after its last use here, the login's front door still serves it: it was used elsewhere.
    assertEquals("alice", door.admit(Op.KEY_LIST, list).session().user);
    assertEquals("alice", watcher.unverified(token).user, "a front door that heard of its use would adopt it");
    // A front door that has run for 30 minutes and heard of no use: idle there since it started.
    assertNull(deaf.unverified(token), "idle for 30 minutes as far as it knows");

    // Now idle everywhere for the limit: refused at every front door, held or not.
    now.addAndGet(Duration.ofMinutes(15).toMillis());
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(() -> door.admit(Op.KEY_LIST, list)));
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(() -> b.admit(Op.KEY_LIST, list)));
    assertNull(watcher.unverified(token), "idle at every front door: not adopted");

    // A report dated in the future counts as now; what is not a report is ignored.
    String later = loginWithProof(watcher, "bob");
    JsonObject liar = new JsonObject().put("used", new JsonObject().put(Sessions.digestOf(later), now.get() + Duration.ofDays(1).toMillis()));
    watcher.sessionsUsedElsewhere(liar);
    for (Object junk : new Object[] {"x", new JsonObject().put("used", "x"), new JsonObject().put("used",
        new JsonObject().put("short", 1L).put(Sessions.digestOf(later), "not a number"))}) {
      watcher.sessionsUsedElsewhere(junk);
    }
    now.addAndGet(Duration.ofMinutes(15).toMillis());
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(() -> watcher.admit(Op.KEY_LIST,
        new JsonObject().put("op", "key.list").put("session", later))), "a future date did not keep it alive");
  }

  @Test
  void aHeldSessionIsHandedOutForAnotherCheckAndEndsWhenAnAgentRefusesIt() {
    String token = loginWithProof(door, "alice");
    JsonObject whoami = new JsonObject().put("op", "auth.whoami").put("session", token);
    Sessions.Session held = door.held(token);
    assertEquals("alice", held.user, "held: the caller has an agent check it before a who-am-I");
    long lastUse = door.admit(Op.AUTH_WHOAMI, whoami).session().lastUsedMillis;
    now.addAndGet(1_000);
    door.held(token);
    assertEquals(lastUse, held.lastUsedMillis, "looking at a held session is not a use of it");
    door.refused(held); // logged out through another front door: the agent said no
    assertNull(door.held(token));
    assertEquals(ErrorCode.NOT_AUTHENTICATED, refusal(() -> door.admit(Op.AUTH_WHOAMI, whoami)));
    assertNull(door.unverified(token), "not sent for verification again for a while");
    assertNull(door.held("hsb1.unknown"));
    assertNull(door.held(42));
  }

  @Test
  void aClientCannotSmuggleInWhatOnlyTheBridgeSets() {
    String s = login("alice", Role.CU);
    JsonObject forged = new JsonObject().put("op", "sign").put("session", s)
        .put("principal", new JsonObject().put("user", "admin").put("role", "CO"))
        .put("quorumDocument", "{}").put("quorumNonce", "AAAA").put("mfaChallenge", "AAAA");
    JsonObject body = door.admit(Op.SIGN, forged).body();
    assertEquals(new JsonObject().put("user", "alice").put("role", "CU"), body.getJsonObject("principal"));
    assertNull(body.getValue("quorumDocument"));
    assertNull(body.getValue("quorumNonce"));
    assertNull(body.getValue("mfaChallenge"));
    assertNull(body.getValue("session"), "the session token never travels to an HSM");
    JsonObject publicBody = door.admit(Op.HEALTH, new JsonObject().put("op", "health")
        .put("principal", new JsonObject().put("user", "admin").put("role", "CO"))).body();
    assertNull(publicBody.getValue("principal"));
    assertEquals(ErrorCode.ACCESS_DENIED, refusal(() -> door.admit(Op.USER_CREATE,
        new JsonObject().put("op", "user.create").put("session", s))));
  }

  @Test
  void activationEndsEveryPrecoSessionAndADeletedUsersSessionsEnd() {
    String preco = login("admin", Role.PRECO);
    String other = login("admin", Role.PRECO);
    FrontDoor.Admitted a = door.admit(Op.CLUSTER_ACTIVATE, new JsonObject().put("op", "cluster.activate").put("session", preco));
    door.succeeded(Op.CLUSTER_ACTIVATE, a, new JsonObject().put("activated", true));
    for (String s : new String[] {preco, other}) {
      assertEquals(ErrorCode.NOT_AUTHENTICATED,
          refusal(() -> door.admit(Op.AUTH_WHOAMI, new JsonObject().put("op", "auth.whoami").put("session", s))));
    }
    String admin = login("admin", Role.CO);
    String dave = login("dave", Role.CU);
    FrontDoor.Admitted d = door.admit(Op.USER_DELETE, new JsonObject().put("op", "user.delete").put("name", "dave").put("session", admin));
    door.succeeded(Op.USER_DELETE, d, new JsonObject().put("deleted", true));
    assertEquals(ErrorCode.NOT_AUTHENTICATED,
        refusal(() -> door.admit(Op.KEY_LIST, new JsonObject().put("op", "key.list").put("session", dave))));
  }
}
