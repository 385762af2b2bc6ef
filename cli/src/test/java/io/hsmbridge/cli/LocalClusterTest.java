package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Process bookkeeping of a local cluster with real (fake) node processes ({@link FakeNodes.Member}) and a
 * stand-in bridge that reports an HSM SERVING once its agent wrote its endpoint: starting every member at
 * once, waiting, failure reports, stopping, adding and removing an HSM. No token, no network.
 */
class LocalClusterTest {
  private static final Path LIB = Path.of("/nonexistent/lib.so");
  private static final String CO_SESSION = "co-session-token";

  @TempDir
  Path tmp;

  private final List<String> removeRequests = new ArrayList<>();
  private LocalCluster cluster;

  private LocalCluster cluster(Duration timeout) {
    Home home = new Home(tmp);
    cluster = new LocalCluster(home, FakeNodes.Member.class.getName(), timeout,
        (ep, t) -> new BridgeAdmin(body -> answer(home, body), () -> { }));
    return cluster;
  }

  @AfterEach
  void down() throws IOException {
    if (cluster != null) {
      cluster.stop();
    }
  }

  /** The stand-in bridge: an HSM serves once its agent process wrote its endpoint. */
  private JsonObject answer(Home home, JsonObject req) {
    JsonArray hsms = new JsonArray();
    for (String id : home.hsmDirs()) {
      long pid = Endpoint.readPid(home.hsm(id).endpointJson());
      if (pid > 0 && ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
        hsms.add(new JsonObject().put("hsmId", id).put("state", "SERVING").put("pid", pid).put("applied", 3).put("objects", 1)
            .put("outstanding", 0).put("capacity", 2).put("lastError", null).put("token", "hsmbridge-" + id));
      }
    }
    if (req.getString("op").equals("cluster.removeHsm")) {
      // As the real bridge: removing an HSM is an admin operation that needs a session.
      if (!CO_SESSION.equals(req.getString("session"))) {
        throw new HsmBridgeException(ErrorCode.NOT_AUTHENTICATED, "not logged in");
      }
      removeRequests.add(req.getString("hsmId"));
      return new JsonObject().put("removed", req.getString("hsmId")).put("peers", new JsonArray());
    }
    return new JsonObject().put("durability", 2).put("required", 2).put("members", hsms.size())
        .put("healthy", hsms.size()).put("hsms", hsms);
  }

  private ClusterRecord created(int hsms) throws IOException {
    ClusterRecord rec = ClusterLayout.newRecord(hsms, 7701, 2);
    ClusterLayout.write(cluster.home(), rec, LIB);
    return rec;
  }

  @Test
  void startsEveryMemberAtOnceWaitsUntilAllServeAndStopsThem() throws IOException {
    LocalCluster c = cluster(Duration.ofSeconds(60));
    ClusterRecord rec = created(3);
    List<LocalNode.Spawned> spawned = c.startMissing(rec);
    assertEquals(List.of("hsm1", "hsm2", "hsm3", "bridge"), spawned.stream().map(LocalNode.Spawned::name).toList());

    LocalCluster.Ready ready = c.awaitServing(spawned, rec.hsmIds());
    assertTrue(ready.status().allServing(rec.hsmIds()));
    assertEquals(7701, ready.bridge().port());
    Map<String, Long> pids = c.running();
    assertEquals(List.of("hsm1", "hsm2", "hsm3", "bridge"), List.copyOf(pids.keySet()));
    assertEquals(4, new HashSet<>(pids.values()).size(), "one process each");
    assertEquals(ready.bridge().pid(), pids.get("bridge"));
    assertTrue(c.startMissing(rec).isEmpty(), "nothing to start while everything runs");

    assertEquals(pids, c.stop());
    pids.values().forEach(pid -> assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)));
    assertTrue(c.running().isEmpty());
    assertTrue(c.stop().isEmpty(), "stop is idempotent");
  }

  @Test
  void aMemberThatExitsIsNamedWithItsOwnErrorAndLog() throws IOException {
    LocalCluster c = cluster(Duration.ofSeconds(60));
    ClusterRecord rec = created(2);
    Files.createFile(c.home().hsm("hsm2").dir().resolve("fail"));
    List<LocalNode.Spawned> spawned = c.startMissing(rec);
    NodeFailure f = assertThrows(NodeFailure.class, () -> c.awaitServing(spawned, rec.hsmIds()));
    Path log = c.home().hsm("hsm2").nodeLog();
    assertEquals("hsm2: TOKEN_LOGIN_FAILED: login to token failed (CKR_PIN_INCORRECT) (node log: " + log + ")",
        f.getMessage());
    assertEquals(log, f.log());
    assertEquals(List.of("starting agent", "hsmbridge: TOKEN_LOGIN_FAILED: login to token failed (CKR_PIN_INCORRECT)"),
        f.logTail());
    assertFalse(c.running().containsKey("hsm2"));
    assertTrue(c.running().containsKey("hsm1"), "the others keep running; 'down' stops them");
  }

  @Test
  void aTimeoutNamesTheHsmsThatDoNotServe() throws IOException {
    LocalCluster c = cluster(Duration.ofSeconds(4));
    ClusterRecord rec = created(3);
    Files.createFile(c.home().hsm("hsm3").dir().resolve("slow"));
    List<LocalNode.Spawned> spawned = c.startMissing(rec);
    NodeFailure f = assertThrows(NodeFailure.class, () -> c.awaitServing(spawned, rec.hsmIds()));
    assertEquals("the cluster was not ready within 4 s: not serving: hsm3 not reported (node log: "
        + c.home().hsm("hsm3").nodeLog() + ")", f.getMessage());
  }

  @Test
  void addsAnHsmThatJoinsAndRemovesOneKeepingItsToken() throws IOException {
    LocalCluster c = cluster(Duration.ofSeconds(60));
    ClusterRecord rec = created(2).asEstablished();
    ClusterLayout.write(c.home(), rec, LIB);
    c.awaitServing(c.startMissing(rec), rec.hsmIds());

    LocalCluster.Added added = c.add(rec, LIB);
    assertEquals("hsm3", added.hsmId());
    assertTrue(added.ready().status().isServing("hsm3"));
    ClusterRecord now = ClusterRecord.load(c.home().clusterProperties());
    assertEquals(List.of("hsm1", "hsm2", "hsm3"), now.hsmIds());
    assertFalse(now.member("hsm3").orElseThrow().joining(), "seen serving: it joined");
    assertTrue(Files.readString(c.home().hsm("hsm3").nodeProperties()).contains("raft.join=false\n"));
    assertTrue(Files.readString(c.home().hsm("hsm1").nodeProperties()).contains(",hsm3@127.0.0.1:"));
    long hsm2Pid = c.running().get("hsm2");
    String hsm2Pin = Files.readString(c.home().hsm("hsm2").userPin());

    HsmBridgeException anonymous = assertThrows(HsmBridgeException.class, () -> c.remove(now, "hsm2", LIB, null));
    assertEquals(ErrorCode.NOT_AUTHENTICATED, anonymous.code());
    assertTrue(c.running().containsKey("hsm2"), "nothing was stopped");
    LocalCluster.Removal r = c.remove(now, "hsm2", LIB, CO_SESSION);
    assertEquals(List.of("hsm2"), removeRequests, "the bridge drained it and took it out of the group");
    assertEquals(hsm2Pid, r.pid().getAsLong());
    assertFalse(ProcessHandle.of(hsm2Pid).map(ProcessHandle::isAlive).orElse(false));
    assertFalse(Files.exists(c.home().hsm("hsm2").dir()));
    assertEquals(c.home().removedDir(), r.movedTo().getParent());
    assertTrue(r.movedTo().getFileName().toString().matches("hsm2-\\d{8}T\\d{6}Z"), r.movedTo()::toString);
    assertEquals(hsm2Pin, Files.readString(r.movedTo().resolve("user.pin")), "the token and its PINs are kept");
    assertTrue(Files.isDirectory(r.movedTo().resolve("tokens")));
    ClusterRecord after = ClusterRecord.load(c.home().clusterProperties());
    assertEquals(List.of("hsm1", "hsm3"), after.hsmIds());
    assertEquals("hsm4", after.nextHsmId());
    for (String n : List.of("hsm1", "hsm3", "bridge")) {
      String props = Files.readString(c.home().node(n).nodeProperties());
      assertFalse(props.contains("hsm2@") || props.contains(":" + now.member("hsm2").orElseThrow().hazelcastPort()), props);
    }
    assertEquals(List.of("hsm1", "hsm3", "bridge"), List.copyOf(c.running().keySet()));
    try (Stream<Path> removed = Files.list(c.home().removedDir())) {
      assertEquals(1, removed.count());
    }
  }
}
