package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line against REAL node processes on real SoftHSM2 tokens, as a new user would use it: a
 * cluster of two HSMs comes up, serves keys and crypto, grows to three, loses one, and goes down; and the
 * demo tour on its throwaway one-HSM cluster. One class, so the node JVMs start once per build.
 */
class RealNodeCliTest {
  @TempDir
  Path home;

  /** Session and password files: beside the data directory, not in it. */
  @TempDir
  Path sessions;

  private Map<String, String> cu = Map.of();

  @AfterEach
  void stopCluster() {
    CliRun.run(home, "down");
  }

  @Test
  void clusterUpUseGrowShrinkDown() throws IOException {
    CliRun up = CliRun.run(home, "up", "--hsms", "2", "--port", "0");
    assertEquals(0, up.code, up + logs());
    assertTrue(up.out.contains("hsmbridge is up: 2 HSMs, durability 2"), up.out);
    assertTrue(up.out.lines().anyMatch(l -> l.matches(" +hsm2 +SERVING +token hsmbridge-hsm2, pid \\d+")), up.out);
    assertServing(List.of("hsm1", "hsm2"));
    CliRun again = CliRun.run(home, "up");
    assertEquals(0, again.code, again.toString());
    assertTrue(again.out.contains("hsmbridge is already running: 2 HSMs"), again.out);
    CliRun anonymous = CliRun.run(home, "key", "list");
    assertEquals(List.of("hsmbridge: " + AuthHints.NOT_LOGGED_IN), anonymous.errLines(), anonymous::toString);
    TestLogins logins = TestLogins.activate(home, sessions);
    cu = logins.cu();
    Map<String, String> co = logins.co();

    String aes = keyId(CliRun.run(home, cu, "key", "generate", "--spec", "AES_256", "--label", "cli-aes"));
    CliRun enc = CliRun.run(home, cu, "encrypt", "--key", aes, "--text", "hello", "--aad-text", "ctx");
    assertEquals(0, enc.code, enc.toString());
    JsonObject c = new JsonObject(enc.out.trim());
    assertDecrypts(aes, c);
    CliRun wrongAad = CliRun.run(home, cu, "decrypt", "--key", aes, "--iv", c.getString("iv"), "--ciphertext",
        c.getString("ciphertext"), "--aad-text", "other");
    assertEquals(1, wrongAad.code);
    assertEquals(List.of("hsmbridge: CRYPTO_FAILURE: cryptographic operation failed"), wrongAad.errLines());

    String ec = keyId(CliRun.run(home, cu, "key", "generate", "--spec", "EC_P256", "--label", "cli-ec"));
    CliRun sig = CliRun.run(home, cu, "sign", "--key", ec, "--alg", "ECDSA_SHA256", "--text", "msg");
    assertEquals(0, sig.code, sig.toString());
    CliRun ok = CliRun.run(home, cu, "verify", "--key", ec, "--alg", "ECDSA_SHA256", "--text", "msg", "--signature", sig.out.trim());
    assertEquals(0, ok.code, ok.toString());
    CliRun bad = CliRun.run(home, cu, "verify", "--key", ec, "--alg", "ECDSA_SHA256", "--text", "msh", "--signature", sig.out.trim());
    assertEquals(1, bad.code, bad.toString());
    CliRun unknown = CliRun.run(home, cu, "key", "describe", "00000000000000000000000000000000");
    assertEquals(List.of("hsmbridge: UNKNOWN_KEY: no key with id 00000000000000000000000000000000"), unknown.errLines());

    CliRun add = CliRun.run(home, "hsm", "add");
    assertEquals(0, add.code, add + logs());
    assertTrue(add.out.contains("added hsm3: SERVING (token hsmbridge-hsm3, objects "), add.out);
    assertServing(List.of("hsm1", "hsm2", "hsm3"));
    CliRun list = CliRun.run(home, "hsm", "list");
    assertEquals(0, list.code, list.toString());
    assertEquals(4, list.out.lines().count(), list.out);
    assertDecrypts(aes, c);

    CliRun remove = CliRun.run(home, co, "hsm", "remove", "hsm2");
    assertEquals(0, remove.code, remove + logs());
    assertTrue(remove.out.contains("removed hsm2 (stopped pid "), remove.out);
    assertTrue(remove.out.contains("HSMs now    hsm1, hsm3"), remove.out);
    try (Stream<Path> removed = Files.list(home.resolve("removed"))) {
      assertTrue(Files.isDirectory(removed.findFirst().orElseThrow().resolve("tokens")), "the token is kept");
    }
    CliRun status = assertServing(List.of("hsm1", "hsm3"));
    assertFalse(status.out.contains("hsm2"), status.out);
    assertDecrypts(aes, c);
    CliRun keys = CliRun.run(home, cu, "key", "list");
    assertTrue(keys.out.contains(aes) && keys.out.contains(ec), keys.out);
    CliRun check = CliRun.run(home, co, "cluster", "check");
    assertEquals(0, check.code, check + logs());
    assertTrue(check.out.strip().endsWith("consistent"), check.out);

    CliRun down = CliRun.run(home, "down");
    assertEquals(0, down.code, down.toString());
    assertTrue(down.out.matches("stopped hsm1 \\(pid \\d+\\), hsm3 \\(pid \\d+\\), bridge \\(pid \\d+\\)\\n"), down.out);
    assertEquals(3, CliRun.run(home, "status").code, "status after down");
  }

  /**
   * The user model from the command line on a one-HSM cluster: the PRECO and activation, roles, key
   * ownership and sharing, approval keys, a key's management quorum and the admin quorum walked through
   * with --quorum-request / quorum approve / --quorum-token, MFA, lockout and unlock, logout.
   */
  @Test
  void usersRolesQuorumMfaAndLockoutFromTheCommandLine() throws IOException {
    CliRun up = CliRun.run(home, "up", "--hsms", "1", "--port", "0");
    assertEquals(0, up.code, up + logs());
    Map<String, String> precoSession = Map.of(SessionFile.ENV, sessions.resolve("preco.session").toString());
    CliRun preco = CliRun.runWithInput(home, precoSession, "password\n", "login", "--user", "admin");
    assertEquals(0, preco.code, preco.toString());
    assertTrue(preco.out.contains("logged in as admin (PRECO)") && preco.out.contains("hsmbridge cluster activate"), preco.out);
    Path precoFile = sessions.resolve("preco.session");
    assertEquals(PrivateFiles.OWNER_ONLY, Files.getPosixFilePermissions(precoFile));
    assertFalse(preco.out.contains(new SessionFile(precoFile).token()), "the token is never printed");

    TestLogins t = TestLogins.activate(home, sessions);
    assertEquals(List.of("hsmbridge: " + AuthHints.NOT_LOGGED_IN), CliRun.run(home, precoSession, "whoami").errLines(),
        "activation ended the PRECO session");
    CliRun again = CliRun.run(home, "cluster", "activate", "--password-file", t.passwordFile("x").toString());
    assertEquals(1, again.code, again.toString());
    assertTrue(again.err.contains("activated already"), again.err);
    CliRun who = CliRun.run(home, t.co(), "whoami");
    assertTrue(who.out.startsWith("admin (CO), session ends at "), who.toString());
    CliRun coKeys = CliRun.run(home, t.co(), "key", "list");
    assertEquals(1, coKeys.code);
    assertTrue(coKeys.err.startsWith("hsmbridge: ACCESS_DENIED: ") && coKeys.err.contains("see 'hsmbridge whoami'"),
        coKeys.err);
    assertEquals(1, CliRun.run(home, t.cu(), "user", "list").code, "a CU manages no users");

    // Ownership and sharing.
    String key = keyId(CliRun.run(home, t.cu(), "key", "generate", "--spec", "EC_P256", "--label", "owned"));
    assertEquals("alice", new JsonObject(CliRun.run(home, t.cu(), "key", "describe", key).out).getString("owner"));
    t.createUser("bob", "CU");
    t.login("bob");
    Map<String, String> bob = t.sessionOf("bob");
    assertEquals(1, CliRun.run(home, bob, "sign", "--key", key, "--alg", "ECDSA_SHA256", "--text", "m").code,
        "not shared yet");
    CliRun share = CliRun.run(home, t.cu(), "key", "share", key, "--with", "bob");
    assertEquals(0, share.code, share.toString());
    assertEquals(List.of("bob"), new JsonObject(share.out).getJsonArray("sharedWith").getList());
    assertEquals(0, CliRun.run(home, bob, "sign", "--key", key, "--alg", "ECDSA_SHA256", "--text", "m").code);
    assertEquals(1, CliRun.run(home, bob, "key", "delete", key).code, "a user it is shared with may not delete it");

    // A key's management quorum: two crypto users approve its deletion.
    for (String u : List.of("alice", "bob")) {
      assertEquals(0, CliRun.run(home, "quorum", "keygen", "--out", sessions.resolve(u + ".pem").toString()).code);
      CliRun reg = CliRun.run(home, t.sessionOf(u), "user", "register-key", "--key", sessions.resolve(u + ".pem").toString());
      assertEquals(0, reg.code, reg.toString());
    }
    assertEquals(0, CliRun.run(home, t.cu(), "key", "quorum", key, "--management", "2", "--usage", "1").code);
    CliRun refused = CliRun.run(home, t.cu(), "key", "delete", key);
    assertEquals(1, refused.code);
    assertTrue(refused.err.startsWith("hsmbridge: QUORUM_NOT_MET: ") && refused.err.contains("--quorum-request"), refused.err);
    walkQuorum(t.cu(), List.of("alice", "bob"), "key", "delete", key);
    assertEquals(1, CliRun.run(home, t.cu(), "key", "describe", key).code, "deleted with two approvals");

    // The admin quorum: two crypto officers approve a new user.
    t.createUser("co2", "CO");
    t.login("co2");
    for (String u : List.of("admin", "co2")) {
      assertEquals(0, CliRun.run(home, "quorum", "keygen", "--out", sessions.resolve(u + ".pem").toString()).code);
      assertEquals(0, CliRun.run(home, t.sessionOf(u), "user", "register-key", "--key", sessions.resolve(u + ".pem").toString())
          .code);
    }
    assertEquals(0, CliRun.run(home, t.co(), "quorum", "set", "--admin", "2").code);
    String carolPassword = t.passwordFile("carol").toString();
    CliRun noQuorum = CliRun.run(home, t.co(), "user", "create", "carol", "--role", "CU", "--password-file", carolPassword);
    assertTrue(noQuorum.err.startsWith("hsmbridge: QUORUM_NOT_MET: "), noQuorum.toString());
    walkQuorum(t.co(), List.of("admin", "co2"), "user", "create", "carol", "--role", "CU", "--password-file", carolPassword);
    CliRun users = CliRun.run(home, t.co(), "user", "list");
    assertEquals(0, users.code, users.toString());
    assertTrue(users.out.lines().anyMatch(l -> l.matches("carol +CU +no +0 +no +no")), users.out);
    // The second 'cluster activate' tried admin with the PRECO password: it counts as a failed login.
    assertTrue(users.out.lines().anyMatch(l -> l.matches("admin +CO +no +1 +yes +no")), users.out);
    assertTrue(users.out.contains("admin quorum: 2 approvals"), users.out);

    // MFA for the admin: the password alone no longer logs in.
    assertEquals(0, CliRun.run(home, t.co(), "user", "mfa", "--enable").code);
    Map<String, String> fresh = Map.of(SessionFile.ENV, sessions.resolve("mfa.session").toString());
    String adminPassword = t.passwordFile("admin").toString();
    assertEquals(1, CliRun.run(home, fresh, "login", "--user", "admin", "--password-file", adminPassword).code);
    CliRun mfa = CliRun.run(home, fresh, "login", "--user", "admin", "--password-file", adminPassword, "--mfa-key",
        sessions.resolve("admin.pem").toString());
    assertEquals(0, mfa.code, mfa.toString());

    // Lockout after consecutive failed logins; a CO unlocks.
    Path wrong = Files.writeString(sessions.resolve("wrong.password"), "not bob's password at all\n");
    CliRun failed = null;
    for (int i = 0; i < 6 && (failed == null || !failed.err.contains("USER_LOCKED")); i++) {
      failed = CliRun.run(home, bob, "login", "--user", "bob", "--password-file", wrong.toString());
      assertEquals(1, failed.code, failed.toString());
    }
    CliRun locked = CliRun.run(home, bob, "login", "--user", "bob", "--password-file", t.passwordFile("bob").toString());
    assertTrue(locked.err.startsWith("hsmbridge: USER_LOCKED: ") && locked.err.contains("hsmbridge user unlock bob"),
        locked.toString());
    assertEquals(0, CliRun.run(home, t.co(), "user", "unlock", "bob").code);
    t.login("bob");

    CliRun logout = CliRun.run(home, t.cu(), "logout");
    assertEquals("logged out alice; deleted " + t.sessionFile("alice") + "\n", logout.out, logout.toString());
    assertEquals(List.of("hsmbridge: " + AuthHints.NOT_LOGGED_IN), CliRun.run(home, t.cu(), "key", "list").errLines());
  }

  /**
   * Runs {@code command} the quorum way: --quorum-request, each approver's offline approval, then the same
   * command with --quorum-token and the approvals; asserts that it succeeded.
   */
  private void walkQuorum(Map<String, String> session, List<String> approvers, String... command) {
    Path token = sessions.resolve("token-" + System.nanoTime() + ".json");
    List<String> request = new java.util.ArrayList<>(List.of(command));
    request.addAll(List.of("--quorum-request", token.toString()));
    CliRun asked = CliRun.run(home, session, request.toArray(String[]::new));
    assertEquals(0, asked.code, asked.toString());
    assertTrue(asked.out.startsWith("quorum token "), asked.out);
    List<String> run = new java.util.ArrayList<>(List.of(command));
    run.addAll(List.of("--quorum-token", token.toString()));
    for (String approver : approvers) {
      Path approval = sessions.resolve(approver + "-" + token.getFileName());
      CliRun signed = CliRun.run(home, "quorum", "approve", "--token", token.toString(), "--user", approver, "--key",
          sessions.resolve(approver + ".pem").toString(), "--out", approval.toString());
      assertEquals(0, signed.code, signed.toString());
      run.addAll(List.of("--approval", approval.toString()));
    }
    CliRun done = CliRun.run(home, session, run.toArray(String[]::new));
    assertEquals(0, done.code, done + logs());
  }

  @Test
  void demoTourPassesEveryCheck() {
    CliRun demo = CliRun.run(home, "demo");
    assertEquals(0, demo.code, demo.toString());
    assertTrue(demo.out.matches("(?s).*demo: all \\d+ checks passed.*"), demo.out);
    assertTrue(demo.out.lines().noneMatch(l -> l.startsWith("FAIL")), demo.out);
    assertTrue(demo.out.lines().filter(l -> l.startsWith("ok ")).count() >= 30, "the tour checks every spec and op: " + demo.out);
  }

  /** status exits 0 and shows exactly these HSMs, each SERVING. */
  private CliRun assertServing(List<String> hsms) {
    CliRun status = CliRun.run(home, "status");
    assertEquals(0, status.code, status.toString());
    assertTrue(status.out.startsWith("hsmbridge is running: " + hsms.size() + " of " + hsms.size() + " HSMs healthy"),
        status + logs());
    for (String id : hsms) {
      assertTrue(status.out.lines().anyMatch(l -> l.matches(" +" + id + " +SERVING .*")), status.out);
    }
    return status;
  }

  private void assertDecrypts(String keyId, JsonObject c) {
    CliRun dec = CliRun.run(home, cu, "decrypt", "--key", keyId, "--iv", c.getString("iv"), "--ciphertext",
        c.getString("ciphertext"), "--aad-text", "ctx");
    assertEquals(0, dec.code, dec.toString());
    assertEquals("hello", dec.out);
  }

  private static String keyId(CliRun run) {
    assertEquals(0, run.code, run.toString());
    return new JsonObject(run.out.trim()).getString("keyId");
  }

  /** The last lines of every node's log, for a failure message. */
  private String logs() {
    return TestLogins.logTails(home);
  }

}
