package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.client.BridgeClient;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;

/**
 * Issue #10, "Audit that cannot be shortened", as someone who can write an HSM host's disk would try it
 * against a real 3-HSM cluster ({@code hsmbridge up --hsms 3}): the last lines of an audit log cut while
 * its agent runs (hsm1) and while it is stopped (hsm3), a field added to a line and a line's value changed
 * (hsm2, each put back afterwards), and hsm2's file replaced by an older copy. Each is found by
 * {@code audit verify} naming the HSM and the sequence numbers, the ones done while stopped also at the
 * agent's start ({@code status}); a crypto user's requests meanwhile all succeed, users and keys stay as
 * they were.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(value = 900, unit = TimeUnit.SECONDS)
class AuditTamperTest {
  private static final StringBuilder REPORT = new StringBuilder();
  private static Path home;
  private static Path sessions;
  private static TestLogins logins;
  private static BridgeClient client;
  private static String key;
  private static Legit legit;
  private static JsonArray usersBefore;
  private static List<String> keysBefore;

  @BeforeAll
  static void up() throws IOException {
    home = Files.createTempDirectory("hsmbridge-audit-tamper");
    sessions = Files.createTempDirectory("hsmbridge-audit-tamper-sessions");
    CliRun up = CliRun.run(home, "up", "--hsms", "3", "--port", "0");
    assertEquals(0, up.code, up.toString());
    logins = TestLogins.activate(home, sessions);
    client = connect();
    key = client.request(cu(op("key.generate").put("spec", "EC_P256").put("label", "audited"))).getString("keyId");
    usersBefore = client.request(co(op("user.list"))).getJsonArray("users");
    keysBefore = keyIds();
    legit = Legit.start();
  }

  @AfterAll
  static void down() throws Exception {
    if (legit != null) {
      legit.stop();
    }
    if (client != null) {
      client.close();
    }
    CliRun down = CliRun.run(home, "down");
    System.out.println("=== AuditTamperTest report ===\n" + REPORT + "down: exit " + down.code);
    Files.createDirectories(Path.of("target"));
    Files.writeString(Path.of("target", "audit-tamper.txt"), REPORT.toString());
  }

  @Test
  @Order(1)
  void a_intactLogsVerify() {
    JsonObject r = verify();
    assertTrue(r.getBoolean("intact"), r.encodePrettily());
    for (String h : List.of("hsm1", "hsm2", "hsm3")) {
      JsonObject one = r.getJsonObject("hsms").getJsonObject(h);
      // The anchor covers what was written before the verify; a request may add a line right after it.
      assertTrue(one.getLong("anchorSeq") > 0 && one.getLong("anchorSeq") <= one.getLong("lastSeq"), one.encode());
    }
  }

  @Test
  @Order(2)
  void b_linesCutWhileTheAgentRunsAreFound() throws Exception {
    Path log = log("hsm1");
    List<String> lines = Files.readAllLines(log);
    long last = seqOf(lines.get(lines.size() - 1));
    List<String> kept = lines.subList(0, lines.size() - 3);
    Files.write(log, kept); // the agent keeps its file open and appends
    JsonObject h1 = hsm(verify(), "hsm1");
    assertFalse(h1.getBoolean("intact"), h1.encode());
    // Lines the agent appended since name the first entry cut (a sequence gap); else the anchor names the
    // first entry after the kept part's last seal (lines after it are covered by no seal any more).
    String problem = h1.getString("problem");
    assertTrue(problem.contains("removed") && (problem.contains((last - 2) + "..")
        || problem.contains((seqOf(kept.get(lastSealed(kept))) + 1) + "..")), "names the first entry cut: " + h1.encode());
    assertTrue(hsm(verify(), "hsm3").getBoolean("intact"));
    CliRun cli = CliRun.run(home, logins.co(), "audit", "verify");
    assertEquals(1, cli.code, cli.toString());
    assertTrue(cli.out.contains("TAMPERED"), cli.out);
    note("(e1) hsm1: last 3 lines cut while running (up to seq " + last + "): audit verify: " + h1.getString("problem"));
  }

  @Test
  @Order(3)
  void c_aFieldAddedAndAValueChangedAreFoundThenPutBack() throws Exception {
    stop("hsm2");
    Path log = log("hsm2");
    List<String> lines = new ArrayList<>(Files.readAllLines(log));
    String original = lines.get(1);
    lines.set(1, new JsonObject(original).put("note", "added later").encode());
    Files.write(log, lines);
    start();
    JsonObject added = hsm(verify(), "hsm2");
    assertFalse(added.getBoolean("intact"));
    assertEquals(2L, added.getLong("badLine"));
    assertTrue(added.getString("problem").contains("field added"), added.encode());

    stop("hsm2");
    lines = new ArrayList<>(Files.readAllLines(log));
    lines.set(1, original);
    String third = lines.get(2);
    lines.set(2, new JsonObject(third).put("result", "OK".equals(new JsonObject(third).getString("result")) ? "ACCESS_DENIED" : "OK").encode());
    Files.write(log, lines);
    start();
    JsonObject changed = hsm(verify(), "hsm2");
    assertFalse(changed.getBoolean("intact"));
    assertEquals(3L, changed.getLong("badLine"));
    assertTrue(changed.getString("problem").contains("edited"), changed.encode());

    stop("hsm2");
    lines = new ArrayList<>(Files.readAllLines(log));
    lines.set(2, third);
    Files.write(log, lines);
    start();
    assertTrue(hsm(verify(), "hsm2").getBoolean("intact"), "put back: intact again");
    note("(e2) hsm2: a field added to line 2: " + added.getString("problem") + "; line 3's result changed: "
        + changed.getString("problem") + "; both put back: intact");
  }

  @Test
  @Order(4)
  void d_linesCutWhileTheAgentIsStoppedAreFoundAtStartAndByVerify() throws Exception {
    stop("hsm3");
    Path log = log("hsm3");
    List<String> lines = Files.readAllLines(log);
    long last = seqOf(lines.get(lines.size() - 1));
    List<String> kept = lines.subList(0, lines.size() - 5);
    Files.write(log, kept);
    // Lines after the kept part's last seal are covered by no seal now: the agent sets them aside at start
    // (AuditLog, "sealed batches"), so the sealed chain ends at that seal and the anchor finds the rest gone.
    long firstGone = seqOf(kept.get(lastSealed(kept))) + 1;
    start();
    JsonObject h3 = hsm(verify(), "hsm3");
    assertFalse(h3.getBoolean("intact"), h3.encode());
    String startProblem = h3.getString("startProblem");
    assertTrue(startProblem != null && startProblem.contains("hsm3") && startProblem.contains(firstGone + ".." + last),
        h3.encode());
    assertTrue(h3.getString("problem").contains("removed"), h3.encode());
    CliRun status = CliRun.run(home, "status");
    assertTrue(status.out.contains("audit log"), "status shows it: " + status);
    assertTrue(nodeLog("hsm3").contains("AUDIT LOG TAMPERED on HSM hsm3"), "an ERROR in the agent's log");
    note("(e3) hsm3: last 5 lines cut while stopped: at start: " + startProblem + "; verify: " + h3.getString("problem"));
  }

  @Test
  @Order(5)
  void e_aFileReplacedByAnOlderCopyIsFound() throws Exception {
    Path log = log("hsm2");
    byte[] older = Files.readAllBytes(log);
    for (int i = 0; i < 5; i++) {
      client.request(cu(op("sign").put("keyId", key).put("alg", "ECDSA_SHA256").put("message", b64("x")).put("onHsm", "hsm2")));
    }
    stop("hsm2");
    Files.write(log, older);
    start();
    JsonObject h2 = hsm(verify(), "hsm2");
    assertFalse(h2.getBoolean("intact"), h2.encode());
    assertTrue(h2.getString("startProblem").contains("older copy") && h2.getString("startProblem").contains("hsm2"), h2.encode());
    note("(e4) hsm2: file replaced by an older copy while stopped: " + h2.getString("startProblem"));
  }

  @Test
  @Order(6)
  void f_nothingElseChangedAndTheLegitimateClientWasServed() throws Exception {
    assertEquals(usersBefore, client.request(co(op("user.list"))).getJsonArray("users"));
    assertEquals(keysBefore, keyIds());
    long ok = legit.stop();
    assertEquals(0, legit.errors.get(), "the legitimate client: " + legit.firstError);
    assertTrue(ok > 0);
    assertNull(legit.firstError);
    note("legitimate client through (a)..(e), 3 agent stops and starts included: " + ok + " signatures, 0 errors;"
        + " users and keys as before");
    legit = null;
  }

  // ------------------------------------------------------------------------------------ helpers

  private static Path log(String hsm) {
    return home.resolve(hsm).resolve("audit.log");
  }

  private static String nodeLog(String hsm) throws IOException {
    return Files.readString(home.resolve(hsm).resolve("node.log"), StandardCharsets.UTF_8);
  }

  /** The index of the last line that carries a seal (the HSM's MAC; the lines before it in its batch carry a hash). */
  private static int lastSealed(List<String> lines) {
    int i = lines.size() - 1;
    while (!new JsonObject(lines.get(i)).containsKey("mac")) {
      i--;
    }
    return i;
  }

  private static long seqOf(String line) {
    return new JsonObject(line).getLong("seq");
  }

  /** SIGTERM: the agent stops cleanly (its audit writer anchors what it wrote), as an operator's stop would. */
  private static void stop(String hsm) throws Exception {
    long pid = new JsonObject(Files.readString(home.resolve(hsm).resolve("endpoint.json"))).getLong("pid");
    ProcessHandle ph = ProcessHandle.of(pid).orElseThrow();
    assertTrue(ph.destroy(), "SIGTERM " + hsm);
    ph.onExit().get(60, TimeUnit.SECONDS);
  }

  private static void start() {
    CliRun up = CliRun.run(home, "up");
    assertEquals(0, up.code, up.toString());
  }

  private static JsonObject verify() {
    return client.request(co(op("cluster.auditVerify")));
  }

  private static JsonObject hsm(JsonObject report, String hsm) {
    JsonObject r = report.getJsonObject("hsms").getJsonObject(hsm);
    assertTrue(r != null, hsm + " answered: " + report.encodePrettily());
    return r;
  }

  private static List<String> keyIds() {
    List<String> ids = new ArrayList<>();
    client.request(cu(op("key.list"))).getJsonArray("keys").forEach(k -> ids.add(((JsonObject) k).getString("keyId")));
    return ids;
  }

  private static JsonObject op(String wire) {
    return new JsonObject().put("op", wire);
  }

  private static JsonObject co(JsonObject body) {
    return body.put("session", logins.coToken());
  }

  private static JsonObject cu(JsonObject body) {
    return body.put("session", logins.cuToken());
  }

  private static String b64(String s) {
    return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
  }

  private static BridgeClient connect() {
    return LocalBridge.connect(home, Duration.ofSeconds(60));
  }

  /** The crypto user signing on its own connection throughout, counting errors. */
  private static final class Legit {
    final AtomicInteger errors = new AtomicInteger();
    final AtomicInteger ok = new AtomicInteger();
    final AtomicBoolean stopped = new AtomicBoolean();
    volatile String firstError;
    Thread thread;

    static Legit start() {
      Legit l = new Legit();
      BridgeClient c = connect();
      l.thread = new Thread(() -> {
        try {
          while (!l.stopped.get()) {
            try {
              c.request(cu(op("sign").put("keyId", key).put("alg", "ECDSA_SHA256").put("message", b64("legit"))));
              l.ok.incrementAndGet();
            } catch (RuntimeException e) {
              l.errors.incrementAndGet();
              if (l.firstError == null) {
                l.firstError = e.toString();
              }
            }
            try {
              Thread.sleep(20);
            } catch (InterruptedException e) {
              return;
            }
          }
        } finally {
          c.close();
        }
      }, "legit-client");
      l.thread.start();
      return l;
    }

    long stop() throws InterruptedException {
      stopped.set(true);
      thread.join(60_000);
      return ok.get();
    }
  }

  private static void note(String line) {
    REPORT.append(line).append('\n');
  }
}
