package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.client.BridgeClient;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Rotating the backup key and the cluster key from the command line (docs/backups.md, "Rotating the backup
 * key"; docs/replication.md, "Rotating the cluster key"), on real node processes and SoftHSM2 tokens: a CO
 * rotates (a CU may not); a backup made after the rotation is made under the new generation, which a new HSM
 * ({@code hsm add}) receives and restores from; a key made after a cluster key rotation reaches every HSM,
 * and an HSM added after it receives both generations; the escrow of the old backup key generation does not
 * open the backup, the escrow of the new one does, and the cluster restored from it rotates on.
 */
class BackupKeyRotationScenarioTest {
  private static final byte[] SECRET = "made before the rotation".getBytes(StandardCharsets.UTF_8);

  @TempDir
  Path work;

  private Path home;
  private Path restoredHome;

  @AfterEach
  void stopClusters() {
    for (Path h : new Path[] {home, restoredHome}) {
      if (h != null && Files.exists(h)) {
        CliRun.run(h, "down");
      }
    }
  }

  @Test
  void aCoRotatesTheBackupKeyAndEveryHsmAndEveryLaterRestoreFollows() throws Exception {
    home = Files.createDirectories(work.resolve("cluster"));
    assertEquals(0, CliRun.run(home, "up", "--hsms", "2", "--port", "0").code);
    TestLogins logins = TestLogins.activate(home, Files.createDirectories(work.resolve("sessions")));
    String aes;
    JsonObject sealed;
    try (BridgeClient client = LocalBridge.connect(home, Duration.ofSeconds(60))) {
      aes = client.request(new JsonObject().put("op", "key.generate").put("session", logins.cuToken()).put("spec", "AES_256")
          .put("label", "payments").put("requestId", UUID.randomUUID().toString())).getString("keyId");
      sealed = client.request(new JsonObject().put("op", "encrypt").put("session", logins.cuToken()).put("keyId", aes)
          .put("alg", "AES_GCM").put("plaintext", Base64.getEncoder().encodeToString(SECRET)));
    }
    Path recovery = work.resolve("recovery-token");
    assertEquals(0, CliRun.run(home, "recovery", "init", "--dir", recovery.toString()).code);
    Path escrow1 = escrow(logins, recovery, "escrow-1.json");
    assertEquals(1, new JsonObject(Files.readString(escrow1)).getInteger("generation"));

    CliRun refused = CliRun.run(home, logins.cu(), "backup", "rotate-key");
    assertEquals(1, refused.code, refused.toString());
    assertTrue(refused.err.contains("ACCESS_DENIED"), refused.toString());
    CliRun rotated = CliRun.run(home, logins.co(), "backup", "rotate-key");
    assertEquals(0, rotated.code, rotated + logs(home));
    JsonObject rotation = new JsonObject(rotated.out.trim());
    assertEquals(2, rotation.getInteger("generation"), rotation.encode());
    assertTrue(rotated.err.contains("escrow it now"), rotated.err);
    Path escrow2 = escrow(logins, recovery, "escrow-2.json");
    assertEquals(2, new JsonObject(Files.readString(escrow2)).getInteger("generation"));

    CliRun created = CliRun.run(home, logins.co(), "backup", "create", "--hsm", "hsm2");
    assertEquals(0, created.code, created + logs(home));
    String backupId = new JsonObject(created.out.trim()).getString("backupId");
    Path backup = work.resolve("after-rotation.hbk");
    Files.copy(home.resolve("backups").resolve(backupId + ".hbk"), backup);

    // A new HSM receives both generations with the cluster key, and restores a backup made under the new one.
    CliRun add = CliRun.run(home, "hsm", "add");
    assertEquals(0, add.code, add + logs(home));
    String hsm3 = Files.readString(home.resolve("hsm3").resolve("node.log"));
    assertTrue(hsm3.matches("(?s).*hsm3 restored backup backup-[a-z2-7]+ \\(.*"), hsm3);
    assertFalse(hsm3.contains("could not restore"), hsm3);
    assertTrue(hsm3.contains("hsm3 received 1 cluster key generations and 2 backup key generations"), hsm3);
    try (BridgeClient client = LocalBridge.connect(home, Duration.ofSeconds(60))) {
      assertArrayEquals(SECRET, decrypt(client, logins.cuToken(), "hsm3", aes, sealed), "hsm3 serves the old key");
    }

    // The cluster key rotates on its own: keys made after it travel under generation 2 to every HSM.
    CliRun clusterRotated = CliRun.run(home, logins.co(), "cluster", "rotate-key");
    assertEquals(0, clusterRotated.code, clusterRotated + logs(home));
    assertEquals(2, new JsonObject(clusterRotated.out.trim()).getInteger("generation"), clusterRotated.out);
    try (BridgeClient client = LocalBridge.connect(home, Duration.ofSeconds(60))) {
      String fresh = client.request(new JsonObject().put("op", "key.generate").put("session", logins.cuToken())
          .put("spec", "AES_256").put("label", "after the cluster key rotation").put("requestId", UUID.randomUUID().toString()))
          .getString("keyId");
      JsonObject freshSealed = client.request(new JsonObject().put("op", "encrypt").put("session", logins.cuToken())
          .put("onHsm", "hsm1").put("keyId", fresh).put("alg", "AES_GCM").put("plaintext", Base64.getEncoder().encodeToString(SECRET)));
      for (String hsm : new String[] {"hsm2", "hsm3"}) {
        assertArrayEquals(SECRET, decrypt(client, logins.cuToken(), hsm, fresh, freshSealed), hsm + " installed it");
      }
    }
    CliRun addAfter = CliRun.run(home, "hsm", "add");
    assertEquals(0, addAfter.code, addAfter + logs(home));
    String hsm4 = Files.readString(home.resolve("hsm4").resolve("node.log"));
    assertTrue(hsm4.contains("hsm4 received 2 cluster key generations and 2 backup key generations"), hsm4);
    try (BridgeClient client = LocalBridge.connect(home, Duration.ofSeconds(60))) {
      assertArrayEquals(SECRET, decrypt(client, logins.cuToken(), "hsm4", aes, sealed), "hsm4 serves the old key");
    }
    CliRun check = CliRun.run(home, logins.co(), "cluster", "check");
    assertEquals(0, check.code, check + logs(home));
    assertEquals(0, CliRun.run(home, "down").code);

    // The old generation's escrow does not open the backup: refused before anything starts (the header names
    // generation 2), and inside the token when the header is made to lie; nothing left behind either way.
    restoredHome = Files.createDirectories(work.resolve("restored"));
    CliRun wrongEscrow = CliRun.run(restoredHome, "backup", "restore", backup.toString(), "--escrow", escrow1.toString(),
        "--recovery-dir", recovery.toString(), "--hsms", "1", "--port", "0");
    assertNotEquals(0, wrongEscrow.code, wrongEscrow.toString());
    assertTrue(wrongEscrow.err.contains("the backup was made under backup key generation 2, the escrow holds generation 1"),
        wrongEscrow.toString());
    assertFalse(Files.exists(restoredHome.resolve("hsm1")), "nothing left half-made");
    Path lying = work.resolve("lying-header.hbk");
    Files.writeString(lying, Files.readString(backup, StandardCharsets.ISO_8859_1)
        .replace("\"backupKeyGeneration\":2", "\"backupKeyGeneration\":1"), StandardCharsets.ISO_8859_1);
    CliRun lied = CliRun.run(restoredHome, "backup", "restore", lying.toString(), "--escrow", escrow1.toString(),
        "--recovery-dir", recovery.toString(), "--hsms", "1", "--port", "0");
    assertNotEquals(0, lied.code, lied.toString());
    assertTrue(lied.err.contains("backup key generation this token does not hold; it holds [1]"), lied.toString());
    assertFalse(Files.exists(restoredHome.resolve("hsm1")), "nothing left half-made");

    CliRun restored = CliRun.run(restoredHome, "backup", "restore", backup.toString(), "--escrow", escrow2.toString(),
        "--recovery-dir", recovery.toString(), "--hsms", "1", "--port", "0");
    assertEquals(0, restored.code, restored + logs(restoredHome));
    TestLogins again = TestLogins.of(restoredHome, Files.createDirectories(work.resolve("restored-sessions")));
    again.login(TestLogins.ADMIN);
    again.login(TestLogins.CRYPTO_USER);
    try (BridgeClient client = LocalBridge.connect(restoredHome, Duration.ofSeconds(60))) {
      assertArrayEquals(SECRET, decrypt(client, again.cuToken(), "hsm1", aes, sealed));
    }
    // The restored cluster has a carrier of its own: it rotates on from the generation it was restored with.
    CliRun rotatedAgain = CliRun.run(restoredHome, again.co(), "backup", "rotate-key");
    assertEquals(0, rotatedAgain.code, rotatedAgain + logs(restoredHome));
    assertEquals(3, new JsonObject(rotatedAgain.out.trim()).getInteger("generation"), rotatedAgain.out);
    System.out.println("[backup key rotation] generation 2 made on the 2-HSM cluster; backup " + backupId
        + " under it restored by hsm add on hsm3 and, with the generation-2 escrow, into a new cluster (refused with"
        + " the generation-1 escrow); the new cluster rotated to generation 3");
  }

  private Path escrow(TestLogins logins, Path recovery, String name) {
    Path out = work.resolve(name);
    CliRun escrowed = CliRun.run(home, logins.co(), "backup", "escrow", "--recovery-key",
        recovery.resolve("recovery-key.pem").toString(), "--out", out.toString());
    assertEquals(0, escrowed.code, escrowed + logs(home));
    return out;
  }

  private static byte[] decrypt(BridgeClient client, String session, String hsm, String keyId, JsonObject sealed) {
    JsonObject plain = client.request(new JsonObject().put("op", "decrypt").put("session", session).put("onHsm", hsm)
        .put("keyId", keyId).put("alg", "AES_GCM").put("ciphertext", sealed.getString("ciphertext"))
        .put("iv", sealed.getString("iv")));
    assertEquals(hsm, plain.getString("servedBy"), plain.encode());
    return Base64.getDecoder().decode(plain.getString("plaintext"));
  }

  private static String logs(Path home) {
    return TestLogins.logTails(home);
  }
}
