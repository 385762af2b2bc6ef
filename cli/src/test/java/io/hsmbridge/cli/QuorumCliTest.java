package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.client.Pem;
import io.hsmbridge.client.QuorumApproval;
import io.hsmbridge.client.QuorumToken;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The offline half of the quorum walk-through with real keys: keygen, approve, and the checks a protected
 * command makes on its quorum options and files before it connects (no cluster runs here, so reaching
 * the network shows as "no local cluster running").
 */
class QuorumCliTest {
  private static final String KEY = "0123456789abcdef0123456789abcdef";

  @TempDir
  Path home;

  private String oneError(CliRun r, int code) {
    assertEquals(code, r.code, r::toString);
    assertEquals(1, r.errLines().size(), r::toString);
    return r.errLines().get(0);
  }

  private Path keygen(String name) {
    Path key = home.resolve(name + ".pem");
    CliRun r = CliRun.run(home, "quorum", "keygen", "--out", key.toString());
    assertEquals(0, r.code, r::toString);
    return key;
  }

  private Path tokenFile(long expiresAt) throws IOException {
    Path f = home.resolve("token.json");
    String document = new JsonObject().put("tokenId", "t-1").put("requester", "alice").put("op", "key.delete")
        .put("requestHash", "abc").put("expiresAt", expiresAt).encode();
    QuorumFiles.writeToken(f, new QuorumToken("t-1", document, expiresAt));
    return f;
  }

  @Test
  void keygenWritesAnRsa3072PairOwnerOnlyAndNeverOverwrites() throws IOException {
    Path key = keygen("co1");
    Path pub = home.resolve("co1.pub.pem");
    assertEquals(PrivateFiles.OWNER_ONLY, Files.getPosixFilePermissions(key));
    PublicKey p = KeyFiles.readPublic(pub);
    assertEquals(3072, ((java.security.interfaces.RSAKey) p).getModulus().bitLength());
    assertEquals(p, KeyFiles.publicOf(key));
    String before = Files.readString(key);
    String line = oneError(CliRun.run(home, "quorum", "keygen", "--out", key.toString()), ExitCodes.FAILURE);
    assertEquals("hsmbridge: " + key + " already exists; refusing to overwrite a key (choose another --out)", line);
    assertEquals(before, Files.readString(key));
    assertEquals(home.resolve("x.pub.pem"), KeyFiles.publicKeyPathFor(home.resolve("x")));
  }

  @Test
  void approveSignsTheDocumentOfflineAndShowsIt() throws IOException {
    Path key = keygen("co1");
    Path token = tokenFile(System.currentTimeMillis() + 600_000);
    Path out = home.resolve("co1.approval.json");
    CliRun r = CliRun.run(home, "quorum", "approve", "--token", token.toString(), "--user", "co1", "--key", key.toString(),
        "--out", out.toString());
    assertEquals(0, r.code, r::toString);
    assertTrue(r.out.contains("\"op\" : \"key.delete\"") && r.out.contains("\"requester\" : \"alice\""), r.out);
    QuorumApproval a = QuorumFiles.readApproval(out);
    assertEquals("t-1", a.tokenId());
    assertEquals("co1", a.user());
    QuorumToken t = QuorumFiles.readToken(token);
    assertTrue(QuorumApproval.verify(t.document(), a.signature(), KeyFiles.readPublic(home.resolve("co1.pub.pem"))));
    assertFalse(Files.readString(out).contains("PRIVATE"));
  }

  @Test
  void approveRefusesAnExpiredTokenAndABadKeyInOneLine() throws Exception {
    Path key = keygen("co1");
    Path out = home.resolve("a.json");
    String expired = oneError(CliRun.run(home, "quorum", "approve", "--token", tokenFile(1000).toString(), "--user", "co1",
        "--key", key.toString(), "--out", out.toString()), ExitCodes.FAILURE);
    assertTrue(expired.contains("expired at 1970-01-01T00:00:01Z; nothing was signed"), expired);
    assertFalse(Files.exists(out));

    KeyPairGenerator ec = KeyPairGenerator.getInstance("EC");
    Path ecKey = Files.writeString(home.resolve("ec.pem"), Pem.privateKey(ec.generateKeyPair().getPrivate()));
    String bad = oneError(CliRun.run(home, "quorum", "approve", "--token", tokenFile(Long.MAX_VALUE).toString(), "--user",
        "co1", "--key", ecKey.toString(), "--out", out.toString()), ExitCodes.FAILURE);
    assertEquals("hsmbridge: " + ecKey + ": the PEM private key is not an RSA key (approval keys are RSA)", bad);
  }

  @Test
  void quorumOptionCombinationsAreUsageErrorsBeforeConnecting() {
    assertTrue(oneError(CliRun.run(home, "key", "delete", KEY, "--quorum-request", "a", "--quorum-token", "b"),
        ExitCodes.USAGE).contains("--quorum-request and --quorum-token exclude each other"));
    assertTrue(oneError(CliRun.run(home, "key", "delete", KEY, "--approval", "a"), ExitCodes.USAGE)
        .contains("--approval needs --quorum-token FILE"));
    assertTrue(oneError(CliRun.run(home, "sign", "--key", KEY, "--alg", "ED25519", "--text", "m", "--quorum-ttl", "60"),
        ExitCodes.USAGE).contains("--quorum-ttl needs --quorum-request and must be 1..3600"));
    assertTrue(oneError(CliRun.run(home, "user", "delete", "bob", "--quorum-request", "a", "--quorum-ttl", "0"),
        ExitCodes.USAGE).contains("--quorum-ttl"));
    assertTrue(oneError(CliRun.run(home, "quorum", "set", "--admin", "2", "--quorum-token", "t"), ExitCodes.USAGE)
        .contains("--quorum-token needs at least one --approval FILE"));
    // Unprotected commands do not take them at all.
    assertTrue(oneError(CliRun.run(home, "random", "--quorum-request", "a"), ExitCodes.USAGE).contains("--quorum-request"));
    // A well-formed request goes as far as connecting.
    assertEquals("hsmbridge: " + CliException.NOT_RUNNING,
        oneError(CliRun.run(home, "key", "delete", KEY, "--quorum-request", "a", "--quorum-ttl", "60"), ExitCodes.FAILURE));
  }

  @Test
  void approvalsAreCheckedAgainstTheirTokenBeforeConnecting() throws IOException {
    Path token = tokenFile(System.currentTimeMillis() + 600_000);
    Path a1 = home.resolve("a1.json");
    Path a2 = home.resolve("a2.json");
    QuorumFiles.writeApproval(a1, new QuorumApproval("t-1", "co1", "c2ln"));
    QuorumFiles.writeApproval(a2, new QuorumApproval("t-2", "co2", "c2ln"));
    assertEquals("hsmbridge: " + a2 + " approves token t-2, not t-1 of " + token,
        oneError(CliRun.run(home, "key", "delete", KEY, "--quorum-token", token.toString(), "--approval", a1.toString(),
            "--approval", a2.toString()), ExitCodes.FAILURE));
    assertEquals("hsmbridge: two approvals of co1: each approver counts once",
        oneError(CliRun.run(home, "key", "delete", KEY, "--quorum-token", token.toString(), "--approval",
            a1 + "," + a1), ExitCodes.FAILURE));
    assertEquals("hsmbridge: " + CliException.NOT_RUNNING,
        oneError(CliRun.run(home, "key", "delete", KEY, "--quorum-token", token.toString(), "--approval", a1.toString()),
            ExitCodes.FAILURE));
    Path expired = tokenFile(1000);
    assertTrue(oneError(CliRun.run(home, "key", "delete", KEY, "--quorum-token", expired.toString(), "--approval",
        a1.toString()), ExitCodes.FAILURE).contains("expired at 1970-01-01T00:00:01Z; request a new one"));
    Path notAToken = home.resolve("a1.json");
    assertEquals("hsmbridge: " + notAToken + " is no quorum token file (it needs tokenId, document and expiresAt;"
        + " --quorum-request writes one)", oneError(CliRun.run(home, "key", "delete", KEY, "--quorum-token",
        notAToken.toString(), "--approval", a1.toString()), ExitCodes.FAILURE));
  }

  @Test
  void newCommandsReportUsageErrorsInOneLine() throws Exception {
    assertTrue(oneError(CliRun.run(home, "user"), ExitCodes.USAGE)
        .contains("create, delete, list, passwd, unlock, register-key, mfa"));
    assertTrue(oneError(CliRun.run(home, "quorum"), ExitCodes.USAGE).contains("keygen, set, approve"));
    assertTrue(oneError(CliRun.run(home, "cluster"), ExitCodes.USAGE).contains("check, activate"));
    assertTrue(oneError(CliRun.run(home, "user", "create", "bob"), ExitCodes.USAGE).contains("--role"));
    assertTrue(oneError(CliRun.run(home, "user", "create", "bob", "--role", "root"), ExitCodes.USAGE)
        .contains("role must be CO (admin) or CU (crypto user)"));
    assertTrue(oneError(CliRun.run(home, "user", "mfa"), ExitCodes.USAGE).contains("--enable"));
    assertTrue(oneError(CliRun.run(home, "user", "mfa", "--enable", "--disable"), ExitCodes.USAGE).contains("mutually exclusive"));
    assertTrue(oneError(CliRun.run(home, "user", "register-key"), ExitCodes.USAGE).contains("--key"));
    assertTrue(oneError(CliRun.run(home, "quorum", "set", "--admin", "9"), ExitCodes.USAGE).contains("--admin must be 1..8"));
    assertTrue(oneError(CliRun.run(home, "key", "quorum", KEY, "--management", "0", "--usage", "1"), ExitCodes.USAGE)
        .contains("--management and --usage must be 1..8"));
    assertTrue(oneError(CliRun.run(home, "key", "share", KEY), ExitCodes.USAGE).contains("--with"));
    assertTrue(oneError(CliRun.run(home, "key", "wrap", KEY, "--wrapping-key", KEY, "--alg", "DES"), ExitCodes.USAGE)
        .contains("--alg must be AES_KEY_WRAP_PAD or RSA_OAEP"));
    assertTrue(oneError(CliRun.run(home, "login"), ExitCodes.USAGE).contains("--user"));
    assertTrue(oneError(CliRun.run(home, "login", "--user", "a", "--password", "x"), ExitCodes.USAGE)
        .contains("--password"));

    KeyPairGenerator small = KeyPairGenerator.getInstance("RSA");
    small.initialize(1024);
    Path weak = Files.writeString(home.resolve("weak.pem"), Pem.privateKey(small.generateKeyPair().getPrivate()));
    assertEquals("hsmbridge: " + weak + ": an approval key needs at least 2048 bits, this one has 1024",
        oneError(CliRun.run(home, "user", "register-key", "--key", weak.toString()), ExitCodes.FAILURE));
  }

  @Test
  void errorsOfTheUserModelSayWhatToDo() {
    List<String> lines = List.of(
        AuthHints.explain(new io.hsmbridge.client.HsmBridgeException(io.hsmbridge.protocol.ErrorCode.NOT_AUTHENTICATED,
            "NOT_AUTHENTICATED: no session")),
        AuthHints.explain(new io.hsmbridge.client.HsmBridgeException(io.hsmbridge.protocol.ErrorCode.QUORUM_NOT_MET,
            "QUORUM_NOT_MET: need 2")));
    assertEquals("not logged in or session expired: run hsmbridge login --user NAME", lines.get(0));
    assertTrue(lines.get(1).startsWith("QUORUM_NOT_MET: need 2 (request a token with --quorum-request FILE"), lines.get(1));
  }
}
