package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.protocol.Access;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Op;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.Signature;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;

/**
 * Issue #4 end to end on a real 3-HSM cluster ({@code hsmbridge up --hsms 3}: three agent processes over
 * SoftHSM2 tokens and a bridge), through the real TCP bridge: activation, the whole authorisation matrix
 * (every client operation x every role; a refused request changes nothing), sharing, cluster-wide
 * lockout and unlock, M-of-N token-sign quorum (too few, expired, duplicate, forged, wrong operation,
 * reused), admin MFA, and users surviving a restart of every process.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class UsersScenarioTest {
  private static final String ADMIN_PW = "admin-password-" + System.nanoTime();
  private static final String PW = "crypto-user-password";
  private static final byte[] MSG = "a message".getBytes(StandardCharsets.UTF_8);
  private static final StringBuilder REPORT = new StringBuilder();

  private static Path home;
  private static BridgeClient client;
  private static final Map<String, String> SESSIONS = new HashMap<>();
  private static final Map<String, KeyPair> APPROVAL_KEYS = new HashMap<>();
  /** alice's keys, shared with bob (not with carol). */
  private static String aes;
  private static String rsa;
  private static String hmac;
  private static String wrapKey;
  private static String exportable;

  @BeforeAll
  static void up() throws IOException {
    home = Files.createTempDirectory("hsmbridge-users");
    CliRun up = CliRun.run(home, "up", "--hsms", "3", "--port", "0");
    assertEquals(0, up.code, up.toString());
    client = connect();
  }

  @AfterAll
  static void down() throws IOException {
    if (client != null) {
      client.close();
    }
    CliRun down = CliRun.run(home, "down");
    System.out.println("=== UsersScenarioTest report ===\n" + REPORT + "down: exit " + down.code);
    Files.createDirectories(Path.of("target"));
    Files.writeString(Path.of("target", "users-scenarios.txt"), REPORT.toString());
  }

  // ------------------------------------------------------------------------------------ activation

  @Test
  @Order(1)
  void activationReplacesThePrecoWithTheFirstAdmin() {
    assertCode(ErrorCode.NOT_AUTHENTICATED, op("key.list"));
    assertCode(ErrorCode.NOT_AUTHENTICATED, op("user.list").put("session", "forged-token"));
    assertCode(ErrorCode.LOGIN_FAILED, login("admin", "wrong-password"));
    String preco = session(request(login("admin", "password")), Role.PRECO);
    assertCode(ErrorCode.ACCESS_DENIED, as(preco, op("user.list")));
    assertCode(ErrorCode.ACCESS_DENIED, as(preco, op("key.list")));
    assertCode(ErrorCode.INVALID_PARAMETER, as(preco, op("cluster.activate").put("password", "short")));
    JsonObject activated = request(as(preco, op("cluster.activate").put("password", ADMIN_PW)));
    assertEquals(Boolean.TRUE, activated.getBoolean("activated"));
    assertCode(ErrorCode.NOT_AUTHENTICATED, as(preco, op("auth.whoami")));
    assertCode(ErrorCode.LOGIN_FAILED, login("admin", "password"));
    SESSIONS.put("admin", session(request(login("admin", ADMIN_PW)), Role.CO));
    assertCode(ErrorCode.ACCESS_DENIED, as("admin", op("cluster.activate").put("password", ADMIN_PW)));
    for (String[] u : new String[][] {{"alice", "CU"}, {"bob", "CU"}, {"carol", "CU"}, {"admin2", "CO"}, {"admin3", "CO"}}) {
      request(as("admin", op("user.create").put("name", u[0]).put("role", u[1]).put("password", PW)));
      SESSIONS.put(u[0], session(request(login(u[0], PW)), Role.valueOf(u[1])));
    }
    note("activation: PRECO refused everything but activate; 2 admins + 3 crypto users created and logged in");
  }

  // ------------------------------------------------------------------------------------ the matrix

  @Test
  @Order(2)
  void everyRoleGetsExactlyWhatTheAccessTableAllows() {
    aes = keyOf(as("alice", op("key.generate").put("spec", "AES_256").put("label", "alice-aes")));
    rsa = keyOf(as("alice", op("key.generate").put("spec", "RSA_2048").put("label", "alice-rsa")));
    hmac = keyOf(as("alice", op("key.generate").put("spec", "HMAC_SHA256").put("label", "alice-hmac")));
    wrapKey = keyOf(as("alice", op("key.generate").put("spec", "AES_256").put("usage", "WRAP_UNWRAP").put("label", "alice-wrap")));
    for (String k : List.of(aes, rsa, hmac, wrapKey)) {
      request(as("alice", op("key.share").put("keyId", k).put("user", "bob")));
    }
    JsonObject described = request(as("alice", op("key.describe").put("keyId", aes)));
    assertEquals("alice", described.getString("owner"));
    assertEquals(new JsonArray().add("bob"), described.getJsonArray("sharedWith"));
    assertFalse(request(as("bob", op("key.describe").put("keyId", aes))).containsKey("sharedWith"), "only the owner sees shares");

    // Who sends what: every client operation, for no session, the PRECO (gone now), a CO, the key's
    // owner (alice), a user it is shared with (bob) and a crypto user without access (carol).
    List<String> actors = List.of("-", "admin", "alice", "bob", "carol");
    int allowed = 0;
    int denied = 0;
    StringBuilder table = new StringBuilder();
    for (Op op : Op.values()) {
      if (op.isInternal() || op == Op.CLUSTER_ACTIVATE || op == Op.AUTH_LOGOUT) {
        continue; // activate: order 1; logout: ends the actor's session (checked in order 6)
      }
      table.append(String.format("%-20s", op.wire()));
      for (String actor : actors) {
        boolean expected = expectedAllowed(op, actor);
        JsonObject body = bodyFor(op, actor);
        String before = state();
        ErrorCode got = outcome(actor.equals("-") ? body : as(actor, body));
        boolean refusedForAccess = got == ErrorCode.ACCESS_DENIED || got == ErrorCode.NOT_AUTHENTICATED;
        if (expected) {
          assertFalse(refusedForAccess, op.wire() + " as " + actor + " must be allowed, got " + got);
          allowed++;
        } else {
          assertEquals(actor.equals("-") ? ErrorCode.NOT_AUTHENTICATED : ErrorCode.ACCESS_DENIED, got,
              op.wire() + " as " + actor + " must be refused");
          assertEquals(before, state(), op.wire() + " as " + actor + " was refused but changed something");
          denied++;
        }
        table.append(String.format(" %-6s", got == null ? "ok" : got.code()));
      }
      table.append('\n');
    }
    note("matrix: " + allowed + " allowed pairs succeeded, " + denied + " refused pairs got 470/471 and changed nothing\n"
        + String.format("%-20s", "op \\ actor") + " -      admin  alice  bob    carol\n" + table);
  }

  /** The access table plus the key-level rules: owner (alice) everything, sharee (bob) use only. */
  private static boolean expectedAllowed(Op op, String actor) {
    if (Access.isPublic(op)) {
      return true;
    }
    if (actor.equals("-")) {
      return false;
    }
    Role role = actor.equals("admin") ? Role.CO : Role.CU;
    if (!Access.allows(op, role)) {
      return false;
    }
    boolean management = op == Op.KEY_DELETE || op == Op.KEY_SET_LABEL || op == Op.KEY_WRAP || op == Op.KEY_SHARE
        || op == Op.KEY_UNSHARE || op == Op.KEY_SET_QUORUM || op == Op.KEY_SET_CERTIFICATES;
    boolean usesKey = management || op == Op.KEY_DESCRIBE || op == Op.KEY_PUBLIC || op == Op.KEY_CERTIFICATES || op == Op.ENCRYPT
        || op == Op.DECRYPT || op == Op.SIGN || op == Op.VERIFY || op == Op.MAC || op == Op.MAC_VERIFY
        || op == Op.KEY_IMPORT_WRAPPED;
    if (usesKey && role == Role.CU) {
      return actor.equals("alice") || (actor.equals("bob") && !management);
    }
    return true;
  }

  /** An RSA public key (SubjectPublicKeyInfo, base64) to escrow the backup key to: the JDK's, for the access matrix. */
  private static final String RECOVERY_KEY = recoveryKey();

  private static String recoveryKey() {
    try {
      java.security.KeyPairGenerator g = java.security.KeyPairGenerator.getInstance("RSA");
      g.initialize(2048);
      return java.util.Base64.getEncoder().encodeToString(g.generateKeyPair().getPublic().getEncoded());
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** A well-formed request for {@code op}; destructive ones aim at objects made for the purpose. */
  private static JsonObject bodyFor(Op op, String actor) {
    switch (op) {
      case HEALTH: case CLUSTER_STATUS: case AUTH_WHOAMI: case KEY_LIST: case USER_LIST: case CLUSTER_AUDIT_VERIFY:
        return op(op.wire());
      case CLUSTER_CHECK:
        return op(op.wire());
      case CLUSTER_REMOVE_HSM:
        return op(op.wire()).put("hsmId", "no-such-hsm");
      case BACKUP_CREATE: case BACKUP_LIST:
        return op(op.wire());
      case BACKUP_DESCRIBE: case BACKUP_DELETE: case BACKUP_RESTORE_DELETED:
        return op(op.wire()).put("backupId", "backup-aaaaaaaaaaaaaaaa"); // no such backup: UNKNOWN_KEY for a CO
      case BACKUP_SET_NEVER_EXPIRES:
        return op(op.wire()).put("backupId", "backup-aaaaaaaaaaaaaaaa").put("neverExpires", true);
      case BACKUP_SET_RETENTION:
        return op(op.wire()).put("days", 90);
      case BACKUP_COPY_TO_REGION:
        return op(op.wire()).put("backupId", "backup-aaaaaaaaaaaaaaaa").put("to", "nowhere");
      case BACKUP_ESCROW:
        return op(op.wire()).put("recoveryKey", RECOVERY_KEY);
      case BACKUP_ROTATE_KEY: case CLUSTER_ROTATE_KEY:
        return op(op.wire());
      case AUTH_LOGIN:
        return login("carol", PW);
      case AUTH_CHALLENGE:
        return op(op.wire()).put("user", "carol");
      case USER_CREATE:
        return op(op.wire()).put("name", "tmp" + System.nanoTime() % 1_000_000_000).put("role", "CU").put("password", PW);
      case USER_DELETE: {
        String name = "del" + System.nanoTime() % 1_000_000_000;
        request(as("admin", op("user.create").put("name", name).put("role", "CU").put("password", PW)));
        return op(op.wire()).put("name", name);
      }
      case USER_CHANGE_PASSWORD: {
        if (!actor.equals("admin")) {
          return op(op.wire()).put("name", actor).put("password", PW); // its own: its session goes on
        }
        // An admin's reset ends the user's sessions: a user of its own, not one whose session the matrix uses.
        String name = "pw" + System.nanoTime() % 1_000_000_000;
        request(as("admin", op("user.create").put("name", name).put("role", "CU").put("password", PW)));
        return op(op.wire()).put("name", name).put("password", PW);
      }
      case USER_UNLOCK:
        return op(op.wire()).put("name", "carol");
      case USER_REGISTER_KEY:
        return op(op.wire()).put("spki", b64(approvalKey(actor.equals("-") ? "nobody" : actor).getPublic().getEncoded()));
      case USER_SET_MFA:
        return op(op.wire()).put("enabled", false);
      case QUORUM_SET:
        return op(op.wire()).put("service", "admin").put("value", 1);
      case QUORUM_TOKEN:
        return op(op.wire()).put("operation", actor.equals("admin") ? op("user.delete").put("name", "nobody")
            : op("encrypt").put("keyId", aes).put("alg", "AES_GCM").put("plaintext", b64(MSG)));
      case KEY_GENERATE:
        return op(op.wire()).put("spec", "AES_128").put("label", "matrix");
      case KEY_DESCRIBE: case KEY_PUBLIC:
        return op(op.wire()).put("keyId", op == Op.KEY_PUBLIC ? rsa : aes);
      case KEY_DELETE:
        return op(op.wire()).put("keyId", keyOf(as("alice", op("key.generate").put("spec", "AES_128").put("label", "doomed"))));
      case KEY_SET_LABEL:
        return op(op.wire()).put("keyId", aes).put("label", "alice-aes");
      case KEY_SET_CERTIFICATES: // an empty chain: removes none there is, so an allowed pair changes nothing either
        return op(op.wire()).put("keyId", rsa).put("certificates", new JsonArray());
      case KEY_CERTIFICATES:
        return op(op.wire()).put("keyId", rsa);
      case KEY_WRAP:
        if (exportable == null) {
          exportable = keyOf(as("alice", op("key.generate").put("spec", "AES_128").put("label", "plain")));
        }
        return op(op.wire()).put("keyId", exportable).put("wrappingKeyId", wrapKey).put("alg", "AES_KEY_WRAP_PAD");
      case KEY_IMPORT_WRAPPED:
        return op(op.wire()).put("wrappingKeyId", wrapKey).put("alg", "AES_KEY_WRAP_PAD").put("wrapped", b64(new byte[40]))
            .put("spec", "AES_128").put("label", "imported");
      case KEY_SHARE:
        return op(op.wire()).put("keyId", aes).put("user", "bob");
      case KEY_UNSHARE:
        return op(op.wire()).put("keyId", aes).put("user", "carol");
      case KEY_SET_QUORUM:
        return op(op.wire()).put("keyId", aes).put("management", 1).put("usage", 1);
      case ENCRYPT:
        return op(op.wire()).put("keyId", aes).put("alg", "AES_GCM").put("plaintext", b64(MSG));
      case DECRYPT:
        return op(op.wire()).put("keyId", aes).put("alg", "AES_GCM").put("ciphertext", b64(new byte[32])).put("iv", b64(new byte[12]));
      case SIGN:
        return op(op.wire()).put("keyId", rsa).put("alg", "RSA_PKCS1_SHA256").put("message", b64(MSG));
      case VERIFY:
        return op(op.wire()).put("keyId", rsa).put("alg", "RSA_PKCS1_SHA256").put("message", b64(MSG)).put("signature", b64(new byte[256]));
      case MAC:
        return op(op.wire()).put("keyId", hmac).put("alg", "HMAC_SHA256").put("message", b64(MSG));
      case MAC_VERIFY:
        return op(op.wire()).put("keyId", hmac).put("alg", "HMAC_SHA256").put("message", b64(MSG)).put("mac", b64(new byte[32]));
      case DIGEST:
        return op(op.wire()).put("alg", "SHA256").put("message", b64(MSG));
      case RANDOM:
        return op(op.wire()).put("length", 16);
      default:
        throw new AssertionError("no request for " + op.wire() + ": add one to the matrix");
    }
  }

  /** Users (with lock state) and alice's keys with their ACLs and labels: what a refused request must not change. */
  /**
   * Users and alice's keys as every HSM holds them, once all three agree: a creation is acknowledged when
   * two HSMs applied it, so an unpinned read right after it may reach the third, which has not yet.
   */
  private static String state() {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (true) {
      Set<String> views = new HashSet<>();
      for (String hsm : List.of("hsm1", "hsm2", "hsm3")) {
        views.add(state(hsm));
      }
      if (views.size() == 1 || System.nanoTime() > deadline) {
        return String.join("\n=== another HSM's view:\n", views);
      }
      sleepMs(100);
    }
  }

  private static String state(String hsm) {
    JsonArray users = request(as("admin", op("user.list").put("onHsm", hsm))).getJsonArray("users");
    JsonArray keys = request(as("alice", op("key.list").put("onHsm", hsm))).getJsonArray("keys");
    List<String> lines = new ArrayList<>();
    users.forEach(u -> lines.add(((JsonObject) u).encode()));
    keys.forEach(k -> lines.add(((JsonObject) k).copy().put("servedBy", "").encode()));
    lines.sort(null);
    return String.join("\n", lines);
  }

  // ------------------------------------------------------------------------------------ sharing

  @Test
  @Order(3)
  void aSharedKeyIsUsableButNotManageableAndUnsharingEndsIt() {
    String sig = request(as("bob", op("sign").put("keyId", rsa).put("alg", "RSA_PKCS1_SHA256").put("message", b64(MSG))))
        .getString("signature");
    assertTrue(request(as("alice", op("verify").put("keyId", rsa).put("alg", "RSA_PKCS1_SHA256").put("message", b64(MSG))
        .put("signature", sig))).getBoolean("valid"));
    assertCode(ErrorCode.ACCESS_DENIED, as("bob", op("key.share").put("keyId", rsa).put("user", "carol")));
    assertCode(ErrorCode.ACCESS_DENIED, as("bob", op("key.delete").put("keyId", rsa)));
    assertTrue(keyIds("carol").isEmpty() || !keyIds("carol").contains(rsa), "carol does not see alice's keys");
    assertTrue(keyIds("bob").contains(rsa));
    request(as("alice", op("key.unshare").put("keyId", rsa).put("user", "bob")));
    assertCode(ErrorCode.ACCESS_DENIED, as("bob", op("sign").put("keyId", rsa).put("alg", "RSA_PKCS1_SHA256").put("message", b64(MSG))));
    assertFalse(keyIds("bob").contains(rsa));
    assertCode(ErrorCode.INVALID_PARAMETER, as("alice", op("key.share").put("keyId", rsa).put("user", "admin2")));
    assertCode(ErrorCode.NOT_ALLOWED_BY_POLICY, as("admin", op("user.delete").put("name", "alice")));
    assertCode(ErrorCode.ACCESS_DENIED, as("bob", op("user.changePassword").put("name", "alice").put("password", PW)));
    note("sharing: sharee signs, cannot share/delete; unshare ends use; keys are never shared with admins;"
        + " an owner of keys cannot be deleted");
  }

  // ------------------------------------------------------------------------------------ lockout

  @Test
  @Order(4)
  void fiveFailuresThroughDifferentHsmsLockTheUserUntilAnAdminUnlocks() {
    String[] hsms = {"hsm1", "hsm2", "hsm3", "hsm1", "hsm2"};
    List<ErrorCode> codes = new ArrayList<>();
    for (String hsm : hsms) {
      codes.add(outcome(login("carol", "not-the-password").put("onHsm", hsm)));
    }
    assertEquals(List.of(ErrorCode.LOGIN_FAILED, ErrorCode.LOGIN_FAILED, ErrorCode.LOGIN_FAILED, ErrorCode.LOGIN_FAILED,
        ErrorCode.USER_LOCKED), codes, "failures are counted cluster-wide: the 5th, on any HSM, locks");
    for (String hsm : List.of("hsm1", "hsm2", "hsm3")) {
      assertCode(ErrorCode.USER_LOCKED, login("carol", PW).put("onHsm", hsm));
    }
    JsonObject carol = userRecord("carol");
    assertTrue(carol.getBoolean("locked"));
    assertCode(ErrorCode.ACCESS_DENIED, as("alice", op("user.unlock").put("name", "carol")));
    request(as("admin", op("user.unlock").put("name", "carol")));
    SESSIONS.put("carol", session(request(login("carol", PW)), Role.CU));
    assertEquals(0, userRecord("carol").getInteger("failedLogins"));
    // A success resets the count: 4 failures, a success, 4 failures: still not locked.
    for (int i = 0; i < 4; i++) {
      assertCode(ErrorCode.LOGIN_FAILED, login("bob", "nope-nope-nope"));
    }
    SESSIONS.put("bob", session(request(login("bob", PW)), Role.CU));
    assertEquals(0, userRecord("bob").getInteger("failedLogins"));
    note("lockout: failures on hsm1,hsm2,hsm3,hsm1,hsm2 -> " + codes + "; right password then refused on every HSM;"
        + " admin unlock restores login; a success resets the count");
  }

  // ------------------------------------------------------------------------------------ quorum

  @Test
  @Order(5)
  void adminQuorumNeedsMValidDistinctUnexpiredApprovalsForExactlyThatOperation() throws Exception {
    for (String admin : List.of("admin", "admin2", "admin3")) {
      request(as(admin, op("user.registerKey").put("spki", b64(approvalKey(admin).getPublic().getEncoded()))));
    }
    request(as("admin", op("quorum.set").put("service", "admin").put("value", 2)));
    JsonObject create = op("user.create").put("name", "dave").put("role", "CU").put("password", PW);
    assertCode(ErrorCode.QUORUM_NOT_MET, as("admin", create.copy()));

    JsonObject token = request(as("admin", op("quorum.token").put("operation", create.copy())));
    String doc = token.getString("document");
    String id = token.getString("tokenId");
    Map<String, ErrorCode> refusals = new LinkedHashMap<>();
    refusals.put("M-1 approvals", outcome(as("admin", withQuorum(create, id, approval("admin2", doc)))));
    refusals.put("duplicate approver", outcome(as("admin", withQuorum(create, id, approval("admin2", doc), approval("admin2", doc)))));
    KeyPair forger = newRsa();
    refusals.put("forged signature", outcome(as("admin", withQuorum(create, id, approval("admin2", doc),
        new JsonObject().put("user", "admin3").put("signature", b64(sign(forger.getPrivate(), doc)))))));
    refusals.put("approval by a crypto user", outcome(as("admin", withQuorum(create, id, approval("admin2", doc),
        new JsonObject().put("user", "alice").put("signature", b64(sign(approvalKey("alice").getPrivate(), doc)))))));
    JsonObject other = op("user.create").put("name", "eve").put("role", "CO").put("password", PW);
    refusals.put("token of another operation", outcome(as("admin", withQuorum(other, id, approval("admin2", doc), approval("admin3", doc)))));
    refusals.put("token of another requester", outcome(as("admin2", withQuorum(create, id, approval("admin2", doc), approval("admin3", doc)))));
    JsonObject shortLived = request(as("admin", op("quorum.token").put("operation", create.copy()).put("ttlSeconds", 1)));
    Thread.sleep(1500);
    String sdoc = shortLived.getString("document");
    refusals.put("expired token", outcome(as("admin", withQuorum(create, shortLived.getString("tokenId"),
        approval("admin2", sdoc), approval("admin3", sdoc)))));
    for (Map.Entry<String, ErrorCode> e : refusals.entrySet()) {
      assertEquals(ErrorCode.QUORUM_NOT_MET, e.getValue(), e.getKey() + " must be refused");
    }
    assertTrue(userRecordOrNull("dave") == null && userRecordOrNull("eve") == null, "nothing was created");

    JsonObject ok = request(as("admin", withQuorum(create, id, approval("admin2", doc), approval("admin3", doc))));
    assertEquals("dave", ok.getString("name"));
    assertCode(ErrorCode.QUORUM_NOT_MET, as("admin", withQuorum(create, id, approval("admin2", doc), approval("admin3", doc))));
    note("admin quorum 2: refused " + refusals.keySet() + " (all 474, nothing created); 2 valid approvals created"
        + " dave; the used token was refused a second time");

    // A key's usage quorum: alice's AES key needs 2 crypto users' approvals to encrypt.
    for (String cu : List.of("alice", "bob")) {
      request(as(cu, op("user.registerKey").put("spki", b64(approvalKey(cu).getPublic().getEncoded()))));
    }
    request(as("alice", op("key.setQuorum").put("keyId", aes).put("management", 1).put("usage", 2)));
    JsonObject enc = op("encrypt").put("keyId", aes).put("alg", "AES_GCM").put("plaintext", b64(MSG));
    assertCode(ErrorCode.QUORUM_NOT_MET, as("alice", enc.copy()));
    JsonObject t = request(as("alice", op("quorum.token").put("operation", enc.copy())));
    assertNotNull(request(as("alice", withQuorum(enc, t.getString("tokenId"), approval("alice", t.getString("document")),
        approval("bob", t.getString("document"))))).getString("ciphertext"));
    note("key usage quorum 2: encrypt refused without approvals, ran with alice's and bob's");
  }

  // ------------------------------------------------------------------------------------ MFA, logout

  @Test
  @Order(6)
  void adminMfaByTokenSignAndLogout() throws Exception {
    request(as("admin2", op("user.setMfa").put("enabled", true)));
    assertCode(ErrorCode.LOGIN_FAILED, login("admin2", PW));
    request(as("admin", op("user.unlock").put("name", "admin2"))); // that failure counted
    JsonObject challenge = request(op("auth.challenge").put("user", "admin2"));
    byte[] c = Base64.getDecoder().decode(challenge.getString("challenge"));
    JsonObject mfa = new JsonObject().put("challengeId", challenge.getString("challengeId"))
        .put("signature", b64(sign(approvalKey("admin2").getPrivate(), c)));
    String s = session(request(login("admin2", PW).put("mfa", mfa)), Role.CO);
    assertCode(ErrorCode.LOGIN_FAILED, login("admin2", PW).put("mfa", mfa)); // a challenge serves once
    request(as("admin", op("user.unlock").put("name", "admin2")));
    assertEquals("admin2", request(op("auth.whoami").put("session", s)).getString("user"));
    request(op("auth.logout").put("session", s));
    assertCode(ErrorCode.NOT_AUTHENTICATED, op("auth.whoami").put("session", s));
    note("MFA: password alone refused, password + signed challenge accepted, a challenge serves once; logout ends the session");
  }

  // ------------------------------------------------------------------------------------ restart

  @Test
  @Order(7)
  void usersKeysSharesAndQuorumsSurviveKillingAndRestartingEveryProcess() throws Exception {
    client.close();
    for (String node : List.of("hsm1", "hsm2", "hsm3", "bridge")) {
      long pid = new JsonObject(Files.readString(home.resolve(node).resolve("endpoint.json"))).getLong("pid");
      ProcessHandle ph = ProcessHandle.of(pid).orElseThrow(() -> new AssertionError(node + " is not running"));
      assertTrue(ph.destroyForcibly(), "SIGKILL " + node);
      ph.onExit().get(10, TimeUnit.SECONDS);
    }
    CliRun up = CliRun.run(home, "up");
    assertEquals(0, up.code, up.toString());
    client = connect();
    SESSIONS.clear();
    assertCode(ErrorCode.LOGIN_FAILED, login("admin", "password"));
    SESSIONS.put("admin", session(request(login("admin", ADMIN_PW)), Role.CO));
    SESSIONS.put("alice", session(request(login("alice", PW)), Role.CU));
    SESSIONS.put("bob", session(request(login("bob", PW)), Role.CU));
    assertEquals(2, request(as("admin", op("user.list"))).getInteger("adminQuorum"));
    assertNotNull(userRecordOrNull("dave"));
    assertTrue(keyIds("bob").contains(aes) && !keyIds("bob").contains(rsa), "shares survived");
    assertCode(ErrorCode.QUORUM_NOT_MET, as("alice", op("encrypt").put("keyId", aes).put("alg", "AES_GCM").put("plaintext", b64(MSG))));
    assertNotNull(request(as("alice", op("sign").put("keyId", rsa).put("alg", "RSA_PKCS1_SHA256").put("message", b64(MSG)))));
    JsonObject audit = request(as("admin", op("cluster.auditVerify")));
    assertTrue(audit.getBoolean("intact"), audit.encodePrettily());
    CliRun export = CliRun.run(home, "audit", "export", "--hsm", "hsm1");
    assertTrue(export.out.contains("\"user\":\"alice\"") && export.out.contains("\"role\":\"CU\""), "audit names users and roles");
    assertFalse(export.out.contains(PW) || export.out.contains(ADMIN_PW), "no password in the audit log");
    note("SIGKILL of every process (3 agents + bridge), then up: users, admin quorum 2, shares, key quorum and keys intact; audit chains intact,"
        + " entries carry user and role, no password in them");
  }

  // ------------------------------------------------------------------------------------ drift

  @Test
  @Order(8)
  void aUserRecordDeletedOnOneTokenBehindTheClustersBackIsReported() throws Exception {
    JsonObject before = request(as("admin", op("cluster.check")));
    if (!before.getBoolean("usersConsistent")) {
      // Explain the mismatch: each token's user model, line by line.
      StringBuilder dumps = new StringBuilder(before.encodePrettily());
      for (String hsm : List.of("hsm1", "hsm2", "hsm3")) {
        dumps.append("\n--- ").append(hsm).append('\n').append(tamper(hsm, "dump"));
      }
      fail(dumps.toString());
    }
    assertEquals(1, before.getJsonObject("usersDigests").getMap().values().stream().distinct().count());
    String out = tamper("hsm3", "user:dave");
    assertTrue(out.contains("DELETED true"), out);
    JsonObject after = request(as("admin", op("cluster.check")));
    assertFalse(after.getBoolean("usersConsistent"), after.encodePrettily());
    assertFalse(after.getBoolean("consistent"));
    JsonObject d = after.getJsonObject("usersDigests");
    assertEquals(d.getString("hsm1"), d.getString("hsm2"));
    assertFalse(d.getString("hsm3").equals(d.getString("hsm1")), "hsm3 differs");
    // The report names the record: dave's, present on hsm1 and hsm2 alike, absent ("-") on hsm3, and nothing else.
    JsonArray differ = after.getJsonArray("usersDiffer");
    assertEquals(1, differ.size(), after.encodePrettily());
    assertEquals("user|dave", differ.getJsonObject(0).getString("record"));
    JsonObject on = differ.getJsonObject(0).getJsonObject("on");
    assertEquals("-", on.getString("hsm3"), on.encode());
    assertEquals(on.getString("hsm1"), on.getString("hsm2"), on.encode());
    assertEquals(16, on.getString("hsm1").length(), on.encode());
    note("drift: a user record deleted on hsm3's token behind the cluster's back -> cluster check: usersConsistent=false,"
        + " hsm3's users digest differs from hsm1's and hsm2's; usersDiffer names user|dave, absent on hsm3");
  }

  // ------------------------------------------------------------------------------------ helpers

  /** Runs {@link TokenTamper} on {@code hsm}'s token, live beside its agent, and returns what it printed. */
  private static String tamper(String hsm, String what) throws Exception {
    Path dir = home.resolve(hsm);
    java.util.Properties props = new java.util.Properties();
    try (var in = Files.newInputStream(dir.resolve("node.properties"))) {
      props.load(in);
    }
    ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), TokenTamper.class.getName(), props.getProperty("pkcs11.library"),
        props.getProperty("token.label"), props.getProperty("pin.user.file"), what).redirectErrorStream(true);
    pb.environment().put("SOFTHSM2_CONF", dir.resolve("softhsm2.conf").toString());
    Process child = pb.start();
    child.getOutputStream().write("go\n".getBytes(StandardCharsets.UTF_8));
    child.getOutputStream().flush();
    String out = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(child.waitFor(60, TimeUnit.SECONDS), hsm + ": TokenTamper did not end");
    return out;
  }

  private static BridgeClient connect() {
    return LocalBridge.connect(home, Duration.ofSeconds(60));
  }

  private static JsonObject op(String wire) {
    return new JsonObject().put("op", wire);
  }

  private static JsonObject login(String user, String password) {
    return op("auth.login").put("user", user).put("password", password);
  }

  private static JsonObject as(String actor, JsonObject body) {
    String s = SESSIONS.get(actor);
    return body.put("session", s != null ? s : actor);
  }

  private static String session(JsonObject loginReply, Role expected) {
    assertEquals(expected.name(), loginReply.getString("role"));
    assertTrue(loginReply.getLong("expiresAt") > System.currentTimeMillis());
    return loginReply.getString("session");
  }

  private static JsonObject request(JsonObject body) {
    return client.request(body);
  }

  /** Null when the request succeeded, else its error code. */
  private static ErrorCode outcome(JsonObject body) {
    try {
      request(body);
      return null;
    } catch (HsmBridgeException e) {
      return e.code();
    }
  }

  private static void assertCode(ErrorCode expected, JsonObject body) {
    ErrorCode got = outcome(body);
    if (got != expected) {
      fail("expected " + expected + " for " + body.getString("op") + ", got " + (got == null ? "success" : got));
    }
  }

  private static String keyOf(JsonObject generate) {
    return request(generate).getString("keyId");
  }

  private static List<String> keyIds(String actor) {
    List<String> ids = new ArrayList<>();
    request(as(actor, op("key.list"))).getJsonArray("keys").forEach(k -> ids.add(((JsonObject) k).getString("keyId")));
    return ids;
  }

  private static JsonObject userRecord(String name) {
    JsonObject u = userRecordOrNull(name);
    assertNotNull(u, "no user " + name);
    return u;
  }

  private static JsonObject userRecordOrNull(String name) {
    for (Object o : request(as("admin", op("user.list"))).getJsonArray("users")) {
      if (name.equals(((JsonObject) o).getString("name"))) {
        return (JsonObject) o;
      }
    }
    return null;
  }

  private static KeyPair approvalKey(String user) {
    return APPROVAL_KEYS.computeIfAbsent(user, u -> newRsa());
  }

  private static KeyPair newRsa() {
    try {
      KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
      g.initialize(2048);
      return g.generateKeyPair();
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private static JsonObject approval(String user, String document) {
    return new JsonObject().put("user", user).put("signature", b64(sign(approvalKey(user).getPrivate(), document)));
  }

  private static JsonObject withQuorum(JsonObject operation, String tokenId, JsonObject... approvals) {
    return operation.copy().put("quorum", new JsonObject().put("tokenId", tokenId).put("approvals", new JsonArray(List.of(approvals))));
  }

  private static byte[] sign(PrivateKey key, String document) {
    return sign(key, document.getBytes(StandardCharsets.UTF_8));
  }

  private static byte[] sign(PrivateKey key, byte[] data) {
    try {
      Signature s = Signature.getInstance("SHA256withRSA");
      s.initSign(key);
      s.update(data);
      return s.sign();
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private static String b64(byte[] b) {
    return Base64.getEncoder().encodeToString(b);
  }

  private static void note(String line) {
    REPORT.append(line).append('\n');
  }

  private static void sleepMs(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }
}
