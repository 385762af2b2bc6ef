package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.client.BridgeClient;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Backups while the cluster works, and a backup whose HSM dies (issue #12 item 9), on real node
 * processes: a backup made while one client signs and another creates keys fails no request, and holds
 * every key acknowledged before it began (read back from a new cluster restored from it); an HSM SIGKILLed
 * while it makes a backup leaves it FAILED (its file gone, never READY) once it is back, and its next
 * backup succeeds.
 */
class BackupUnderLoadScenarioTest {
  @TempDir
  Path work;

  private Path home;
  private Path restoredHome;

  @AfterEach
  void stopClusters() {
    for (Path h : new Path[] {home, restoredHome}) {
      if (h != null) {
        CliRun.run(h, "down");
      }
    }
  }

  @Test
  void aBackupUnderLoadHoldsEveryAcknowledgedKeyAndOneWhoseHsmIsKilledEndsFailed() throws Exception {
    home = Files.createDirectories(work.resolve("cluster"));
    CliRun up = CliRun.run(home, "up", "--hsms", "3", "--port", "0");
    assertEquals(0, up.code, up.toString());
    TestLogins logins = TestLogins.activate(home, Files.createDirectories(work.resolve("sessions")));
    Set<String> acked = Collections.synchronizedSet(new HashSet<>());
    String ec;
    try (BridgeClient client = LocalBridge.connect(home, Duration.ofSeconds(60))) {
      ec = generate(client, logins.cuToken(), "EC_P256");
      acked.add(ec);
      for (int i = 0; i < 150; i++) { // enough keys that a backup takes a moment
        acked.add(generate(client, logins.cuToken(), "AES_256"));
      }
    }

    // The load: one client signs, another creates keys, until the backup is done and 2 s more.
    AtomicBoolean stop = new AtomicBoolean();
    List<String> failures = Collections.synchronizedList(new ArrayList<>());
    AtomicInteger signatures = new AtomicInteger();
    int createdBefore = acked.size();
    CompletableFuture<Void> signer = CompletableFuture.runAsync(() -> loop(stop, failures, client -> {
      client.request(new JsonObject().put("op", "sign").put("session", logins.cuToken()).put("keyId", ec)
          .put("alg", "ECDSA_SHA256").put("message", Base64.getEncoder().encodeToString("under load".getBytes())));
      signatures.incrementAndGet();
    }));
    CompletableFuture<Void> creator = CompletableFuture.runAsync(() -> loop(stop, failures,
        client -> acked.add(generate(client, logins.cuToken(), "AES_256"))));
    Thread.sleep(2_000);
    Set<String> ackedBeforeBackup = new HashSet<>(acked);
    CliRun created = CliRun.run(home, logins.co(), "backup", "create", "--hsm", "hsm1");
    Thread.sleep(2_000);
    stop.set(true);
    signer.get(60, TimeUnit.SECONDS);
    creator.get(60, TimeUnit.SECONDS);
    assertEquals(0, created.code, created + TestLogins.logTails(home));
    assertEquals(List.of(), failures, "requests failed while the backup was made");
    assertTrue(signatures.get() > 0 && acked.size() > createdBefore, signatures + " signatures, "
        + (acked.size() - createdBefore) + " keys created under load");
    String backupId = new JsonObject(created.out.trim()).getString("backupId");

    // What the backup holds, read back from a new cluster restored from it.
    Path recovery = work.resolve("recovery");
    assertEquals(0, CliRun.run(home, "recovery", "init", "--dir", recovery.toString()).code);
    Path escrow = work.resolve("escrow.json");
    CliRun escrowed = CliRun.run(home, logins.co(), "backup", "escrow", "--recovery-key",
        recovery.resolve("recovery-key.pem").toString(), "--out", escrow.toString());
    assertEquals(0, escrowed.code, escrowed.toString());
    restoredHome = Files.createDirectories(work.resolve("restored"));
    CliRun restored = CliRun.run(restoredHome, "up", "--from-backup", home.resolve("backups").resolve(backupId + ".hbk").toString(),
        "--escrow", escrow.toString(), "--recovery-dir", recovery.toString(), "--hsms", "1", "--port", "0");
    assertEquals(0, restored.code, restored + TestLogins.logTails(restoredHome));
    TestLogins again = TestLogins.of(restoredHome, Files.createDirectories(work.resolve("restored-sessions")));
    again.login(TestLogins.CRYPTO_USER);
    Set<String> inBackup = new HashSet<>();
    try (BridgeClient client = LocalBridge.connect(restoredHome, Duration.ofSeconds(60))) {
      for (Object k : client.request(new JsonObject().put("op", "key.list").put("session", again.cuToken())).getJsonArray("keys")) {
        inBackup.add(((JsonObject) k).getString("keyId"));
      }
    }
    Set<String> missing = new HashSet<>(ackedBeforeBackup);
    missing.removeAll(inBackup);
    assertEquals(Set.of(), missing, "keys acknowledged before the backup began but not in it");
    note(signatures.get() + " signatures and " + (acked.size() - createdBefore) + " key creations under load, none failed;"
        + " backup " + backupId + " holds all " + ackedBeforeBackup.size() + " keys acknowledged before it began ("
        + inBackup.size() + " in all)");
    CliRun.run(restoredHome, "down");
    restoredHome = null;

    // hsm2 SIGKILLed while it makes a backup: FAILED once it is back, never READY; its next backup succeeds.
    String killedId = null;
    for (int attempt = 0; attempt < 5 && killedId == null; attempt++) {
      Set<String> before = ids(home.resolve("backups"));
      CompletableFuture<CliRun> making = CompletableFuture.supplyAsync(
          () -> CliRun.run(home, logins.co(), "backup", "create", "--hsm", "hsm2"));
      Optional<String> inProgress = Optional.empty();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (inProgress.isEmpty() && !making.isDone() && System.nanoTime() < deadline) {
        inProgress = newInProgress(home.resolve("backups"), before);
      }
      if (inProgress.isPresent()) {
        kill("hsm2");
        CliRun outcome = making.get(120, TimeUnit.SECONDS);
        if (outcome.code != 0) {
          killedId = inProgress.get();
        }
      } else {
        making.get(120, TimeUnit.SECONDS); // finished before it was seen in progress: try again
      }
      if (killedId == null) {
        restart();
      }
    }
    assertNotNull(killedId, "no backup could be caught in progress in 5 attempts");
    assertEquals("CREATE_IN_PROGRESS", record(home.resolve("backups"), killedId).getString("state"), "while hsm2 is down");
    restart();
    assertTrue(Files.readString(home.resolve("hsm2").resolve("node.log")).contains("hsm2 stopped while making backup " + killedId),
        TestLogins.logTails(home));
    CliRun described = CliRun.run(home, logins.co(), "backup", "describe", killedId);
    assertEquals("FAILED", new JsonObject(described.out.trim()).getString("state"), described.toString());
    assertFalse(Files.exists(home.resolve("backups").resolve(killedId + ".hbk")), "no partial file is kept");
    CliRun next = CliRun.run(home, logins.co(), "backup", "create", "--hsm", "hsm2");
    assertEquals(0, next.code, next + TestLogins.logTails(home));
    assertEquals("READY", new JsonObject(next.out.trim()).getString("state"));
    note("hsm2 SIGKILLed while making " + killedId + ": FAILED after its restart, no file kept; its next backup is READY");
  }

  private interface Call {
    void run(BridgeClient client) throws Exception;
  }

  /** Runs {@code call} until {@code stop} (at most 120 s), recording each failure's message. */
  private void loop(AtomicBoolean stop, List<String> failures, Call call) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    try (BridgeClient client = LocalBridge.connect(home, Duration.ofSeconds(60))) {
      while (!stop.get() && System.nanoTime() < deadline) {
        try {
          call.run(client);
        } catch (Exception e) {
          failures.add(e.toString());
        }
      }
    }
  }

  private static String generate(BridgeClient client, String session, String spec) {
    return client.request(new JsonObject().put("op", "key.generate").put("session", session).put("spec", spec)
        .put("label", "load").put("requestId", UUID.randomUUID().toString())).getString("keyId");
  }

  private static Set<String> ids(Path dir) throws Exception {
    try (Stream<Path> files = Files.list(dir)) {
      Set<String> ids = new HashSet<>();
      files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".json") && n.startsWith("backup-"))
          .forEach(n -> ids.add(n.substring(0, n.length() - ".json".length())));
      return ids;
    }
  }

  private static Optional<String> newInProgress(Path dir, Set<String> before) throws Exception {
    for (String id : ids(dir)) {
      if (!before.contains(id)) {
        try {
          if ("CREATE_IN_PROGRESS".equals(record(dir, id).getString("state"))) {
            return Optional.of(id);
          }
        } catch (Exception e) {
          // being written: look again
        }
      }
    }
    return Optional.empty();
  }

  private static JsonObject record(Path dir, String id) throws Exception {
    return new JsonObject(Files.readString(dir.resolve(id + ".json")));
  }

  private void kill(String hsm) throws Exception {
    long pid = new JsonObject(Files.readString(home.resolve(hsm).resolve("endpoint.json"))).getLong("pid");
    ProcessHandle ph = ProcessHandle.of(pid).orElseThrow();
    assertTrue(ph.destroyForcibly());
    ph.onExit().get(10, TimeUnit.SECONDS);
  }

  private void restart() {
    CliRun up = CliRun.run(home, "up");
    assertEquals(0, up.code, up + TestLogins.logTails(home));
  }

  private static void note(String line) {
    System.out.println("[backup under load] " + line);
  }
}
