package io.hsmbridge.agent.replication;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.Signature;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue #11 item 2: quorum tokens and MFA challenges are cluster state. Issued by one HSM's agent, used at
 * another's, also after every agent lost its memory (a restart); used once cluster-wide, also when two
 * HSMs get the same token at the same moment; a token whose approvals did not count is not used up; an
 * edited id, another operation or a replayed MFA answer is refused. Three real SoftHSM2 tokens on a real
 * Raft group, the real agent handlers ({@link TestAgents}).
 */
class OneTimeCredentialsTest extends AgentClusterTest {
  private static final String ADMIN_PASSWORD = "admin-password-" + UUID.randomUUID();
  private static final String CU_PASSWORD = "crypto-user-pw-" + UUID.randomUUID();

  private JsonObject alice;
  private JsonObject bob;
  private KeyPair aliceKey;
  private KeyPair bobKey;
  private String keyId;

  /** Activation, crypto users alice and bob with approval keys, alice's EC key with a usage quorum of 2. */
  private void setUp() throws Exception {
    start("once");
    JsonObject admin = env.activate(ADMIN_PASSWORD);
    alice = env.cryptoUser(admin, "alice", CU_PASSWORD, 0);
    bob = env.cryptoUser(admin, "bob", CU_PASSWORD, 1);
    KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
    g.initialize(2048);
    aliceKey = g.generateKeyPair();
    bobKey = g.generateKeyPair();
    env.call(2, alice, new JsonObject().put("op", "user.registerKey").put("spki", b64(aliceKey.getPublic().getEncoded())));
    env.call(2, bob, new JsonObject().put("op", "user.registerKey").put("spki", b64(bobKey.getPublic().getEncoded())));
    keyId = env.call(0, alice, new JsonObject().put("op", "key.generate").put("spec", "EC_P256").put("label", "guarded")
        .put("requestId", UUID.randomUUID().toString())).getString("keyId");
    env.call(1, alice, new JsonObject().put("op", "key.setQuorum").put("keyId", keyId).put("management", 1).put("usage", 2));
  }

  private JsonObject signRequest(String message) {
    return new JsonObject().put("op", "sign").put("keyId", keyId).put("alg", "ECDSA_SHA256")
        .put("message", b64(message.getBytes(StandardCharsets.UTF_8)));
  }

  /** quorum.token for {@code operation} at HSM {@code hsm}, as alice. */
  private JsonObject token(int hsm, JsonObject operation) {
    return env.call(hsm, alice, new JsonObject().put("op", "quorum.token").put("operation", operation));
  }

  private static JsonObject approval(String user, PrivateKey key, JsonObject token) throws Exception {
    Signature s = Signature.getInstance("SHA256withRSA");
    s.initSign(key);
    s.update(token.getString("document").getBytes(StandardCharsets.UTF_8));
    return new JsonObject().put("user", user).put("signature", b64(s.sign()));
  }

  private static JsonObject withQuorum(JsonObject request, String tokenId, JsonObject... approvals) {
    return request.copy().put("quorum", new JsonObject().put("tokenId", tokenId).put("approvals", new JsonArray(List.of((Object[]) approvals))));
  }

  private HsmException refused(int hsm, JsonObject session, JsonObject request) {
    return assertThrows(HsmException.class, () -> env.call(hsm, session, request));
  }

  @Test
  @Timeout(300)
  void aQuorumTokenIsIssuedAnywhereUsedAnywhereOnceAndSurvivesAgentRestarts() throws Exception {
    setUp();
    JsonObject sign = signRequest("pay 100");
    assertEquals(ErrorCode.QUORUM_NOT_MET, refused(0, alice, sign).code(), "usage quorum 2 holds");

    JsonObject t = token(0, sign);
    JsonObject doc = new JsonObject(t.getString("document"));
    assertEquals("alice", doc.getString("requester"));
    assertEquals(t.getString("tokenId"), doc.getString("tokenId"));
    // Every agent forgets everything it held in memory (as a restart of every process would).
    for (int i = 0; i < 3; i++) {
      env.agents.set(i, env.newAgent(i));
    }
    JsonObject both = withQuorum(sign, t.getString("tokenId"), approval("alice", aliceKey.getPrivate(), t),
        approval("bob", bobKey.getPrivate(), t));
    assertNotNull(env.call(1, alice, both).getString("signature"), "issued at hsm 1, used at hsm 2");
    HsmException again = refused(2, alice, both);
    assertEquals(ErrorCode.QUORUM_NOT_MET, again.code());
    assertTrue(again.getMessage().contains("used already"), again.getMessage());

    // Approvals that do not count leave the token usable; with enough of them it serves, once.
    JsonObject t2 = token(2, sign);
    HsmException short1 = refused(0, alice, withQuorum(sign, t2.getString("tokenId"), approval("alice", aliceKey.getPrivate(), t2)));
    assertTrue(short1.getMessage().contains("need 2 valid approvals, got 1"), short1.getMessage());
    assertNotNull(env.call(1, alice, withQuorum(sign, t2.getString("tokenId"), approval("alice", aliceKey.getPrivate(), t2),
        approval("bob", bobKey.getPrivate(), t2))).getString("signature"));
  }

  @Test
  @Timeout(300)
  void oneTokenPresentedAtTwoHsmsAtOnceServesExactlyOneRequest() throws Exception {
    setUp();
    JsonObject sign = signRequest("pay 200");
    for (int round = 0; round < 3; round++) {
      JsonObject t = token(round % 3, sign);
      JsonObject both = withQuorum(sign, t.getString("tokenId"), approval("alice", aliceKey.getPrivate(), t),
          approval("bob", bobKey.getPrivate(), t));
      List<Object> outcomes = Collections.synchronizedList(new ArrayList<>());
      CountDownLatch go = new CountDownLatch(1);
      List<Thread> threads = new ArrayList<>();
      for (int hsm : new int[] {0, 2}) {
        Thread th = new Thread(() -> {
          try {
            go.await();
            outcomes.add(env.call(hsm, alice, both).getString("signature"));
          } catch (HsmException e) {
            outcomes.add(e.code());
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        });
        threads.add(th);
        th.start();
      }
      go.countDown();
      for (Thread th : threads) {
        th.join(60_000);
      }
      assertEquals(2, outcomes.size(), outcomes.toString());
      assertEquals(1, outcomes.stream().filter(o -> o instanceof String).count(), "exactly one signed: " + outcomes);
      assertTrue(outcomes.contains(ErrorCode.QUORUM_NOT_MET), outcomes.toString());
    }
  }

  @Test
  @Timeout(300)
  void editedIdsOtherOperationsAndOtherRequestersAreRefused() throws Exception {
    setUp();
    JsonObject sign = signRequest("pay 300");
    JsonObject t = token(0, sign);
    JsonObject a = approval("alice", aliceKey.getPrivate(), t);
    JsonObject b = approval("bob", bobKey.getPrivate(), t);
    String id = t.getString("tokenId");
    // Its expiry pushed out by an hour: the id is not the one the approvals signed, nor one the cluster issued.
    String[] parts = id.split("\\.");
    String later = parts[0] + "." + parts[1] + "." + parts[2] + "." + (Long.parseLong(parts[3]) + 3_600_000);
    assertEquals(ErrorCode.QUORUM_NOT_MET, refused(1, alice, withQuorum(sign, later, a, b)).code());
    String shorter = parts[0] + "." + parts[1] + "." + parts[2] + "." + (Long.parseLong(parts[3]) - 1000);
    HsmException edited = refused(1, alice, withQuorum(sign, shorter, a, b));
    assertTrue(edited.getMessage().contains("got 0"), edited.getMessage());
    // Another message signed under the same token and approvals: the approvals do not cover it.
    HsmException other = refused(2, alice, withQuorum(signRequest("pay 3000"), id, a, b));
    assertTrue(other.getMessage().contains("got 0"), other.getMessage());
    assertEquals(ErrorCode.QUORUM_NOT_MET, refused(0, alice, withQuorum(sign, "not-a-token", a, b)).code());
    // None of the refusals used the token up.
    assertNotNull(env.call(0, alice, withQuorum(sign, id, a, b)).getString("signature"));

    // A secret of the operation never shows in the document approvers read.
    JsonObject admin = env.login(1, "admin", ADMIN_PASSWORD);
    JsonObject create = new JsonObject().put("op", "user.create").put("name", "carol").put("role", "CU")
        .put("password", "carols-secret-password");
    String document = env.call(1, admin, new JsonObject().put("op", "quorum.token").put("operation", create)).getString("document");
    assertFalse(document.contains("carols-secret-password"), document);
    assertTrue(document.contains("(hidden)"), document);
  }

  @Test
  @Timeout(300)
  void anMfaChallengeFromOneHsmLogsInAtAnotherOnceAndOnlyForItsUserUnedited() throws Exception {
    setUp();
    // MFA is for admins (as in CloudHSM): the admin registers an approval key and turns MFA on.
    KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
    g.initialize(2048);
    KeyPair adminKey = g.generateKeyPair();
    JsonObject admin = env.login(2, "admin", ADMIN_PASSWORD);
    env.call(0, admin, new JsonObject().put("op", "user.registerKey").put("spki", b64(adminKey.getPublic().getEncoded())));
    env.call(1, admin, new JsonObject().put("op", "user.setMfa").put("enabled", true));
    JsonObject login = new JsonObject().put("op", "auth.login").put("user", "admin").put("password", ADMIN_PASSWORD);
    assertEquals(ErrorCode.LOGIN_FAILED, assertThrows(HsmException.class, () -> env.agents.get(1).execute(login)).code(),
        "MFA on: a password alone does not log in");

    JsonObject c = env.agents.get(0).execute(new JsonObject().put("op", "auth.challenge").put("user", "admin"));
    for (int i = 0; i < 3; i++) {
      env.agents.set(i, env.newAgent(i)); // no agent remembers the challenge
    }
    JsonObject answered = answer(login, c, adminKey.getPrivate());
    assertEquals("admin", env.login(2, answered).getString("user"), "issued at hsm 1, answered at hsm 3");
    assertEquals(ErrorCode.LOGIN_FAILED, assertThrows(HsmException.class, () -> env.agents.get(1).execute(answered)).code(),
        "the same answer replayed at another HSM");

    // alice's challenge, signed with the admin's key: not the admin's challenge
    JsonObject forAlice = env.agents.get(1).execute(new JsonObject().put("op", "auth.challenge").put("user", "alice"));
    assertEquals(ErrorCode.LOGIN_FAILED, assertThrows(HsmException.class,
        () -> env.agents.get(0).execute(answer(login, forAlice, adminKey.getPrivate()))).code());
    // the admin's challenge with its expiry edited: not a challenge the cluster issued
    JsonObject c3 = env.agents.get(0).execute(new JsonObject().put("op", "auth.challenge").put("user", "admin"));
    String id = c3.getString("challengeId");
    String edited = id.substring(0, id.lastIndexOf('.') + 1) + (c3.getLong("expiresAt") - 1000);
    assertEquals(ErrorCode.LOGIN_FAILED, assertThrows(HsmException.class,
        () -> env.agents.get(2).execute(answer(login, c3.copy().put("challengeId", edited), adminKey.getPrivate()))).code());

    // a fresh challenge still works (the failures above did not lock the admin: fewer than 5)
    JsonObject c2 = env.agents.get(2).execute(new JsonObject().put("op", "auth.challenge").put("user", "admin"));
    assertEquals("admin", env.login(0, answer(login, c2, adminKey.getPrivate())).getString("user"));
  }

  /** The login body answering challenge {@code c} (its id, and its bytes signed with {@code key}). */
  private static JsonObject answer(JsonObject login, JsonObject c, PrivateKey key) throws Exception {
    return login.copy().put("mfa", new JsonObject().put("challengeId", c.getString("challengeId"))
        .put("signature", b64(signBytes(key, Base64.getDecoder().decode(c.getString("challenge"))))));
  }

  private static byte[] signBytes(PrivateKey key, byte[] data) throws Exception {
    Signature s = Signature.getInstance("SHA256withRSA");
    s.initSign(key);
    s.update(data);
    return s.sign();
  }

  private static String b64(byte[] b) {
    return Base64.getEncoder().encodeToString(b);
  }
}
