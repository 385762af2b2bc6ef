package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.client.BridgeClient;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Backups from the command line on real node processes (docs/backups.md): a CO makes a backup inside one
 * HSM; a CU cannot; the catalog lists it, deletes it and brings it back; a new HSM ({@code hsm add})
 * restores the newest backup before it applies the log, applies only the entries after it, and serves
 * every key, the ones made after the backup too. A backup file altered on disk is not restored: the new
 * HSM applies the whole log instead, and serves the same keys.
 */
class BackupScenarioTest {
  @TempDir
  Path home;

  @TempDir
  Path sessions;

  @AfterEach
  void stopCluster() {
    CliRun.run(home, "down");
  }

  @Test
  void aCoBacksUpAndANewHsmStartsFromTheBackup() throws IOException {
    CliRun up = CliRun.run(home, "up", "--hsms", "2", "--port", "0");
    assertEquals(0, up.code, up.toString());
    TestLogins logins = TestLogins.activate(home, sessions);
    Map<String, String> co = logins.co();
    Map<String, String> cu = logins.cu();
    String before = keyId(CliRun.run(home, cu, "key", "generate", "--spec", "AES_256", "--label", "before-backup"));

    CliRun refused = CliRun.run(home, cu, "backup", "create");
    assertEquals(1, refused.code, refused.toString());
    assertTrue(refused.err.startsWith("hsmbridge: ACCESS_DENIED: access denied: role CU may not backup.create (allowed for [CO])"),
        refused::toString);
    CliRun created = CliRun.run(home, co, "backup", "create", "--hsm", "hsm2");
    assertEquals(0, created.code, created + logs());
    JsonObject record = new JsonObject(created.out.trim());
    String backupId = record.getString("backupId");
    assertEquals("READY", record.getString("state"), record.encode());
    assertEquals("hsm2", record.getString("sourceHsm"));
    assertTrue(record.getLong("appliedIndex") > 0, record.encode());
    Path file = home.resolve("backups").resolve(backupId + ".hbk");
    assertTrue(Files.size(file) > 0, file.toString());
    String text = new String(Files.readAllBytes(file), java.nio.charset.StandardCharsets.ISO_8859_1);
    assertFalse(text.contains("before-backup") || text.contains("alice"), "labels and user names are sealed");

    String after = keyId(CliRun.run(home, cu, "key", "generate", "--spec", "EC_P256", "--label", "after-backup"));
    CliRun list = CliRun.run(home, co, "backup", "list");
    assertEquals(0, list.code, list.toString());
    assertTrue(list.out.lines().anyMatch(l -> l.startsWith(backupId) && l.contains("READY")), list.out);
    assertTrue(list.out.contains("retention: 90 days"), list.out);
    CliRun deleted = CliRun.run(home, co, "backup", "delete", backupId);
    assertEquals("PENDING_DELETION", new JsonObject(deleted.out.trim()).getString("state"), deleted.toString());
    CliRun back = CliRun.run(home, co, "backup", "restore-deleted", backupId);
    assertEquals("READY", new JsonObject(back.out.trim()).getString("state"), back.toString());
    CliRun retention = CliRun.run(home, co, "backup", "set-retention", "--days", "6");
    assertEquals(2, retention.code, retention.toString());

    CliRun add = CliRun.run(home, "hsm", "add");
    assertEquals(0, add.code, add + logs());
    String hsm3 = Files.readString(home.resolve("hsm3").resolve("node.log"));
    // The newest READY backup: this one, or one the schedule made since (activation makes one at once).
    java.util.regex.Matcher restored = java.util.regex.Pattern.compile("hsm3 restored backup (backup-[a-z2-7]+) \\(").matcher(hsm3);
    assertTrue(restored.find(), hsm3);
    CliRun listed = CliRun.run(home, co, "backup", "list");
    assertTrue(listed.out.lines().anyMatch(l -> l.startsWith(restored.group(1)) && l.contains("READY")), listed.out);
    assertServes("hsm3", logins, before, after);
    note("backup " + backupId + " made on hsm2 at index " + record.getLong("appliedIndex") + " (" + Files.size(file)
        + " bytes); hsm add restored " + restored.group(1) + " on hsm3, which then applied the later entries and serves both keys");

    // The schedule: hsm3's arrival changed the membership after every backup so far, so the first HSM in id
    // order makes one by itself within a tick or two of the scheduler.
    long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
    JsonObject scheduled = null;
    while (scheduled == null && System.nanoTime() < deadline) {
      CliRun json = CliRun.run(home, co, "backup", "list", "--json");
      assertEquals(0, json.code, json.toString());
      for (Object o : new JsonObject(json.out.trim()).getJsonArray("backups")) {
        JsonObject b = (JsonObject) o;
        if ("READY".equals(b.getString("state")) && "hsm1".equals(b.getString("sourceHsm"))
            && b.getLong("appliedIndex") > record.getLong("appliedIndex")) {
          scheduled = b;
        }
      }
      sleep(2_000);
    }
    assertNotNull(scheduled, "no scheduled backup after hsm add" + logs());
    assertTrue(Files.readString(home.resolve("hsm1").resolve("node.log")).contains("a backup is due"), logs());
    note("scheduled: hsm1 made " + scheduled.getString("backupId") + " by itself at index " + scheduled.getLong("appliedIndex")
        + " after hsm3 joined");

    // Every backup file altered on disk: the next HSM restores none, and applies the whole log.
    try (Stream<Path> files = Files.list(home.resolve("backups"))) {
      for (Path f : files.filter(p -> p.toString().endsWith(".hbk")).toList()) {
        byte[] bytes = Files.readAllBytes(f);
        bytes[bytes.length / 2] ^= 0x01;
        Files.write(f, bytes);
      }
    }
    CliRun add4 = CliRun.run(home, "hsm", "add");
    assertEquals(0, add4.code, add4 + logs());
    String hsm4 = Files.readString(home.resolve("hsm4").resolve("node.log"));
    assertTrue(hsm4.contains("hsm4 could not restore the newest backup (the backup"), hsm4);
    assertFalse(hsm4.contains("restored backup"), hsm4);
    assertServes("hsm4", logins, before, after);
    CliRun check = CliRun.run(home, co, "cluster", "check");
    assertEquals(0, check.code, check + logs());
    note("a bit flipped in the backup file: hsm4 refused it and applied the whole log; cluster check consistent");
  }

  /** {@code hsm} itself encrypts with the key made before the backup and signs with the one made after. */
  private void assertServes(String hsm, TestLogins logins, String aes, String ec) {
    try (BridgeClient client = LocalBridge.connect(home, Duration.ofSeconds(60))) {
      JsonObject enc = client.request(new JsonObject().put("op", "encrypt").put("session", logins.cuToken()).put("onHsm", hsm)
          .put("keyId", aes).put("alg", "AES_GCM").put("plaintext", Base64.getEncoder().encodeToString("m".getBytes())));
      assertEquals(hsm, enc.getString("servedBy"), enc.encode());
      JsonObject sig = client.request(new JsonObject().put("op", "sign").put("session", logins.cuToken()).put("onHsm", hsm)
          .put("keyId", ec).put("alg", "ECDSA_SHA256").put("message", Base64.getEncoder().encodeToString("m".getBytes())));
      assertEquals(hsm, sig.getString("servedBy"), sig.encode());
    }
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }

  private static String keyId(CliRun run) {
    assertEquals(0, run.code, run.toString());
    return new JsonObject(run.out.trim()).getString("keyId");
  }

  private static void note(String line) {
    System.out.println("[backup scenario] " + line);
  }

  /** The last lines of every node's log, for a failure message. */
  private String logs() {
    return TestLogins.logTails(home);
  }

}
