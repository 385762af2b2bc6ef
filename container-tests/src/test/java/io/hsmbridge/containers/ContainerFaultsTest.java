package io.hsmbridge.containers;

import static io.hsmbridge.containers.ContainerCluster.HSMS;
import static io.hsmbridge.containers.ContainerCluster.sleep;
import static io.hsmbridge.containers.ContainerCluster.state;
import static io.hsmbridge.containers.Report.ms;
import static io.hsmbridge.containers.Report.seconds;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.testcontainers.containers.Container;

/**
 * (ii) Faults injected across hosts, through the container engine, on the shared cluster: (a) SIGKILL of an
 * HSM container under load, (b) an HSM container paused (frozen) and resumed, (c) an HSM container cut off
 * the network and put back, (d) a restart of the bridge container. Each scenario starts and ends with every
 * HSM serving; every loop is bounded in count and time; the figures go to the report
 * ({@code target/container-scenarios.txt}).
 *
 * <p>Run: {@code mvn -B -o -pl container-tests test -Dtest=ContainerFaultsTest} with a container engine.
 */
@ExtendWith(SharedCluster.class)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(value = 900, unit = TimeUnit.SECONDS) // covers the cluster's start when this class runs alone
class ContainerFaultsTest {
  private static ContainerCluster cluster;
  private static String aesKey;
  private static String ecKey;

  @BeforeAll
  static void keysForTheLoad(ContainerCluster c) {
    cluster = c;
    cluster.awaitServing(HSMS, Duration.ofSeconds(120));
    aesKey = Keys.generate(cluster, "AES_256", "load-aes");
    ecKey = Keys.generate(cluster, "EC_P256", "load-ec");
    Keys.awaitAppliedEverywhere(cluster, Duration.ofSeconds(30));
  }

  /** The HSM the bridge reports as the Raft leader (hsm1 when none is). */
  private static String leader() {
    return cluster.hsmStatus().entrySet().stream().filter(e -> e.getValue().getBoolean("leader", false))
        .map(Map.Entry::getKey).findFirst().orElse("hsm1");
  }

  private static String follower() {
    String leader = leader();
    return HSMS.stream().filter(h -> !h.equals(leader)).reduce((a, b) -> b).orElseThrow();
  }

  private static long awaitNotServing(String hsm, long sinceNanos) {
    cluster.await(hsm + " not SERVING", Duration.ofSeconds(20), 50, cluster::hsmStatus,
        st -> !"SERVING".equals(state(st, hsm)));
    return ms(sinceNanos);
  }

  // ---------------------------------------------------------------------------------------------
  // (a) kill

  @Test
  @Order(1)
  @Timeout(value = 420, unit = TimeUnit.SECONDS)
  void a_killedHsmContainerUnderLoadCostsNoErrorAndCatchesUpAfterStart() {
    cluster.awaitServing(HSMS, Duration.ofSeconds(60));
    String victim = leader();
    long t0 = System.nanoTime();
    long killAt;
    long unservedMs;
    long startMs;
    long catchUpMs;
    long downFrom;
    long downTo;
    String addressBefore;
    String addressAfter;
    Load load = new Load(cluster, aesKey, ecKey, Duration.ofSeconds(300), 2_000_000).start().creating("a", 200, 120);
    try (load) {
      sleep(6000);
      addressBefore = cluster.address(victim);
      killAt = System.nanoTime();
      cluster.kill(victim);
      downFrom = System.nanoTime();
      unservedMs = awaitNotServing(victim, killAt);
      sleep(6000); // load with one HSM down
      downTo = System.nanoTime();
      long s0 = System.nanoTime();
      cluster.startAgain(victim, Duration.ofSeconds(240));
      startMs = ms(s0);
      addressAfter = cluster.address(victim);
      cluster.awaitServing(HSMS, Duration.ofSeconds(120));
      catchUpMs = ms(s0);
      sleep(12_000); // the restarted HSM takes its share again (a cold JVM gets little at first: 6..245 in 8 s)
    }
    long loadMs = ms(t0);
    List<String> created = load.createdIds();
    Keys.awaitAppliedEverywhere(cluster, Duration.ofSeconds(60));
    Map<String, List<String>> missing = Keys.missing(cluster, created);
    JsonObject check = Keys.awaitConsistent(cluster, Duration.ofSeconds(60));
    Map<String, Long> before = load.servedBetween(t0, killAt);
    Map<String, Long> down = load.servedBetween(downFrom, downTo);
    Map<String, Long> after = load.servedBetween(downTo + catchUpMs * 1_000_000, Long.MAX_VALUE);
    Report.note("(a) kill: " + victim + " (the Raft leader) SIGKILLed (container killed) under load of 2 crypto"
        + " threads + 1 creator: " + load.ops() + " requests in " + seconds(loadMs) + ", max latency "
        + load.maxLatencyMs() + " ms; crypto errors " + Load.describe(load.cryptoFailures()) + "; creation errors "
        + load.creationFailures().size() + String.join("", load.creationFailures().stream()
            .map(f -> String.format("; +%.1f s after the kill: %s", (f.atNanos() - killAt) / 1e9, f.message())).toList())
        + "; answers that were not definite (sent again with the request id) " + load.resent().size()
        + String.join("", load.resent().stream()
            .map(f -> String.format("; +%.1f s after the kill: %s", (f.atNanos() - killAt) / 1e9, f.message())).toList()));
    Report.note("    not SERVING in the bridge's status " + unservedMs + " ms after the kill; started again (address "
        + addressBefore + " -> " + addressAfter + "): ready line after " + seconds(startMs) + ", to SERVING (caught up) "
        + seconds(catchUpMs) + "; servedBy before " + before + ", while down " + down + ", after " + after);
    Report.note("    " + created.size() + " keys acknowledged meanwhile; missing after the restart " + missing
        + "; cluster.check digests " + Keys.distinct(check.getJsonObject("digests")) + " distinct at sequence "
        + check.getLong("applied"));
    assertTrue(load.cryptoFailures().isEmpty(), "client-visible crypto errors: " + Load.describe(load.cryptoFailures()));
    // After the Raft leader's container is killed, creations are refused for a while (KEY_AVAILABILITY) or
    // their commit is not confirmed in time (OUTCOME_UNKNOWN, seen once in CI): measured in 8 runs, none in 4,
    // 3 or 4 in the others, the last within 31 s of the kill. The creator sends each again with its request
    // id, as the Java client does, so every creation ends with one definite answer and none reaches it as
    // an error; a steady stream of resends is a failure.
    assertTrue(load.creationFailures().isEmpty(), "creation errors: " + Load.describe(load.creationFailures()));
    List<Load.Failure> resent = load.resent();
    assertTrue(resent.stream().allMatch(f -> f.message().contains("KEY_AVAILABILITY") || f.message().contains("OUTCOME_UNKNOWN")),
        "creations answered with neither an outcome nor KEY_AVAILABILITY / OUTCOME_UNKNOWN: " + Load.describe(resent));
    assertTrue(resent.size() <= 12, "creations sent again: " + Load.describe(resent));
    assertFalse(created.isEmpty(), "keys were created during the scenario");
    missing.forEach((hsm, ids) -> assertTrue(ids.isEmpty(), hsm + " lacks acknowledged keys " + ids));
    assertEquals(0, down.getOrDefault(victim, 0L), "answers from the killed " + victim + ": " + down);
    assertTrue(down.values().stream().mapToLong(Long::longValue).sum() > 0, "requests served while " + victim + " was down");
    assertTrue(after.getOrDefault(victim, 0L) > 0, victim + " serves again after its start: " + after);
  }

  // ---------------------------------------------------------------------------------------------
  // (b) pause

  @Test
  @Order(2)
  @Timeout(value = 300, unit = TimeUnit.SECONDS)
  void b_pausedHsmContainerIsDrainedAndCatchesUpAfterUnpause() {
    cluster.awaitServing(HSMS, Duration.ofSeconds(60));
    String victim = follower();
    long t0 = System.nanoTime();
    long pauseAt;
    long pauseCallMs;
    long unservedMs;
    long unpauseAt;
    long servingMs;
    List<String> createdWhilePaused = new ArrayList<>();
    Load load = new Load(cluster, aesKey, ecKey, Duration.ofSeconds(200), 2_000_000).start();
    try (load) {
      sleep(5000);
      long pauseCall = System.nanoTime();
      cluster.pause(victim);
      // From here on the victim's processes are frozen (the call returns once the cgroup is): requests sent
      // from now until the unpause cannot be answered by it.
      pauseAt = System.nanoTime();
      pauseCallMs = (pauseAt - pauseCall) / 1_000_000;
      try {
        unservedMs = awaitNotServing(victim, pauseCall);
        for (int i = 0; i < 10 && ms(pauseAt) < 30_000; i++) {
          createdWhilePaused.add(Keys.generate(cluster, i % 2 == 0 ? "AES_256" : "EC_P256", "b-paused-" + i));
        }
        while (ms(pauseAt) < 15_000) {
          sleep(100);
        }
        assertTrue(cluster.paused(victim), victim + " is still paused");
        assertNotEquals("SERVING", state(cluster.hsmStatus(), victim), victim + " while paused");
      } finally {
        unpauseAt = System.nanoTime();
        cluster.unpause(victim);
      }
      cluster.awaitServing(HSMS, Duration.ofSeconds(120));
      servingMs = ms(unpauseAt);
      sleep(6000);
    }
    Map<String, Long> whilePaused = load.servedBetween(pauseAt, unpauseAt);
    Map<String, Long> after = load.servedBetween(unpauseAt + servingMs * 1_000_000, Long.MAX_VALUE);
    Keys.awaitAppliedEverywhere(cluster, Duration.ofSeconds(60));
    java.util.Set<String> onVictim = Keys.keyIdsOn(cluster, victim); // a pinned read
    List<String> lacking = createdWhilePaused.stream().filter(k -> !onVictim.contains(k)).toList();
    JsonObject check = Keys.awaitConsistent(cluster, Duration.ofSeconds(60));
    Report.note("(b) pause: " + victim + " (a Raft follower) paused " + seconds((unpauseAt - pauseAt) / 1_000_000)
        + " (the pause call took " + pauseCallMs + " ms): not SERVING " + unservedMs + " ms after the call began;"
        + " servedBy (requests sent and answered while paused) " + whilePaused
        + "; " + createdWhilePaused.size() + " keys created while paused, on " + victim + " after unpause: "
        + (createdWhilePaused.size() - lacking.size()) + "; SERVING again " + servingMs + " ms after unpause; after "
        + after + "; load " + load.ops() + " requests in " + seconds(ms(t0)) + ", max latency " + load.maxLatencyMs()
        + " ms, errors " + Load.describe(load.cryptoFailures()) + "; digests "
        + Keys.distinct(check.getJsonObject("digests")) + " distinct");
    assertTrue(unservedMs <= 10_000, victim + " still SERVING " + unservedMs + " ms after its pause");
    assertEquals(0, whilePaused.getOrDefault(victim, 0L), "answers from the paused " + victim + ": " + whilePaused);
    assertTrue(whilePaused.values().stream().mapToLong(Long::longValue).sum() > 0, "the others served while paused");
    assertEquals(10, createdWhilePaused.size());
    assertTrue(lacking.isEmpty(), victim + " lacks keys created while it was paused: " + lacking);
    assertTrue(load.cryptoFailures().isEmpty(), "client-visible errors: " + Load.describe(load.cryptoFailures()));
  }

  // ---------------------------------------------------------------------------------------------
  // (c) partition

  /** What the token directory of {@code hsm} holds: names, sizes and modification times of its files. */
  private static String tokenFiles(String hsm) {
    Container.ExecResult r = cluster.exec(hsm, "sh", "-c",
        "find /var/lib/hsmbridge/tokens -type f ! -name '*.lock' -printf '%P %s %T@\\n' | sort | sha256sum;"
            + " find /var/lib/hsmbridge/tokens -name '*.object' | wc -l");
    assertEquals(0, r.getExitCode(), hsm + ": " + r.getStderr());
    String[] lines = r.getStdout().strip().split("\n");
    return lines[0].split(" ")[0].substring(0, 16) + " (" + lines[1].strip() + " objects)";
  }

  private static String objectCount(String tokenFiles) {
    return tokenFiles.substring(tokenFiles.indexOf('('));
  }

  /** The membership's last "cluster membership: N members" line in a container's log, as N (0 when none). */
  private static int membershipView(String node) {
    Matcher m = Pattern.compile("cluster membership: (\\d+) members").matcher(cluster.logs(node));
    int size = 0;
    while (m.find()) {
      size = Integer.parseInt(m.group(1));
    }
    return size;
  }

  @Test
  @Order(3)
  @Timeout(value = 480, unit = TimeUnit.SECONDS)
  void c_partitionedHsmAppliesNothingWhileCutOffAndConvergesAfterReconnect() {
    cluster.awaitServing(HSMS, Duration.ofSeconds(60));
    Keys.awaitAppliedEverywhere(cluster, Duration.ofSeconds(30));
    String victim = leader();
    List<String> majority = HSMS.stream().filter(h -> !h.equals(victim)).toList();
    long appliedBefore = cluster.hsmStatus().get(victim).getLong("applied");
    String filesBefore = tokenFiles(victim);
    int members = membershipView("bridge");
    List<String> createdWhileCut = new ArrayList<>();
    List<String> creationErrors = new ArrayList<>();
    long unservedMs;
    long splitMs = -1;
    long cutMs;
    String filesDuring;
    long appliedDuring;
    String stateDuring;
    long reconnectAt;
    long servingMs;
    long membershipMs;
    long pinnedMs;
    long pinnedAt;
    Set<String> onVictim;
    Load load = new Load(cluster, aesKey, ecKey, Duration.ofSeconds(400), 2_000_000).start();
    try (load) {
      sleep(3000);
      long cutAt = System.nanoTime();
      cluster.disconnect(victim);
      try {
        unservedMs = awaitNotServing(victim, cutAt);
        // The majority keeps acknowledging creations. The cut lasts until the majority side's membership has
        // dropped the victim (the bridge's member view shrinks: 5 s without a state from it), so that the
        // reconnection goes through the membership's merge of split clusters.
        long bound = System.nanoTime() + Duration.ofSeconds(100).toNanos();
        int n = 0;
        while (System.nanoTime() < bound && n < 200) {
          String label = "c-cut-" + n++;
          try {
            createdWhileCut.add(Keys.generate(cluster, n % 2 == 0 ? "AES_256" : "EC_P256", label));
          } catch (HsmBridgeException e) {
            creationErrors.add(label + ": " + e.getMessage());
          }
          if (splitMs < 0 && membershipView("bridge") == members - 1) {
            splitMs = ms(cutAt);
          }
          if (splitMs >= 0 && createdWhileCut.size() >= 20 && ms(cutAt) > splitMs + 3000) {
            break;
          }
          sleep(400);
        }
        Map<String, JsonObject> st = cluster.hsmStatus();
        appliedDuring = st.get(victim).getLong("applied");
        stateDuring = state(st, victim);
        filesDuring = tokenFiles(victim);
        assertEquals(null, cluster.address(victim), victim + " has no address while cut off");
      } finally {
        reconnectAt = System.nanoTime();
        cutMs = ms(cutAt);
        cluster.reconnect(victim);
      }
      assertEquals(cluster.addressAtStart(victim), cluster.address(victim), victim + " is back with its address");
      cluster.awaitServing(HSMS, Duration.ofSeconds(180));
      servingMs = ms(reconnectAt);
      cluster.await("membership: the bridge and " + victim + " see " + members + " members again", Duration.ofSeconds(90),
          500, () -> List.of(membershipView("bridge"), membershipView(victim)), v -> v.equals(List.of(members, members)));
      membershipMs = ms(reconnectAt);
      // A pinned read answered by the victim: the bridge routes to it again (event bus over the merged membership).
      onVictim = cluster.await(victim + " answers a pinned key.list holding every key of the cut", Duration.ofSeconds(90),
          500, () -> Keys.keyIdsOn(cluster, victim), ids -> ids.containsAll(createdWhileCut));
      pinnedAt = System.nanoTime();
      pinnedMs = ms(reconnectAt);
      sleep(8000); // the load again, on every HSM
    }
    Keys.awaitAppliedEverywhere(cluster, Duration.ofSeconds(60));
    JsonObject check = Keys.awaitConsistent(cluster, Duration.ofSeconds(60));
    List<String> lacking = createdWhileCut.stream().filter(k -> !onVictim.contains(k)).toList();
    Map<String, Long> after = load.servedBetween(pinnedAt, Long.MAX_VALUE);
    List<Load.Failure> errors = load.cryptoFailures();
    Report.note("(c) partition: " + victim + " (the Raft leader) disconnected from the network for " + seconds(cutMs)
        + ": not SERVING after " + unservedMs + " ms; majority " + majority + " acknowledged " + createdWhileCut.size()
        + " creations (errors " + creationErrors.size() + (creationErrors.isEmpty() ? "" : " " + creationErrors) + ")");
    Report.note("    while cut off: " + victim + " applied " + appliedBefore + " -> " + appliedDuring + " (bridge's view), state "
        + stateDuring + ", token files " + filesBefore + " -> " + filesDuring + "; membership seen by the bridge "
        + members + " -> " + (splitMs < 0 ? "no change" : (members - 1) + " after " + seconds(splitMs)));
    Report.note("    reconnected with address " + cluster.address(victim) + ": SERVING after " + seconds(servingMs)
        + ", membership merged (bridge and " + victim + " see " + members + " members) after " + seconds(membershipMs)
        + ", pinned reads on " + victim + " answered after " + seconds(pinnedMs) + "; keys of the cut on " + victim + ": "
        + (createdWhileCut.size() - lacking.size()) + "/" + createdWhileCut.size() + "; cluster.check digests "
        + Keys.distinct(check.getJsonObject("digests")) + " distinct at sequence " + check.getLong("applied")
        + "; servedBy after " + after + "; load " + load.ops() + " requests, max latency " + load.maxLatencyMs()
        + " ms, errors " + Load.describe(errors));
    assertTrue(creationErrors.isEmpty(), "the majority refused creations: " + creationErrors);
    assertTrue(createdWhileCut.size() >= 20, "creations acknowledged while cut: " + createdWhileCut.size());
    assertTrue(splitMs >= 0, "the majority's membership never dropped " + victim + " within the cut");
    assertEquals(appliedBefore, appliedDuring, victim + "'s applied sequence moved while it was cut off");
    assertNotEquals("SERVING", stateDuring);
    // The token's files do change while it is cut off: its audit log's anchor (last sequence and chain MAC,
    // a token object replaced as lines are written) follows what the HSM audits. No mutation: the applied
    // sequence above did not move, and the number of objects is the same.
    assertEquals(objectCount(filesBefore), objectCount(filesDuring), victim + "'s token gained or lost objects while it was cut off");
    assertTrue(lacking.isEmpty(), victim + " lacks keys created while it was cut off: " + lacking);
    assertTrue(after.getOrDefault(victim, 0L) > 0, victim + " serves again: " + after);
    // Known (see the report): a request sent to the victim between the reconnection and the membership's merge may
    // get no answer; the bridge gives it up after its 25 s budget (TIMEOUT). At most the one request each
    // client thread had in flight then; anything else is a failure.
    assertTrue(errors.stream().allMatch(f -> f.message().startsWith("TIMEOUT")), "errors other than TIMEOUT: "
        + Load.describe(errors));
    assertTrue(errors.stream().map(Load.Failure::thread).distinct().count() == errors.size(),
        "more than one lost request per client thread: " + Load.describe(errors));
  }

  // ---------------------------------------------------------------------------------------------
  // (d) restart of the bridge

  @Test
  @Order(4)
  @Timeout(value = 300, unit = TimeUnit.SECONDS)
  void d_clientsReconnectAndLogInAgainAfterABridgeRestart() throws Exception {
    cluster.awaitServing(HSMS, Duration.ofSeconds(60));
    String oldSession = cluster.userSession();
    int portBefore = cluster.bridgePort();
    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong restartAt = new AtomicLong(Long.MAX_VALUE);
    Map<String, LongAdder> errorsByCode = new ConcurrentHashMap<>();
    List<String> errorsAfterRecovery = new CopyOnWriteArrayList<>();
    Map<String, Long> recoveredMs = new ConcurrentHashMap<>();
    Map<String, LongAdder> okAfter = new ConcurrentHashMap<>();
    LongAdder reconnects = new LongAdder();
    LongAdder logins = new LongAdder();
    long deadline = System.nanoTime() + Duration.ofSeconds(200).toNanos();
    List<Thread> clients = new ArrayList<>();
    for (String name : List.of("signer", "encrypter")) {
      Thread t = new Thread(() -> {
        BridgeClient c = null;
        String session = null;
        boolean recovered = false;
        while (!stop.get() && System.nanoTime() < deadline) {
          try {
            if (c == null || !c.isOpen()) {
              c = cluster.connect(); // the port is read again: a client that knows only the endpoint
              reconnects.increment();
            }
            if (session == null) {
              session = c.request(cluster.userLogin()).getString("session");
              logins.increment();
            }
            JsonObject body = name.equals("signer")
                ? new JsonObject().put("op", "sign").put("keyId", ecKey).put("alg", "ECDSA_SHA256").put("message", Keys.b64("d"))
                : new JsonObject().put("op", "encrypt").put("keyId", aesKey).put("alg", "AES_GCM").put("plaintext", Keys.b64("d"));
            c.request(body.put("session", session));
            if (System.nanoTime() > restartAt.get()) {
              if (!recovered) {
                recovered = true;
                recoveredMs.put(name, ms(restartAt.get()));
              }
              okAfter.computeIfAbsent(name, k -> new LongAdder()).increment();
            }
          } catch (HsmBridgeException e) {
            errorsByCode.computeIfAbsent(e.code().name(), k -> new LongAdder()).increment();
            if (recovered) {
              errorsAfterRecovery.add(name + ": " + e.getMessage());
            }
            if (e.code() == ErrorCode.NOT_AUTHENTICATED) {
              session = null; // not expected (sessions are cluster state): counted, then log in again
            } else {
              sleep(200);
            }
          }
        }
        if (c != null) {
          c.close();
        }
      }, "bridge-client-" + name);
      t.setDaemon(true);
      t.start();
      clients.add(t);
    }
    // A third client knows every front door (the bridge and each HSM host's): the bridge's restart costs it
    // nothing (issue #11: no process whose loss stops the service).
    List<String> failoverErrors = new CopyOnWriteArrayList<>();
    LongAdder failoverOk = new LongAdder();
    List<Long> failoverMicros = new CopyOnWriteArrayList<>();
    String session = cluster.userSession();
    Thread failover = new Thread(() -> {
      try (io.hsmbridge.client.Hsm hsm = io.hsmbridge.client.Hsm.connect(cluster.frontDoors(), cluster.clientTls())) {
        hsm.useSession(session);
        while (!stop.get() && System.nanoTime() < deadline) {
          long t0 = System.nanoTime();
          try {
            hsm.sign(ecKey, "ECDSA_SHA256", new byte[] {1, 2, 3});
            failoverOk.increment();
            failoverMicros.add((System.nanoTime() - t0) / 1000);
          } catch (HsmBridgeException e) {
            failoverErrors.add(e.getMessage());
          }
        }
      }
    }, "front-door-failover");
    failover.setDaemon(true);
    failover.start();
    clients.add(failover);
    long stopMs;
    long readyMs;
    int portAfter;
    ErrorCode oldSessionRefused;
    try {
      sleep(4000);
      long r0 = System.nanoTime();
      cluster.stop(ContainerCluster.BRIDGE, 10);
      stopMs = ms(r0);
      restartAt.set(System.nanoTime()); // the bridge is down: a success from now on is the restarted one's
      cluster.startAgain(ContainerCluster.BRIDGE, Duration.ofSeconds(180));
      readyMs = ms(r0);
      portAfter = cluster.bridgePort();
      cluster.await("both clients served again", Duration.ofSeconds(120), 200, () -> recoveredMs.size(), n -> n == 2);
      oldSessionRefused = refusal(oldSession);
      cluster.awaitServing(HSMS, Duration.ofSeconds(60));
      sleep(5000);
    } finally {
      stop.set(true);
      for (Thread t : clients) {
        t.join(ContainerCluster.CLIENT_TIMEOUT.toMillis() + 5000);
      }
    }
    Map<String, Long> codes = new TreeMap<>();
    errorsByCode.forEach((k, v) -> codes.put(k, v.sum()));
    Map<String, Long> ok = new TreeMap<>();
    okAfter.forEach((k, v) -> ok.put(k, v.sum()));
    Report.note("(d) bridge restart (stop, 10 s grace: " + stopMs + " ms; then start to ready line: " + seconds(readyMs)
        + " after the stop began); port " + portBefore + " -> " + portAfter + "; 2 clients served again "
        + new TreeMap<>(recoveredMs) + " ms after the bridge was down; errors seen while it was away " + codes
        + "; reconnects " + reconnects.sum()
        + " (2 at the start), logins " + logins.sum() + " (2 at the start); the old session after the restart: "
        + oldSessionRefused + "; requests served after the restart " + ok + "; errors after recovery "
        + errorsAfterRecovery.size());
    // Sessions are cluster state: the restarted bridge takes the sessions of before (an agent verifies each).
    assertEquals(null, oldSessionRefused, "a session of before the restart");
    assertEquals(0L, codes.getOrDefault("NOT_AUTHENTICATED", 0L), "no client had to log in again: " + codes);
    assertTrue(errorsAfterRecovery.isEmpty(), "errors after the clients were served again: " + errorsAfterRecovery);
    for (String name : List.of("signer", "encrypter")) {
      assertTrue(ok.getOrDefault(name, 0L) >= 10, name + " served after the restart: " + ok);
    }
    assertEquals(2L, logins.sum(), "each client logged in once, at the start");
    long longestMs = failoverMicros.stream().mapToLong(Long::longValue).max().orElse(0) / 1000;
    Report.note("    a client that knows every front door: " + failoverOk.sum() + " signatures, errors "
        + failoverErrors.size() + ", longest stall " + longestMs + " ms (the bridge's restart did not reach it)");
    assertTrue(failoverErrors.isEmpty(), "the client with every front door: " + failoverErrors);
    assertTrue(failoverOk.sum() > 10, "it signed: " + failoverOk.sum());
  }

  /** The error code a request with {@code session} gets now (null when it is accepted). */
  private static ErrorCode refusal(String session) {
    try (BridgeClient c = cluster.connect()) {
      c.request(new JsonObject().put("op", "key.list").put("session", session));
      return null;
    } catch (HsmBridgeException e) {
      return e.code();
    }
  }
}
