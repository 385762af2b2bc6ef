package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.client.BridgeClient;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Log compaction through backups (issue #12 item 4, docs/replication.md "Compaction"), on real node
 * processes: once a backup exists, every HSM's Raft log is purged up to it (small segments and a short
 * compaction period from HOME/agent.properties make it happen within a few dozen entries). An HSM that lost
 * its log but not its token catches up by claiming the backup its token already includes; one that lost its
 * token but not its log restores the backup before its log starts. Both then serve every key, made before
 * the backup, after it and while they were down, and {@code cluster check} finds the HSMs consistent.
 */
class LogCompactionScenarioTest {
  @TempDir
  Path home;

  @TempDir
  Path sessions;

  @AfterEach
  void stopCluster() {
    CliRun.run(home, "down");
  }

  @Test
  void theLogIsPurgedUpToABackupAndHsmsBehindItCatchUpFromIt() throws Exception {
    Files.writeString(home.resolve("agent.properties"),
        "raft.compaction.entries=8\nraft.log.segmentBytes=16384\nbackup.interval=off\n");
    CliRun up = CliRun.run(home, "up", "--hsms", "3", "--port", "0");
    assertEquals(0, up.code, up.toString());
    TestLogins logins = TestLogins.activate(home, sessions);
    Map<String, String> co = logins.co();
    List<String> keys = new ArrayList<>();
    try (BridgeClient client = LocalBridge.connect(home, Duration.ofSeconds(60))) {
      keys.addAll(generate(client, logins, "before", 60));
    }
    CliRun created = CliRun.run(home, co, "backup", "create", "--hsm", "hsm1");
    assertEquals(0, created.code, created + logs());
    long backupIndex = new JsonObject(created.out.trim()).getLong("appliedIndex");
    // The HSMs look for a newer backup at most every 10 s, and every 8 applied entries.
    sleep(11_000);
    try (BridgeClient client = LocalBridge.connect(home, Duration.ofSeconds(60))) {
      keys.addAll(generate(client, logins, "after", 40));
    }
    for (String hsm : List.of("hsm1", "hsm2", "hsm3")) {
      long first = awaitPurged(hsm, backupIndex);
      note(hsm + "'s log starts at entry " + first + " after a backup at index " + backupIndex);
    }

    // hsm3 loses its log (its data disk), not its token: it claims the backup its token includes.
    kill("hsm3");
    deleteTree(home.resolve("hsm3").resolve("raft"));
    try (BridgeClient client = LocalBridge.connect(home, Duration.ofSeconds(60))) {
      keys.addAll(generate(client, logins, "log-lost", 10));
    }
    long logFrom = logLength("hsm3");
    restart();
    // `up` answers once hsm3 serves; the leader's notice that its log starts after the purge may come later.
    String path = awaitLog("hsm3", logFrom, "hsm3 already holds the state of backup", "hsm3 restored backup");
    assertServes("hsm3", logins, keys);
    note("hsm3 without its log: '" + path + "', caught up, serves " + keys.size() + " keys");

    // hsm3 loses its token, not its log: the log before the backup is gone, so it restores the backup first.
    kill("hsm3");
    deleteTree(home.resolve("hsm3").resolve("tokens"));
    Files.createDirectories(home.resolve("hsm3").resolve("tokens"));
    try (BridgeClient client = LocalBridge.connect(home, Duration.ofSeconds(60))) {
      keys.addAll(generate(client, logins, "token-lost", 10));
    }
    logFrom = logLength("hsm3");
    restart();
    awaitLog("hsm3", logFrom, "hsm3 restored backup");
    assertServes("hsm3", logins, keys);
    CliRun check = CliRun.run(home, co, "cluster", "check");
    assertEquals(0, check.code, check + logs());
    note("hsm3 with a fresh token: restored the backup before its log, caught up, serves " + keys.size()
        + " keys; cluster check consistent");
  }

  private static List<String> generate(BridgeClient client, TestLogins logins, String label, int n) {
    List<String> ids = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      JsonObject made = client.request(new JsonObject().put("op", "key.generate").put("session", logins.cuToken())
          .put("spec", "AES_256").put("label", label + "-" + i).put("requestId", UUID.randomUUID().toString()));
      ids.add(made.getString("keyId"));
    }
    return ids;
  }

  /** Waits until {@code hsm}'s Raft log holds no segment starting at or before entry 1; its first entry. */
  private long awaitPurged(String hsm, long backupIndex) throws IOException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (true) {
      long first = firstSegmentStart(home.resolve(hsm).resolve("raft"));
      if (first > 1) {
        assertTrue(first <= backupIndex + 1, hsm + " purged past the backup: its log starts at " + first);
        return first;
      }
      if (System.nanoTime() > deadline) {
        fail(hsm + "'s log was not purged within 60 s (first segment starts at " + first + ")" + logs());
      }
      sleep(1_000);
    }
  }

  /** The lowest start index of the Raft log segment files (log_S-E, log_inprogress_S) under {@code dir}. */
  private static long firstSegmentStart(Path dir) throws IOException {
    try (Stream<Path> files = Files.walk(dir)) {
      return files.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("log_"))
          .mapToLong(n -> Long.parseLong(n.replace("log_inprogress_", "").replace("log_", "").split("-")[0]))
          .min().orElse(-1);
    }
  }

  /** {@code hsm} itself encrypts with every key. */
  private void assertServes(String hsm, TestLogins logins, List<String> keys) {
    try (BridgeClient client = LocalBridge.connect(home, Duration.ofSeconds(60))) {
      for (String key : keys) {
        JsonObject enc = client.request(new JsonObject().put("op", "encrypt").put("session", logins.cuToken())
            .put("onHsm", hsm).put("keyId", key).put("alg", "AES_GCM")
            .put("plaintext", Base64.getEncoder().encodeToString("m".getBytes())));
        assertEquals(hsm, enc.getString("servedBy"), enc.encode());
      }
    }
  }

  private long logLength(String hsm) throws IOException {
    Path log = home.resolve(hsm).resolve("node.log");
    return Files.exists(log) ? Files.readString(log).length() : 0;
  }

  /** Waits up to 60 s until {@code hsm}'s node.log, from character {@code from} on, holds one of {@code lines}. */
  private String awaitLog(String hsm, long from, String... lines) throws IOException {
    Path log = home.resolve(hsm).resolve("node.log");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (true) {
      String whole = Files.readString(log);
      String text = whole.substring((int) Math.min(from, whole.length()));
      for (String line : lines) {
        if (text.contains(line)) {
          return line;
        }
      }
      if (System.nanoTime() > deadline) {
        fail(hsm + "'s log lacks " + List.of(lines) + " after 60 s:\n" + text);
      }
      sleep(500);
    }
  }

  private void kill(String hsm) throws Exception {
    long pid = new JsonObject(Files.readString(home.resolve(hsm).resolve("endpoint.json"))).getLong("pid");
    ProcessHandle ph = ProcessHandle.of(pid).orElseThrow(() -> new AssertionError(hsm + " pid " + pid + " is gone"));
    assertTrue(ph.destroyForcibly(), "SIGKILL " + hsm);
    ph.onExit().get(10, TimeUnit.SECONDS);
  }

  private void restart() {
    CliRun up = CliRun.run(home, "up");
    assertEquals(0, up.code, up + logs());
  }

  private static void deleteTree(Path dir) throws IOException {
    try (Stream<Path> all = Files.walk(dir)) {
      for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
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

  private static void note(String line) {
    System.out.println("[log compaction] " + line);
  }

  private String logs() {
    return TestLogins.logTails(home);
  }
}
