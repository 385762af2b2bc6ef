package io.hsmbridge.bridge;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.Ciphertext;
import io.hsmbridge.client.ClientTls;
import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.client.KeyInfo;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A one-HSM cluster's node as a real process ({@link NodeMain}: agent, Raft group of one, front door),
 * SIGKILLed in the middle of a crypto user's load that creates token keys, restarted with the same config,
 * three times. Every key whose creation was acknowledged before the kill must come back listed and usable.
 * A kill in the middle of a token write can leave a broken object file: an HSM of a cluster quarantines it
 * itself and re-applies its mutation log (AgentNode), so every restart must serve, and say so in its log.
 */
@Timeout(value = 420, unit = TimeUnit.SECONDS)
class NodeCrashTest {
  private static final Logger LOG = Logger.getLogger(NodeCrashTest.class.getName());
  private static final int CYCLES = 3;
  private static final int MAX_OPS_PER_CYCLE = 300;
  private static final Duration LOAD_LIMIT = Duration.ofSeconds(60);
  private static final Duration START_LIMIT = Duration.ofSeconds(90);
  private static final int LOAD_THREADS = 3;
  private static final byte[] MSG = "crash test".getBytes(StandardCharsets.UTF_8);

  @TempDir
  Path dir;

  private final List<Process> children = new ArrayList<>();

  /** A generate the node acknowledged. */
  private record Acked(String keyId, KeySpec spec, String label, int cycle) {}

  /** A child that is serving, or one that exited during start-up. */
  private record Started(Process process, int port, int exitCode, String log) {
    boolean serving() {
      return port > 0;
    }
  }

  private TestNodes.Pki pki;

  @AfterEach
  void killChildren() throws InterruptedException {
    for (Process p : children) {
      if (p.isAlive()) {
        p.destroyForcibly();
        p.waitFor(10, TimeUnit.SECONDS);
      }
    }
  }

  @Test
  void acknowledgedKeysSurviveSigkillMidLoad() throws Exception {
    NodeHome home = nodeHome("crash", Map.of("sessions.max", "4"));
    Path conf = home.softHsmConf();
    Path state = home.state();
    Path config = home.config();

    long seed = System.nanoTime();
    Random random = new Random(seed);
    LOG.info("crash test seed " + seed);
    List<Acked> acked = new ArrayList<>();
    List<String> report = new ArrayList<>();

    Started node = start(config, conf, state, "initial");
    assertTrue(node.serving(), "first start: " + node.log());
    TestNodes.CryptoUser user;
    String session;
    try (Hsm hsm = Hsm.connect("127.0.0.1", node.port(), pki.clientTls())) {
      user = TestNodes.activate(hsm);
      session = hsm.login(user.name(), user.password()).token();
    }

    for (int cycle = 1; cycle <= CYCLES; cycle++) {
      // ---- load, then SIGKILL at a random moment while it runs
      int killAfterAcks = 5 + random.nextInt(80);
      long extraDelayMs = random.nextInt(40);
      Load load = new Load(node.port(), pki.clientTls(), session, cycle, random.nextLong());
      load.start();
      long deadline = System.nanoTime() + LOAD_LIMIT.toNanos();
      while (load.acked.size() < killAfterAcks && load.running() && System.nanoTime() < deadline) {
        Thread.sleep(2);
      }
      Thread.sleep(extraDelayMs);
      boolean midLoad = load.running();
      int opsAtKill = load.ops.get();
      node.process().destroyForcibly(); // SIGKILL
      assertTrue(node.process().waitFor(30, TimeUnit.SECONDS), "the child died");
      load.join();
      assertTrue(midLoad, "cycle " + cycle + ": the kill happened while the load was running (" + opsAtKill + " ops)");
      assertTrue(load.unexpected.isEmpty(), () -> "unexpected failures before the kill: " + load.unexpected);
      acked.addAll(load.acked);
      report.add("cycle " + cycle + ": killed after " + opsAtKill + " ops, " + load.acked.size() + " acked keys");

      // ---- restart with the same config: it serves, repairing a cut-short write by itself
      node = start(config, conf, state, "restart-" + cycle);
      assertTrue(node.serving(), "cycle " + cycle + ": restart (exit " + node.exitCode() + ", "
          + fatalLine(node.log()) + "):\n" + node.log());
      if (node.log().contains("quarantined")) {
        assertTrue(node.log().contains("re-applies the mutation log from its applied index"),
            "no rewrite in place was under way, so the log is re-applied from the applied index: " + node.log());
        report.add("cycle " + cycle + ": a broken object was quarantined and the log re-applied from the applied index");
      }

      // ---- every acknowledged key is listed and usable by its user, who logs in again
      try (Hsm hsm = Hsm.connect("127.0.0.1", node.port(), pki.clientTls())) {
        session = hsm.login(user.name(), user.password()).token();
        Set<String> listed = new HashSet<>();
        for (KeyInfo k : hsm.listKeys()) {
          listed.add(k.keyId());
        }
        List<Acked> missing = acked.stream().filter(a -> !listed.contains(a.keyId())).toList();
        assertTrue(missing.isEmpty(), "cycle " + cycle + ": acknowledged keys lost after SIGKILL: " + missing);
        for (Acked a : acked) {
          assertUsable(hsm, a);
        }
      }
    }
    LOG.info(String.join("\n", report));
    System.out.println("crash test (seed " + seed + "): " + acked.size() + " acknowledged keys survived " + CYCLES
        + " SIGKILLs\n  " + String.join("\n  ", report));

    // a graceful stop (SIGTERM) removes endpoint.json
    node.process().destroy();
    assertTrue(node.process().waitFor(30, TimeUnit.SECONDS));
    assertFalse(Files.exists(state.resolve("endpoint.json")), "SIGTERM removes endpoint.json");
  }

  private static void assertUsable(Hsm hsm, Acked a) throws Exception {
    try {
      if (a.spec() == KeySpec.AES_256) {
        Ciphertext c = hsm.encrypt(a.keyId(), "AES_GCM", MSG, null);
        assertTrue(Arrays.equals(MSG, hsm.decrypt(a.keyId(), "AES_GCM", c, null)), a.toString());
      } else {
        byte[] sig = hsm.sign(a.keyId(), "ECDSA_SHA256", MSG);
        PublicKey pub = KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(hsm.publicKey(a.keyId())));
        Signature v = Signature.getInstance("SHA256withECDSA");
        v.initVerify(pub);
        v.update(MSG);
        assertTrue(v.verify(sig), "signature of " + a);
      }
    } catch (HsmBridgeException e) {
      fail("acknowledged key " + a + " is not usable after the crash: " + e.getMessage(), e);
    }
  }

  // ------------------------------------------------------------------ the load

  /** A few client threads creating AES-256 / EC P-256 token keys and using them, until the node dies. */
  private static final class Load {
    final ConcurrentLinkedQueue<Acked> acked = new ConcurrentLinkedQueue<>();
    final ConcurrentLinkedQueue<String> unexpected = new ConcurrentLinkedQueue<>();
    final AtomicInteger ops = new AtomicInteger();
    private final AtomicBoolean stop = new AtomicBoolean();
    private final AtomicInteger alive = new AtomicInteger();
    private final List<Thread> threads = new ArrayList<>();
    private final int port;
    private final ClientTls tls;
    private final String session;
    private final int cycle;
    private final long seed;
    private final long deadline = System.nanoTime() + LOAD_LIMIT.toNanos();

    Load(int port, ClientTls tls, String session, int cycle, long seed) {
      this.port = port;
      this.tls = tls;
      this.session = session;
      this.cycle = cycle;
      this.seed = seed;
    }

    void start() {
      for (int t = 0; t < LOAD_THREADS; t++) {
        int id = t;
        Thread th = new Thread(() -> run(id), "crash-load-" + cycle + "-" + t);
        th.setDaemon(true);
        alive.incrementAndGet();
        threads.add(th);
        th.start();
      }
    }

    boolean running() {
      return alive.get() > 0;
    }

    void join() throws InterruptedException {
      stop.set(true);
      for (Thread th : threads) {
        th.join(TimeUnit.SECONDS.toMillis(40));
        if (th.isAlive()) {
          unexpected.add(th.getName() + " did not stop");
        }
      }
    }

    private void run(int id) {
      Random r = new Random(seed + id);
      List<Acked> mine = new ArrayList<>();
      try (Hsm hsm = Hsm.owning(BridgeClient.connect("127.0.0.1", port, Duration.ofSeconds(20), tls))) {
        hsm.useSession(session);
        int n = 0;
        while (!stop.get() && System.nanoTime() < deadline && ops.incrementAndGet() <= MAX_OPS_PER_CYCLE) {
          try {
            if (!mine.isEmpty() && r.nextInt(3) == 0) {
              Acked a = mine.get(r.nextInt(mine.size()));
              if (a.spec() == KeySpec.AES_256) {
                hsm.encrypt(a.keyId(), "AES_GCM", MSG, null);
              } else {
                hsm.sign(a.keyId(), "ECDSA_SHA256", MSG);
              }
            } else {
              KeySpec spec = r.nextBoolean() ? KeySpec.AES_256 : KeySpec.EC_P256;
              String label = "c" + cycle + "-t" + id + "-" + n++;
              KeyInfo k = hsm.generateKey(spec, label, null, false);
              Acked a = new Acked(k.keyId(), spec, label, cycle);
              mine.add(a);
              acked.add(a);
            }
          } catch (HsmBridgeException e) {
            if (e.code() != ErrorCode.NO_HSM_AVAILABLE && e.code() != ErrorCode.TIMEOUT) {
              unexpected.add(Thread.currentThread().getName() + ": " + e.getMessage());
            }
            return; // the node is gone (or broken): this thread is done
          }
        }
      } catch (HsmBridgeException e) {
        if (e.code() != ErrorCode.NO_HSM_AVAILABLE) {
          unexpected.add(Thread.currentThread().getName() + " connect: " + e.getMessage());
        }
      } catch (RuntimeException e) {
        unexpected.add(Thread.currentThread().getName() + ": " + e);
      } finally {
        alive.decrementAndGet();
      }
    }
  }

  /**
   * A quarantined object file costs the whole log only when a key was being rewritten in place: an empty
   * file alone (a new object or an applied-index slot cut short) is re-applied from the applied index, and
   * a key lost in the middle of its relabel (its objects gone, the agent's rewrite marker left behind) comes
   * back from a replay of the whole log, with its new label.
   */
  @Test
  void aQuarantinedFileCostsTheWholeLogOnlyWhenAKeyWasBeingRewritten() throws Exception {
    NodeHome home = nodeHome("rewrite", Map.of());
    Path tokens = home.tokens();
    Path conf = home.softHsmConf();
    Path state = home.state();
    Path config = home.config();
    Path userPin = home.userPin();

    Started node = start(config, conf, state, "initial");
    assertTrue(node.serving(), "first start: " + node.log());
    TestNodes.CryptoUser user;
    List<Acked> keys = new ArrayList<>();
    try (Hsm hsm = Hsm.connect("127.0.0.1", node.port(), pki.clientTls())) {
      user = TestNodes.activate(hsm);
      hsm.login(user.name(), user.password());
      for (int i = 0; i < 3; i++) {
        KeySpec spec = i == 1 ? KeySpec.EC_P256 : KeySpec.AES_256;
        keys.add(new Acked(hsm.generateKey(spec, "k" + i, null, false).keyId(), spec, "k" + i, 0));
      }
      hsm.setLabel(keys.get(1).keyId(), "renamed");
    }
    Acked renamed = new Acked(keys.get(1).keyId(), KeySpec.EC_P256, "renamed", 0);
    keys.set(1, renamed);
    kill(node);

    // 1. an empty object file, no rewrite under way
    plantEmptyObject(tokens, "rewrite");
    node = start(config, conf, state, "empty-file");
    assertTrue(node.serving(), "restart: " + node.log());
    assertTrue(node.log().contains("quarantined"), node.log());
    assertTrue(node.log().contains("re-applies the mutation log from its applied index"), node.log());
    assertFalse(node.log().contains("re-applies the whole mutation log"), node.log());
    assertKeys(node, user, keys);
    kill(node);

    // 2. killed while the renamed key's file was rewritten: its objects lost, the marker left
    ProcessBuilder removing = new ProcessBuilder(Paths.get(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), KeyRemover.class.getName(),
        SoftHsmFixture.library().toString(), "rewrite", userPin.toString(), renamed.keyId())
        .redirectErrorStream(true);
    removing.environment().put("SOFTHSM2_CONF", conf.toString());
    Process remover = removing.start();
    String removed = new String(remover.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(remover.waitFor(60, TimeUnit.SECONDS) && remover.exitValue() == 0, removed);
    assertTrue(removed.contains("DELETED "), removed);
    plantEmptyObject(tokens, "rewrite");
    Files.writeString(state.resolve("in-place-rewrite"), "label of key " + renamed.keyId() + "\n", StandardCharsets.UTF_8);
    node = start(config, conf, state, "mid-rewrite");
    assertTrue(node.serving(), "restart: " + node.log());
    assertTrue(node.log().contains("re-applies the whole mutation log"), node.log());
    assertTrue(node.log().contains("label of key " + renamed.keyId()), "names the rewrite: " + node.log());
    assertFalse(Files.exists(state.resolve("in-place-rewrite")), "the marker is cleared once decided");
    assertKeys(node, user, keys);
  }

  private void kill(Started node) throws InterruptedException {
    node.process().destroyForcibly();
    assertTrue(node.process().waitFor(30, TimeUnit.SECONDS), "the child died");
  }

  /** A one-HSM node's files in this test's directory: its own SoftHSM2 token store, PINs, state and config. */
  private record NodeHome(Path tokens, Path softHsmConf, Path userPin, Path state, Path config) {}

  /** Writes the files of node {@code name} (also its token's label) with {@code extra} properties; sets {@link #pki}. */
  private NodeHome nodeHome(String name, Map<String, String> extra) throws IOException {
    Path tokens = Files.createDirectories(dir.resolve("tokens"));
    Path conf = dir.resolve("softhsm2.conf");
    Files.writeString(conf, SoftHsmFixture.softHsmConf(tokens), StandardCharsets.UTF_8);
    Path userPin = SoftHsmFixture.writePin(dir.resolve("pins/user.pin"));
    Path soPin = SoftHsmFixture.writePin(dir.resolve("pins/so.pin"));
    Path state = dir.resolve("state");
    pki = TestNodes.Pki.in(dir.resolve("pki"));
    Map<String, String> props = TestNodes.nodeProperties(name, name, userPin, soPin, state, pki);
    props.putAll(extra);
    return new NodeHome(tokens, conf, userPin, state, TestNodes.writeProperties(dir.resolve("node.properties"), props));
  }

  /** Every key listed with its label and usable by its owner, who logs in again. */
  private void assertKeys(Started node, TestNodes.CryptoUser user, List<Acked> keys) throws Exception {
    try (Hsm hsm = Hsm.connect("127.0.0.1", node.port(), pki.clientTls())) {
      hsm.login(user.name(), user.password());
      for (Acked a : keys) {
        assertEquals(a.label(), hsm.describe(a.keyId()).label(), a.toString());
        assertUsable(hsm, a);
      }
      assertEquals(keys.size(), hsm.listKeys().size());
    }
  }

  /** What a kill mid-write leaves, in the directory of the token labelled {@code label} in {@code tokens}. */
  private static void plantEmptyObject(Path tokens, String label) throws IOException {
    List<Path> dirs = io.hsmbridge.pkcs11.IntegrityScan.softHsmTokenDirectories(tokens, label);
    assertEquals(1, dirs.size(), "the token's directory: " + dirs);
    SoftHsmFixture.plantEmptyObject(dirs.get(0));
  }

  // ------------------------------------------------------------------ child processes

  private Started start(Path config, Path softHsmConf, Path state, String name) throws Exception {
    Path log = dir.resolve("logs").resolve(name + ".log");
    Files.createDirectories(log.getParent());
    String java = Paths.get(System.getProperty("java.home"), "bin", "java").toString();
    ProcessBuilder pb = new ProcessBuilder(java, "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
        "-cp", System.getProperty("java.class.path"), NodeMain.class.getName(), "--config", config.toString());
    pb.environment().put("SOFTHSM2_CONF", softHsmConf.toString());
    pb.redirectErrorStream(true);
    pb.redirectOutput(log.toFile());
    pb.directory(dir.toFile());
    Process p = pb.start();
    children.add(p);
    long deadline = System.nanoTime() + START_LIMIT.toNanos();
    while (System.nanoTime() < deadline) {
      if (!p.isAlive()) {
        return new Started(p, -1, p.exitValue(), read(log));
      }
      Path endpoint = state.resolve("endpoint.json");
      if (Files.exists(endpoint) && endpointPid(state) == p.pid()) {
        JsonObject e = new JsonObject(Files.readString(endpoint, StandardCharsets.UTF_8));
        return new Started(p, e.getInteger("port"), -1, read(log));
      }
      Thread.sleep(50);
    }
    p.destroyForcibly();
    throw new AssertionError("node " + name + " did not start within " + START_LIMIT + ":\n" + read(log));
  }

  /** The pid in endpoint.json, or -1 when there is none (yet) or it is being replaced. */
  private static long endpointPid(Path state) {
    try {
      return new JsonObject(Files.readString(state.resolve("endpoint.json"), StandardCharsets.UTF_8)).getLong("pid");
    } catch (IOException | RuntimeException e) {
      return -1;
    }
  }

  private static String fatalLine(String log) {
    return log.lines().filter(l -> l.startsWith("hsmbridge: ")).reduce((a, b) -> b).orElse("(no 'hsmbridge:' line)");
  }

  private static String read(Path log) {
    try {
      String s = Files.readString(log, StandardCharsets.UTF_8);
      return s.length() > 8000 ? "..." + s.substring(s.length() - 8000) : s;
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }
}
