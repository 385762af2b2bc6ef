package io.hsmbridge.containers;

import static io.hsmbridge.containers.ContainerCluster.HSMS;
import static io.hsmbridge.containers.Keys.b64;
import static io.hsmbridge.containers.Keys.on;
import static io.hsmbridge.containers.Report.ms;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PublicKey;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * (iv) A cluster of containers restored from a backup (docs/disaster-recovery.md, "Containers"): the shared
 * cluster's key, ciphertext and users are backed up and the backup key escrowed to a recovery token on the
 * host; {@code hsmbridge containers restore} gives a new kit's hsm1 the backup, and a new cluster of three
 * containers starts from it (hsm1 alone, then hsm2 and hsm3 joining from its first backup). Its users log in
 * with their old passwords, every HSM decrypts the old ciphertext, and an EC key signs on every HSM with
 * signatures that verify under the public key read from the old cluster.
 *
 * <p>Run: {@code mvn -B -o -pl container-tests test -Dtest=ContainerDisasterRecoveryTest} with a container engine.
 */
@ExtendWith(SharedCluster.class)
@Timeout(value = 900, unit = TimeUnit.SECONDS)
class ContainerDisasterRecoveryTest {
  private static final byte[] SECRET = "made before the disaster".getBytes(StandardCharsets.UTF_8);

  @Test
  void aNewClusterOfContainersFromABackupHoldsTheOldKeysAndUsers(ContainerCluster old) throws Exception {
    long t0 = System.nanoTime();
    String aes = Keys.generate(old, "AES_256", "dr-aes");
    String ec = Keys.generate(old, "EC_P256", "dr-ec");
    PublicKey ecPublic = Keys.publicKey(old, ec);
    JsonObject sealed = old.request(new JsonObject().put("op", "encrypt").put("keyId", aes).put("alg", "AES_GCM")
        .put("plaintext", b64(SECRET)));
    Keys.awaitAppliedEverywhere(old, Duration.ofSeconds(30));

    // The ceremony before the disaster: an offline recovery token on the host, the backup key escrowed to it.
    Path work = Files.createTempDirectory(Files.createDirectories(Path.of("target").toAbsolutePath()), "dr-");
    Path recovery = work.resolve("recovery-token");
    ContainerCluster.runCli(old.jar(), "recovery", "init", "--dir", recovery.toString());
    String pem = Files.readString(recovery.resolve("recovery-key.pem"));
    String spki = pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
    JsonObject escrowed = old.request(new JsonObject().put("op", "backup.escrow").put("recoveryKey", spki));
    Path escrow = work.resolve("escrow.json");
    Files.writeString(escrow, new JsonObject().put("format", "hsmbridge-escrow-1").put("cluster", escrowed.getString("cluster"))
        .put("escrowedBackupKey", escrowed.getString("escrowedBackupKey"))
        .put("recoveryKeySha256", escrowed.getString("recoveryKeySha256")).encodePrettily());
    JsonObject made = old.request(new JsonObject().put("op", "backup.create"));
    assertEquals("READY", made.getString("state"), made.encodePrettily());
    Path backup = work.resolve("offsite.hbk"); // copied off the cluster's machines
    Files.copy(old.backups().resolve(made.getString("backupId") + ".hbk"), backup);

    long r0 = System.nanoTime();
    try (ContainerCluster restored = ContainerCluster.start(new ContainerCluster.FromBackup(backup, escrow, recovery,
        old.adminPassword(), old.userPassword()))) {
      long restoreMs = ms(r0);
      byte[] message = "signed in the restored cluster".getBytes(StandardCharsets.UTF_8);
      for (String hsm : HSMS) {
        JsonObject plain = restored.request(on(hsm, new JsonObject().put("op", "decrypt").put("keyId", aes)
            .put("alg", "AES_GCM").put("ciphertext", sealed.getString("ciphertext")).put("iv", sealed.getString("iv"))));
        assertEquals(hsm, plain.getString("servedBy"));
        assertEquals(b64(SECRET), plain.getString("plaintext"), "the old ciphertext on " + hsm);
        JsonObject sig = restored.request(on(hsm, new JsonObject().put("op", "sign").put("keyId", ec)
            .put("alg", "ECDSA_SHA256").put("message", b64(message))));
        assertTrue(Keys.verify(ecPublic, "SHA256withECDSA", message, sig.getString("signature")),
            "a signature of " + hsm + " under the old public key");
      }
      Keys.assertOnEveryHsm(restored, List.of(aes, ec), "the backed-up keys");
      JsonObject status = restored.request(new JsonObject().put("op", "cluster.status"));
      assertEquals(3, status.getInteger("healthy"), status.encodePrettily());
      assertEquals(3, status.getInteger("members"), status.encodePrettily());
      // hsm1's audit log starts with the restore, and its agent found the file agreeing with the token's anchor.
      String firstLine = restored.exec("hsm1", "head", "-n", "1", "/var/lib/hsmbridge/state/audit.log").getStdout();
      assertTrue(firstLine.contains("\"op\":\"backup.restore\"") && firstLine.contains(made.getString("backupId")), firstLine);
      assertFalse(status.encode().contains("audit log:"), status.encodePrettily());
      Report.note("(iv) a new cluster of 3 HSM containers restored from backup " + made.getString("backupId") + " ("
          + made.getLong("sizeBytes") + " bytes) in " + restoreMs + " ms: the old users log in with their old passwords,"
          + " all 3 HSMs decrypt the old ciphertext and sign under the old EC public key; whole test " + ms(t0) + " ms");
    }
  }
}
