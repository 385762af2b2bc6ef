package io.hsmbridge.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.Signature;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.Test;

/** Pins the session, user and quorum request bodies to docs/users.md's wire spec. */
class HsmSessionTest {
  private static final String KEY = "0123456789abcdef0123456789abcdef";
  private static final String TOKEN = "s3cr3t-session-token";

  private final List<JsonObject> sent = new ArrayList<>();
  private Function<JsonObject, JsonObject> server = body -> new JsonObject();
  private final Hsm hsm = new Hsm(body -> {
    sent.add(body.copy());
    return server.apply(body);
  });

  private JsonObject last() {
    return sent.get(sent.size() - 1);
  }

  private static JsonObject loginReply() {
    return new JsonObject().put("session", TOKEN).put("user", "alice").put("role", "CU").put("expiresAt", 1_700_000_000_000L)
        .put("idleTimeoutSeconds", 900);
  }

  @Test
  void loginStoresTheTokenAndEveryLaterRequestCarriesIt() {
    server = body -> loginReply();
    Session s = hsm.login("alice", "correct horse battery".toCharArray());
    assertEquals(new JsonObject().put("user", "alice").put("password", "correct horse battery").put("op", "auth.login"),
        last());
    assertEquals(new Session(TOKEN, "alice", "CU", 1_700_000_000_000L), s);
    assertFalse(s.toString().contains(TOKEN), s::toString);
    assertTrue(hsm.hasSession());

    server = body -> new JsonObject().put("random", "AAAA");
    hsm.random(3);
    assertEquals(TOKEN, last().getString("session"));
    server = body -> new JsonObject().put("user", "alice").put("role", "CU").put("expiresAt", 1);
    assertEquals("alice", hsm.whoami().getString("user"));
    assertEquals(new JsonObject().put("op", "auth.whoami").put("session", TOKEN), last());
  }

  @Test
  void aNewLoginDoesNotSendTheOldSession() {
    hsm.useSession("old");
    server = body -> loginReply();
    hsm.login("alice", "pw".toCharArray());
    assertFalse(last().containsKey("session"));
  }

  @Test
  void logoutForgetsTheTokenEvenWhenTheBridgeRefuses() {
    hsm.useSession(TOKEN);
    server = body -> {
      throw new HsmBridgeException(ErrorCode.NOT_AUTHENTICATED, "NOT_AUTHENTICATED: session expired");
    };
    assertThrows(HsmBridgeException.class, hsm::logout);
    assertEquals(new JsonObject().put("op", "auth.logout").put("session", TOKEN), last());
    assertFalse(hsm.hasSession());
    server = body -> new JsonObject().put("random", "AA==");
    hsm.random(1);
    assertFalse(last().containsKey("session"));
  }

  @Test
  void mfaLoginSignsTheChallengeBytesWithTheRegisteredKey() throws Exception {
    KeyPair pair = rsa();
    byte[] challenge = new byte[32];
    new java.security.SecureRandom().nextBytes(challenge);
    server = body -> {
      if (body.getString("op").equals("auth.challenge")) {
        return new JsonObject().put("challengeId", "c1").put("challenge", Base64.getEncoder().encodeToString(challenge))
            .put("expiresAt", 1);
      }
      JsonObject mfa = body.getJsonObject("mfa");
      assertEquals("c1", mfa.getString("challengeId"));
      try {
        Signature v = Signature.getInstance("SHA256withRSA");
        v.initVerify(pair.getPublic());
        v.update(challenge);
        assertTrue(v.verify(Base64.getDecoder().decode(mfa.getString("signature"))), "signed the raw challenge");
      } catch (java.security.GeneralSecurityException e) {
        throw new AssertionError(e);
      }
      return loginReply().put("user", "admin").put("role", "CO");
    };
    Session s = hsm.loginWithMfa("admin", "pw".toCharArray(), pair.getPrivate());
    assertEquals("CO", s.role());
    assertEquals(new JsonObject().put("user", "admin").put("op", "auth.challenge"), sent.get(0));
    assertEquals("pw", last().getString("password"));
  }

  @Test
  void userAndQuorumOperationsSendTheWireFields() {
    hsm.useSession(TOKEN);
    hsm.activate("new admin password".toCharArray());
    assertEquals(body("cluster.activate").put("password", "new admin password"), last());
    hsm.createUser("bob", Role.CU, "bob's password".toCharArray());
    assertEquals(body("user.create").put("name", "bob").put("role", "CU").put("password", "bob's password"), last());
    assertThrows(IllegalArgumentException.class, () -> hsm.createUser("p", Role.PRECO, new char[1]));
    hsm.deleteUser("bob");
    assertEquals(body("user.delete").put("name", "bob"), last());
    hsm.changePassword("bob", "another password".toCharArray());
    assertEquals(body("user.changePassword").put("name", "bob").put("password", "another password"), last());
    hsm.unlockUser("bob");
    assertEquals(body("user.unlock").put("name", "bob"), last());
    hsm.registerApprovalKey(new byte[] {1, 2});
    assertEquals(body("user.registerKey").put("spki", "AQI="), last());
    hsm.setMfa(true);
    assertEquals(body("user.setMfa").put("enabled", true), last());
    hsm.setAdminQuorum(2);
    assertEquals(body("quorum.set").put("service", "admin").put("value", 2), last());
    server = b -> new JsonObject().put("keyId", KEY).put("management", 2).put("usage", 1);
    hsm.setKeyQuorum(KEY, 2, 1);
    assertEquals(body("key.setQuorum").put("keyId", KEY).put("management", 2).put("usage", 1), last());
  }

  @Test
  void listUsersIsTyped() {
    hsm.useSession(TOKEN);
    server = b -> new JsonObject().put("adminQuorum", 2).put("users", new JsonArray()
        .add(new JsonObject().put("name", "admin").put("role", "CO").put("locked", false).put("failedLogins", 0)
            .put("approvalKey", true).put("mfa", true))
        .add(new JsonObject().put("name", "bob").put("role", "CU").put("locked", true).put("failedLogins", 5)
            .put("approvalKey", false).put("mfa", false)));
    Users users = hsm.listUsers();
    assertEquals(2, users.adminQuorum());
    assertEquals(List.of(new UserInfo("admin", "CO", false, 0, true, true), new UserInfo("bob", "CU", true, 5, false, false)),
        users.users());
    assertEquals(body("user.list"), last());
  }

  @Test
  void shareAndUnshareReturnTheOwnersView() {
    hsm.useSession(TOKEN);
    server = b -> new JsonObject().put("keyId", KEY).put("label", "l").put("spec", "AES_256").put("owner", "alice")
        .put("sharedWith", new JsonArray().add("bob"));
    KeyInfo k = hsm.shareKey(KEY, "bob");
    assertEquals(body("key.share").put("keyId", KEY).put("user", "bob"), last());
    assertEquals("alice", k.owner());
    assertEquals(List.of("bob"), k.sharedWith());
    assertEquals(new JsonArray().add("bob"), k.toJson().getJsonArray("sharedWith"));
    hsm.unshareKey(KEY, "bob");
    assertEquals("key.unshare", last().getString("op"));

    server = b -> new JsonObject().put("keyId", KEY).put("label", "l").put("spec", "AES_256");
    KeyInfo plain = hsm.describe(KEY);
    assertNull(plain.owner());
    assertEquals(List.of(), plain.sharedWith());
    assertFalse(plain.toJson().containsKey("owner") || plain.toJson().containsKey("sharedWith"));
  }

  @Test
  void aQuorumTokenIsAskedForExactlyTheCapturedRequest() {
    hsm.useSession(TOKEN);
    JsonObject op = hsm.requestBody(h -> h.delete(KEY));
    assertEquals(new JsonObject().put("keyId", KEY).put("op", "key.delete"), op, "no session in the operation");
    assertTrue(sent.isEmpty(), "capturing sends nothing");

    server = b -> new JsonObject().put("tokenId", "t1").put("document", "approve key.delete ...").put("expiresAt", 5L);
    QuorumToken t = hsm.quorumToken(op.copy().put("requestId", "r").put("session", "x"), 120);
    assertEquals(new QuorumToken("t1", "approve key.delete ...", 5L), t);
    assertEquals(body("quorum.token").put("operation", op).put("ttlSeconds", 120), last());
    hsm.quorumToken(op, 0);
    assertFalse(last().containsKey("ttlSeconds"), "0 = the server's default");
    assertThrows(IllegalArgumentException.class, () -> hsm.requestBody(h -> { }));
  }

  @Test
  void theQuorumViewAddsTheApprovalsAndSharesTheSession() {
    Hsm approved = hsm.withQuorum("t1", List.of(new QuorumApproval("t1", "co1", "c2lnMQ=="),
        new QuorumApproval("t1", "co2", "c2lnMg==")));
    hsm.useSession(TOKEN);
    approved.delete(KEY);
    JsonObject quorum = new JsonObject().put("tokenId", "t1").put("approvals", new JsonArray()
        .add(new JsonObject().put("user", "co1").put("signature", "c2lnMQ=="))
        .add(new JsonObject().put("user", "co2").put("signature", "c2lnMg==")));
    assertEquals(body("key.delete").put("keyId", KEY).put("quorum", quorum), last());
    hsm.delete(KEY);
    assertFalse(last().containsKey("quorum"), "the original facade carries no approvals");
    assertThrows(IllegalArgumentException.class,
        () -> hsm.withQuorum("t1", List.of(new QuorumApproval("t2", "co1", "x"))));

    approved.send(new JsonObject().put("op", "user.delete").put("name", "bob"));
    assertEquals(body("user.delete").put("name", "bob").put("quorum", quorum), last());
    assertThrows(IllegalArgumentException.class, () -> hsm.send(new JsonObject().put("name", "bob")));
  }

  private static JsonObject body(String op) {
    return new JsonObject().put("op", op).put("session", TOKEN);
  }

  static KeyPair rsa() throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
    g.initialize(2048);
    return g.generateKeyPair();
  }
}
