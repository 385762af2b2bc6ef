package io.hsmbridge.bridge.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.agent.users.RequestHash;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Op;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * The bridge's front door with a controlled clock: session expiry (idle and absolute), what a client
 * may not smuggle in (principal, quorum document, MFA challenge), role checks, and one-time tokens that
 * serve their owner once and expire.
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
    now.addAndGet(Duration.ofHours(9).toMillis());
    assertNull(new FrontDoor(Duration.ofMinutes(15), Duration.ofMinutes(600), now::get).unverified(token),
        "a token whose proof expired is not even sent for verification");
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

  @Test
  void aQuorumDocumentHidesSecretsAndItsFingerprintCannotBeGuessedOffline() {
    String admin = login("admin", Role.CO);
    JsonObject create = new JsonObject().put("op", "user.create").put("name", "dave").put("role", "CU")
        .put("password", "dave-secret-password");
    JsonObject t = door.answer(Op.QUORUM_TOKEN, door.admit(Op.QUORUM_TOKEN,
        new JsonObject().put("op", "quorum.token").put("operation", create).put("session", admin)));
    JsonObject doc = new JsonObject(t.getString("document"));
    assertEquals("(hidden)", doc.getJsonObject("operation").getString("password"));
    assertEquals("dave", doc.getJsonObject("operation").getString("name"));
    assertFalse(t.encode().contains("dave-secret-password"));
    // An approver who guesses the password cannot confirm it: without the nonce no hash matches.
    assertNotEquals(RequestHash.of(create, new byte[32]), doc.getString("requestHash"));
  }

  @Test
  void aQuorumTokenServesItsRequesterOnceBeforeItExpires() {
    String admin = login("admin", Role.CO);
    String admin2 = login("admin2", Role.CO);
    JsonObject operation = new JsonObject().put("op", "user.delete").put("name", "dave");
    JsonObject t = door.answer(Op.QUORUM_TOKEN, door.admit(Op.QUORUM_TOKEN,
        new JsonObject().put("op", "quorum.token").put("operation", operation).put("ttlSeconds", 60).put("session", admin)));
    JsonObject doc = new JsonObject(t.getString("document"));
    assertEquals("admin", doc.getString("requester"));
    assertEquals(operation, doc.getJsonObject("operation"));
    assertEquals(now.get() + 60_000, t.getLong("expiresAt"));

    JsonObject withToken = operation.copy().put("quorum", new JsonObject().put("tokenId", t.getString("tokenId")));
    assertEquals(ErrorCode.QUORUM_NOT_MET,
        refusal(() -> door.admit(Op.USER_DELETE, withToken.copy().put("session", admin2))), "another user's token");
    FrontDoor.Admitted a = door.admit(Op.USER_DELETE, withToken.copy().put("session", admin));
    assertEquals(t.getString("document"), a.body().getString("quorumDocument"));
    byte[] nonce = java.util.Base64.getDecoder().decode(a.body().getString("quorumNonce"));
    assertEquals(RequestHash.of(operation, nonce), doc.getString("requestHash"), "the fingerprint is keyed by the nonce");
    assertFalse(t.toString().contains(a.body().getString("quorumNonce")), "the nonce never goes to the client");
    door.succeeded(Op.USER_DELETE, a, new JsonObject());
    assertEquals(ErrorCode.QUORUM_NOT_MET,
        refusal(() -> door.admit(Op.USER_DELETE, withToken.copy().put("session", admin))), "used up");

    JsonObject t2 = door.answer(Op.QUORUM_TOKEN, door.admit(Op.QUORUM_TOKEN,
        new JsonObject().put("op", "quorum.token").put("operation", operation).put("ttlSeconds", 1).put("session", admin)));
    now.addAndGet(1000);
    assertEquals(ErrorCode.QUORUM_NOT_MET, refusal(() -> door.admit(Op.USER_DELETE, operation.copy().put("session", admin)
        .put("quorum", new JsonObject().put("tokenId", t2.getString("tokenId"))))), "expired");

    assertEquals(ErrorCode.INVALID_PARAMETER, refusal(() -> door.answer(Op.QUORUM_TOKEN, door.admit(Op.QUORUM_TOKEN,
        new JsonObject().put("op", "quorum.token").put("operation", new JsonObject().put("op", "key.list")).put("session", admin)))));
    assertEquals(ErrorCode.ACCESS_DENIED, refusal(() -> door.answer(Op.QUORUM_TOKEN, door.admit(Op.QUORUM_TOKEN,
        new JsonObject().put("op", "quorum.token").put("operation", new JsonObject().put("op", "sign")).put("session", admin)))),
        "a token only for what the requester's role may do");
  }

  @Test
  void anMfaChallengeIsForOneUserAndServesOnce() {
    JsonObject c = door.answer(Op.AUTH_CHALLENGE, door.admit(Op.AUTH_CHALLENGE,
        new JsonObject().put("op", "auth.challenge").put("user", "admin")));
    JsonObject mfa = new JsonObject().put("challengeId", c.getString("challengeId")).put("signature", "AA==");
    JsonObject forBob = door.admit(Op.AUTH_LOGIN, new JsonObject().put("op", "auth.login").put("user", "bob").put("mfa", mfa)).body();
    assertNull(forBob.getValue("mfaChallenge"), "another user's challenge is not attached");
    JsonObject first = door.admit(Op.AUTH_LOGIN, new JsonObject().put("op", "auth.login").put("user", "admin").put("mfa", mfa)).body();
    assertEquals(c.getString("challenge"), first.getString("mfaChallenge"));
    JsonObject again = door.admit(Op.AUTH_LOGIN, new JsonObject().put("op", "auth.login").put("user", "admin").put("mfa", mfa)).body();
    assertFalse(again.containsKey("mfaChallenge"), "a challenge serves once");
    assertNotNull(c.getLong("expiresAt"));
  }

  @Test
  void aQuorumTokenIsTakenAtAdmissionAndGivenBackOnlyWhenTheApprovalsWereRefused() {
    String admin = login("Admin", Role.CO);
    JsonObject operation = new JsonObject().put("op", "user.delete").put("name", "dave");
    JsonObject t = door.answer(Op.QUORUM_TOKEN, door.admit(Op.QUORUM_TOKEN,
        new JsonObject().put("op", "quorum.token").put("operation", operation).put("session", admin)));
    JsonObject withToken = operation.copy().put("quorum", new JsonObject().put("tokenId", t.getString("tokenId")))
        .put("session", admin);
    // Six presentations at once (before any agent answered): the first is let in, the others are refused.
    FrontDoor.Admitted first = door.admit(Op.USER_DELETE, withToken.copy());
    for (int i = 0; i < 5; i++) {
      assertEquals(ErrorCode.QUORUM_NOT_MET, refusal(() -> door.admit(Op.USER_DELETE, withToken.copy())), "in use");
    }
    // The agent refused the approvals: nothing ran, the token is back for its owner.
    door.failed(first, ErrorCode.QUORUM_NOT_MET);
    FrontDoor.Admitted second = door.admit(Op.USER_DELETE, withToken.copy());
    // Any other failure (here: no majority) uses it up.
    door.failed(second, ErrorCode.KEY_AVAILABILITY);
    assertEquals(ErrorCode.QUORUM_NOT_MET, refusal(() -> door.admit(Op.USER_DELETE, withToken.copy())), "used up");
  }
}
