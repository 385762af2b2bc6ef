package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.client.BridgeClient;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.time.Duration;
import java.util.Base64;
import java.util.Comparator;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Disaster recovery from the command line (issue #12 items 5, 7 and 8, docs/disaster-recovery.md), on real
 * node processes and real SoftHSM2 tokens: a CO escrows the backup key to an offline recovery token, a
 * backup is made and copied to another store ({@code copy-to-region}); then every HSM, every token, every
 * Raft log and the cluster's own backup directory are destroyed. {@code up --from-backup}
 * builds a new cluster of two HSMs from the backup file, the escrow and the recovery token: the old users
 * log in with their old passwords, a ciphertext made before the backup decrypts, a signature made after
 * the restore verifies with the old public key, and the added HSM serves the keys too. An escrow for
 * another recovery token is refused before anything starts.
 */
class DisasterRecoveryScenarioTest {
  private static final byte[] SECRET = "made before the disaster".getBytes(StandardCharsets.UTF_8);

  @TempDir
  Path work;

  private Path oldHome;
  private Path newHome;

  @AfterEach
  void stopClusters() {
    for (Path h : new Path[] {oldHome, newHome}) {
      if (h != null && Files.exists(h)) {
        CliRun.run(h, "down");
      }
    }
  }

  @Test
  void everyHsmLostTheBackupTheEscrowAndTheRecoveryTokenBringTheClusterBack() throws Exception {
    oldHome = Files.createDirectories(work.resolve("old"));
    Path drStore = work.resolve("dr-store"); // another region: it outlives the old cluster's machines
    Files.writeString(oldHome.resolve("agent.properties"), "backup.store.dr=" + drStore + "\n");
    CliRun up = CliRun.run(oldHome, "up", "--hsms", "2", "--port", "0");
    assertEquals(0, up.code, up.toString());
    TestLogins logins = TestLogins.activate(oldHome, Files.createDirectories(work.resolve("old-sessions")));
    String aes;
    String ec;
    JsonObject sealed;
    byte[] ecPublic;
    try (BridgeClient client = LocalBridge.connect(oldHome, Duration.ofSeconds(60))) {
      aes = generate(client, logins.cuToken(), "AES_256", "payments");
      ec = generate(client, logins.cuToken(), "EC_P256", "signing");
      sealed = client.request(new JsonObject().put("op", "encrypt").put("session", logins.cuToken()).put("keyId", aes)
          .put("alg", "AES_GCM").put("plaintext", Base64.getEncoder().encodeToString(SECRET)));
      ecPublic = Base64.getDecoder().decode(client.request(new JsonObject().put("op", "key.publicKey")
          .put("session", logins.cuToken()).put("keyId", ec)).getString("spki"));
    }

    Path recovery = work.resolve("recovery-token");
    CliRun init = CliRun.run(oldHome, "recovery", "init", "--dir", recovery.toString());
    assertEquals(0, init.code, init.toString());
    assertTrue(init.out.startsWith("recovery key "), init.out);
    Path escrow = work.resolve("escrow.json");
    CliRun refusedForCu = CliRun.run(oldHome, logins.cu(), "backup", "escrow", "--recovery-key",
        recovery.resolve("recovery-key.pem").toString(), "--out", escrow.toString());
    assertNotEquals(0, refusedForCu.code, refusedForCu.toString());
    assertFalse(Files.exists(escrow));
    CliRun escrowed = CliRun.run(oldHome, logins.co(), "backup", "escrow", "--recovery-key",
        recovery.resolve("recovery-key.pem").toString(), "--out", escrow.toString());
    assertEquals(0, escrowed.code, escrowed + logs(oldHome));
    CliRun created = CliRun.run(oldHome, logins.co(), "backup", "create");
    assertEquals(0, created.code, created + logs(oldHome));
    String sourceId = new JsonObject(created.out.trim()).getString("backupId");
    CliRun copied = CliRun.run(oldHome, logins.co(), "backup", "copy-to-region", sourceId, "--to", "dr");
    assertEquals(0, copied.code, copied + logs(oldHome));
    JsonObject copy = new JsonObject(copied.out.trim());
    assertEquals("READY", copy.getString("state"), copy.encode());
    assertEquals("local", copy.getString("sourceStore"), copy.encode());
    assertEquals(sourceId, copy.getString("sourceBackupId"), copy.encode());
    assertNotNull(copy.getString("sourceCluster"), copy.encode());
    String backupId = copy.getString("backupId");
    assertNotEquals(sourceId, backupId);
    Path offsite = drStore.resolve(backupId + ".hbk");
    assertTrue(Files.isRegularFile(offsite), offsite.toString());

    // The disaster: every process, token, Raft log and backup directory of the old cluster is gone.
    assertEquals(0, CliRun.run(oldHome, "down").code);
    deleteTree(oldHome);
    oldHome = null;

    // An escrow made for another recovery token is refused before anything starts.
    Path otherRecovery = work.resolve("other-recovery-token");
    assertEquals(0, CliRun.run(work, "recovery", "init", "--dir", otherRecovery.toString()).code);
    Path wrongHome = Files.createDirectories(work.resolve("wrong"));
    CliRun wrong = CliRun.run(wrongHome, "up", "--from-backup", offsite.toString(), "--escrow", escrow.toString(),
        "--recovery-dir", otherRecovery.toString(), "--hsms", "1", "--port", "0");
    assertNotEquals(0, wrong.code, wrong.toString());
    assertTrue(wrong.err.contains("the escrow file was made for recovery key"), wrong.toString());
    assertFalse(Files.exists(wrongHome.resolve("hsm1").resolve("endpoint.json")), "nothing started");
    assertFalse(Files.exists(wrongHome.resolve("cluster.properties")), "nothing left half-made: the restore can be run again");
    assertFalse(Files.exists(wrongHome.resolve("hsm1")), "nothing left half-made: the restore can be run again");

    // A backup id the store does not hold is refused before anything starts.
    CliRun unknown = CliRun.run(wrongHome, "backup", "restore", "backup-aaaaaaaaaaaaaaaa", "--store", drStore.toString(),
        "--escrow", escrow.toString(), "--recovery-dir", recovery.toString(), "--hsms", "1", "--port", "0");
    assertNotEquals(0, unknown.code, unknown.toString());
    assertTrue(unknown.err.contains("holds no backup backup-aaaaaaaaaaaaaaaa"), unknown.toString());

    // By its id in the offsite store, as an operator reads it from `backup list` there.
    newHome = Files.createDirectories(work.resolve("new"));
    long t0 = System.nanoTime();
    CliRun restored = CliRun.run(newHome, "backup", "restore", backupId, "--store", drStore.toString(), "--escrow",
        escrow.toString(), "--recovery-dir", recovery.toString(), "--hsms", "2", "--port", "0");
    long ms = (System.nanoTime() - t0) / 1_000_000;
    assertEquals(0, restored.code, restored + logs(newHome));
    assertTrue(restored.out.contains("restored backup " + sourceId), restored.out); // the copy's file is the source's
    // Progress lines (no terminal here): at least the last one, all keys of the file restored.
    int keys = io.hsmbridge.agent.backup.BackupFile.parse(Files.readAllBytes(offsite)).header().getInteger("keys");
    assertTrue(restored.err.contains("restoring onto hsm1: keys " + keys + " of " + keys + " (100 %)"), restored.err);

    TestLogins again = TestLogins.of(newHome, Files.createDirectories(work.resolve("new-sessions")));
    again.login(TestLogins.ADMIN); // old passwords
    again.login(TestLogins.CRYPTO_USER);
    try (BridgeClient client = LocalBridge.connect(newHome, Duration.ofSeconds(60))) {
      for (String hsm : new String[] {"hsm1", "hsm2"}) {
        JsonObject plain = client.request(new JsonObject().put("op", "decrypt").put("session", again.cuToken())
            .put("onHsm", hsm).put("keyId", aes).put("alg", "AES_GCM").put("ciphertext", sealed.getString("ciphertext"))
            .put("iv", sealed.getString("iv")));
        assertArrayEquals(SECRET, Base64.getDecoder().decode(plain.getString("plaintext")), hsm);
        assertEquals(hsm, plain.getString("servedBy"));
        byte[] message = ("signed after the restore on " + hsm).getBytes(StandardCharsets.UTF_8);
        JsonObject sig = client.request(new JsonObject().put("op", "sign").put("session", again.cuToken()).put("onHsm", hsm)
            .put("keyId", ec).put("alg", "ECDSA_SHA256").put("message", Base64.getEncoder().encodeToString(message)));
        assertTrue(verifiesWithOldKey(ecPublic, message, Base64.getDecoder().decode(sig.getString("signature"))), hsm);
      }
      String fresh = generate(client, again.cuToken(), "AES_256", "after the restore");
      assertNotNull(fresh);
    }
    CliRun check = CliRun.run(newHome, again.co(), "cluster", "check");
    assertEquals(0, check.code, check + logs(newHome));
    // The restore is the first line of the new hsm1's audit log, chained and anchored like every later one.
    CliRun exported = CliRun.run(newHome, "audit", "export", "--hsm", "hsm1");
    assertEquals(0, exported.code, exported.toString());
    JsonObject first = new JsonObject(exported.out.lines().findFirst().orElseThrow());
    assertEquals(1L, first.getLong("seq"), first.encode());
    assertEquals("backup.restore", first.getString("op"), first.encode());
    assertTrue(first.getString("result").startsWith("OK backup " + sourceId + " of cluster "), first.encode());
    assertTrue(first.getString("result").contains("recovery key " + new JsonObject(Files.readString(escrow))
        .getString("recoveryKeySha256")), first.encode());
    CliRun verified = CliRun.run(newHome, again.co(), "audit", "verify");
    assertEquals(0, verified.code, verified + logs(newHome));
    System.out.println("[disaster recovery] backup " + sourceId + " (" + Files.size(offsite) + " bytes) restored into a"
        + " new cluster of 2 HSMs from its copy " + backupId + " in store dr in " + ms + " ms by up --from-backup; old passwords, old ciphertext and old public key"
        + " work on both HSMs; cluster check consistent");
  }

  private static String generate(BridgeClient client, String session, String spec, String label) {
    return client.request(new JsonObject().put("op", "key.generate").put("session", session).put("spec", spec)
        .put("label", label).put("requestId", UUID.randomUUID().toString())).getString("keyId");
  }

  private static boolean verifiesWithOldKey(byte[] spki, byte[] message, byte[] signature) throws Exception {
    Signature v = Signature.getInstance("SHA256withECDSA");
    v.initVerify(KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(spki)));
    v.update(message);
    if (signature.length == 64) {
      signature = rawToDer(signature);
    }
    return v.verify(signature);
  }

  private static byte[] rawToDer(byte[] raw) throws Exception {
    org.bouncycastle.asn1.ASN1EncodableVector v = new org.bouncycastle.asn1.ASN1EncodableVector();
    v.add(new org.bouncycastle.asn1.ASN1Integer(new java.math.BigInteger(1, java.util.Arrays.copyOfRange(raw, 0, 32))));
    v.add(new org.bouncycastle.asn1.ASN1Integer(new java.math.BigInteger(1, java.util.Arrays.copyOfRange(raw, 32, 64))));
    return new org.bouncycastle.asn1.DERSequence(v).getEncoded();
  }

  private static void deleteTree(Path dir) throws java.io.IOException {
    try (Stream<Path> all = Files.walk(dir)) {
      for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  private static String logs(Path home) {
    return TestLogins.logTails(home);
  }
}
