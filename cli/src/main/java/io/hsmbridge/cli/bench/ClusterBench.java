package io.hsmbridge.cli.bench;

import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import io.hsmbridge.protocol.Op;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.PrintStream;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.HdrHistogram.Histogram;

/**
 * The benchmark of the path a deployment uses ({@code bench}, and {@code bench --cluster} for several
 * sizes): for each cluster size, a throwaway cluster (started by the caller's {@link Launcher}: {@code up
 * --hsms N --port 0} in a temporary data directory: N agent processes, each a front door with its own TLS
 * client endpoint, and a standalone bridge), then
 * <ol>
 *   <li>crypto rows: each op of {@link Settings#ops} from N blocking TCP client threads (a connection each,
 *       or one they share over {@link Link#HOST_SHARED}; in this JVM: a client process of its own) over
 *       each {@link Link}, with the share of the requests each HSM served ({@code servedBy} of each
 *       reply), beside the direct PKCS#11 baseline the caller measured in the same run;</li>
 *   <li>key-creation latency: sequential {@code key.generate} requests from one client; a creation is
 *       answered only once {@code required = min(durability, HSMs)} HSMs applied it, and every reply is
 *       checked for {@code appliedOn >= required}; beside one token's own sequential key generation.</li>
 * </ol>
 * The client runs on the same cores as the agents and the bridge. Every loop is bounded in count and time.
 */
public final class ClusterBench {
  /** The CSV header of {@code bench --csv}: one header for creation and crypto rows. */
  public static final String CSV_HEADER =
      "row,hsms,required,threads,n,direct_ops_per_s,hsmbridge_ops_per_s,ratio,p50_us,p99_us,max_us,cores,served_by";
  /** AES creations per cluster before the measured ones (JIT, Raft and session warm-up), not recorded. */
  static final int CREATION_WARMUP = 5;
  /** A bound on the time one spec's creations may take; fewer are measured when it is reached. */
  static final Duration CREATION_TIME_CAP = Duration.ofSeconds(90);
  private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(60);
  static final long LINK_WARMUP_REQUESTS = 2000;
  static final Duration LINK_WARMUP_CAP = Duration.ofSeconds(90);
  /** One warm-up window: 4 client threads for this long, its throughput compared with the window before. */
  static final long WARMUP_WINDOW_MS = 3_000;
  /** Throughput within this share of the window before: the JIT has settled. */
  static final double WARMUP_SETTLED = 0.05;

  /** How the client reaches the cluster. */
  public enum Link {
    /** What a deployment does: TLS 1.3 to the front door in the first HSM's agent process. */
    HOST("host", "TLS 1.3 to the front door in hsm1's agent process (the deployment's path)"),
    /** TLS 1.3 to the standalone bridge process (a DMZ front door without a token): one hop more. */
    BRIDGE("bridge", "TLS 1.3 to the standalone bridge process (no token), which forwards to an agent"),
    /**
     * The host link with one connection that every client thread shares, as an application sharing one client
     * ({@code Hsm}, {@code BridgeClient}: thread-safe, pipelined) does: what pipelining over one connection gives.
     */
    HOST_SHARED("host_shared", "TLS 1.3 to the front door in hsm1's agent process, one connection shared by every"
        + " client thread (pipelined, as an application sharing one client)"),
    /** The standalone bridge's plaintext loopback listener: what TLS on the client endpoint costs. */
    BRIDGE_PLAIN("bridge_plain", "the standalone bridge's plaintext loopback listener"),
    /** The JCE provider over the host link: what a JCA application pays beyond the client (issue #13 item 5). */
    JCE("jce", "the JCE provider (Signature, Cipher, Mac of HsmBridge) over TLS 1.3 to hsm1's front door, a"
        + " provider (a connection) per thread; adds TLS 1.3 handshake rows: server key in the cluster vs in memory");

    final String id;
    final String description;

    Link(String id, String description) {
      this.id = id;
      this.description = description;
    }

    /** Parses {@code host,bridge}: each a link's id. */
    public static List<Link> parseList(String csv) {
      List<Link> out = new ArrayList<>();
      for (String s : csv.split(",")) {
        Link match = null;
        for (Link l : values()) {
          if (l.id.equals(s.trim())) {
            match = l;
          }
        }
        if (match == null || out.contains(match)) {
          throw new IllegalArgumentException("links are host, bridge, bridge_plain and jce, each once; got '" + csv + "'");
        }
        out.add(match);
      }
      return out;
    }
  }

  /** A running throwaway cluster; {@link #close} stops it and deletes its data directory. */
  public interface Cluster extends AutoCloseable {
    String host();

    /** The standalone bridge's client endpoint (TLS). */
    int port();

    /** The client endpoint (TLS) of the front door in the first HSM's agent process. */
    int frontDoorPort();

    /** The TLS settings pinning the cluster CA, for {@link #port()} and {@link #frontDoorPort()}. */
    io.hsmbridge.client.ClientTls tls();

    /** The bridge's plaintext listener on 127.0.0.1, for the comparison rows. */
    int plaintextPort();

    /** The HSM ids, in order. */
    List<String> hsmIds();

    int durability();

    /** HSMs a mutation must reach before it is acknowledged, as the bridge reports it. */
    int required();

    /** Seconds from spawning the processes until every HSM served. */
    double startSeconds();

    /** The session token of the crypto user the launcher logged in on this cluster (keys and crypto need one). */
    String session();

    /** That crypto user's name, for the JCE provider's login. */
    String cryptoUser();

    /** A fresh copy of that crypto user's password, for the JCE provider's logins (the caller clears it). */
    char[] cryptoUserPassword();

    @Override
    void close() throws Exception;
  }

  /** Starts a throwaway cluster of {@code hsms} HSMs and waits until every HSM serves. */
  @FunctionalInterface
  public interface Launcher {
    Cluster start(int hsms) throws Exception;
  }

  /** The direct PKCS#11 baseline of one op at one thread count. */
  public record Direct(BenchOp op, int threads, double opsPerSecond, double p50Micros, double p99Micros) {}

  /** One token's own sequential key generations of one spec: what a replicated creation is compared with. */
  public record DirectGeneration(KeySpec spec, long n, double p50Micros, double meanMicros) {}

  /** Everything the direct child measured, parsed from its lines ({@link #parse}). */
  public record Baseline(Map<BenchOp, Map<Integer, Direct>> crypto, Map<KeySpec, DirectGeneration> generation,
      String description) {

    Direct direct(BenchOp op, int threads) {
      return crypto.getOrDefault(op, Map.of()).get(threads);
    }

    /** Whether every op at every thread count and every creation spec of {@code s} was measured. */
    public boolean covers(Settings s) {
      return s.ops().stream().allMatch(op -> crypto.containsKey(op) && crypto.get(op).keySet().containsAll(s.threads()))
          && generation.keySet().containsAll(s.creations().keySet());
    }

    /** Parses the {@code token,} {@code direct,} and {@code generate,} lines of {@code BenchMain --direct-only}. */
    public static Baseline parse(List<String> lines) {
      Map<BenchOp, Map<Integer, Direct>> crypto = new java.util.EnumMap<>(BenchOp.class);
      Map<KeySpec, DirectGeneration> generation = new LinkedHashMap<>();
      String description = "(no description)";
      for (String line : lines) {
        String[] f = line.strip().split(",");
        if (line.startsWith("token,")) {
          description = line.substring("token,".length()).strip();
        } else if (f.length == 6 && f[0].equals("direct")) {
          BenchOp op = BenchOp.parseList(f[1]).get(0);
          int t = Integer.parseInt(f[2]);
          crypto.computeIfAbsent(op, x -> new TreeMap<>()).put(t, new Direct(op, t, Double.parseDouble(f[3]),
              Double.parseDouble(f[4]), Double.parseDouble(f[5])));
        } else if (f.length == 5 && f[0].equals("generate")) {
          KeySpec spec = KeySpec.parse(f[1]);
          generation.put(spec, new DirectGeneration(spec, Long.parseLong(f[2]), Double.parseDouble(f[3]),
              Double.parseDouble(f[4])));
        }
      }
      return new Baseline(crypto, generation, description);
    }
  }

  /** What to run. {@code creations}: key spec to measured count, in order. */
  public record Settings(List<Integer> hsms, List<BenchOp> ops, List<Link> links, Map<KeySpec, Integer> creations,
      List<Integer> threads, int warmupSeconds, int seconds, boolean csv) {
    public Settings {
      hsms = List.copyOf(hsms);
      ops = List.copyOf(ops);
      links = List.copyOf(links);
      creations = Collections.unmodifiableMap(new LinkedHashMap<>(creations));
      threads = List.copyOf(threads);
    }
  }

  /** One spec's creation latencies on one cluster size, beside one token's own generation. */
  record Creation(int hsms, int required, KeySpec spec, long n, double p50Micros, double p99Micros,
      double maxMicros, double meanMicros, int minAppliedOn, Map<String, Long> servedBy, DirectGeneration direct) {}

  /** One crypto row. */
  record Row(int hsms, BenchOp op, int threads, Link link, Direct direct, Measurement.Result result,
      Map<String, Long> servedBy) {

    String name() {
      return op.id() + "@" + link.id;
    }
  }

  private final Settings settings;
  private final Baseline baseline;
  private final Launcher launcher;
  private final PrintStream out;
  private final PrintStream progress;
  private final int cores = Runtime.getRuntime().availableProcessors();
  private final List<Creation> creations = new ArrayList<>();
  /** The one connection of the {@link Link#HOST_SHARED} rows, while a cluster is measured. */
  private BridgeClient sharedClient;
  private final List<Row> rows = new ArrayList<>();
  private final SecureRandom random = new SecureRandom();
  /** The JCE rows' providers, while a cluster with the jce link runs. */
  private JceBench jce;
  /** The TLS handshake rows (with the jce link), per cluster size. */
  private final List<String> handshakeRows = new ArrayList<>();

  /**
   * @param baseline the direct measurements (made by the caller before any cluster ran)
   * @param progress where progress lines go (stderr in CSV mode)
   */
  public ClusterBench(Settings settings, Baseline baseline, Launcher launcher, PrintStream out, PrintStream progress) {
    this.settings = settings;
    this.baseline = baseline;
    this.launcher = launcher;
    this.out = out;
    this.progress = progress;
  }

  /** Runs every cluster size in turn and prints the rows (CSV: as measured; table: at the end). */
  public void run() throws Exception {
    header();
    for (int hsms : settings.hsms()) {
      progress.printf(Locale.ROOT, "starting a throwaway cluster of %d HSM%s ...%n", hsms, hsms == 1 ? "" : "s");
      progress.flush();
      long t0 = System.nanoTime();
      try (Cluster cluster = launcher.start(hsms)) {
        progress.printf(Locale.ROOT, "  up in %.1f s: front door of hsm1 at %s:%d, bridge at %s:%d; %s, durability"
            + " %d, a key change needs %d%n", cluster.startSeconds(), cluster.host(), cluster.frontDoorPort(),
            cluster.host(), cluster.port(), String.join(", ", cluster.hsmIds()), cluster.durability(), cluster.required());
        progress.flush();
        measure(cluster);
        progress.print("  stopping it (down) and deleting its data dir ...");
        progress.flush();
      }
      progress.printf(Locale.ROOT, " done; %.0f s for this cluster size%n", (System.nanoTime() - t0) / 1e9);
      progress.flush();
    }
    if (!settings.csv()) {
      tables();
    }
    out.flush();
  }

  private void measure(Cluster cluster) throws Exception {
    Link first = settings.links().get(0);
    if (settings.links().contains(Link.JCE)) {
      jce = new JceBench(cluster.host(), cluster.frontDoorPort(), cluster.tls().ca(), cluster.cryptoUser(),
          cluster::cryptoUserPassword);
    }
    try (BridgeClient client = connect(cluster, first);
        BridgeClient shared = settings.links().contains(Link.HOST_SHARED) ? connect(cluster, Link.HOST_SHARED) : null) {
      sharedClient = shared;
      Map<BenchOp, String> keys = new java.util.EnumMap<>(BenchOp.class);
      for (BenchOp op : settings.ops()) {
        keys.put(op, create(client, cluster, op.spec, op.usage, "bench-" + op.id()).getString("keyId"));
      }
      // Every link warmed first with every op until the cluster's processes run compiled code (the first
      // rows of a fresh cluster otherwise pay for its JIT), then each thread count measured over every link
      // back to back, the order rotated from one count to the next.
      for (Link link : settings.links()) {
        if (settings.warmupSeconds() > 0) { // --warmup 0 (the tests' tiny runs) skips it
          warmLink(cluster, link, keys);
        }
      }
      int turn = 0;
      for (BenchOp op : settings.ops()) {
        byte[] input = input(op);
        for (int threads : settings.threads()) {
          List<Link> order = new ArrayList<>(settings.links());
          Collections.rotate(order, turn++);
          for (Link link : order) {
            row(cluster, client, op, keys.get(op), input, threads, link);
          }
        }
      }
      if (jce != null) {
        progress.println("  TLS 1.3 handshakes, server key in the cluster and in memory ...");
        progress.flush();
        for (String line : jce.handshakes(settings.threads(), settings.warmupSeconds() * 1000L,
            settings.seconds() * 1000L)) {
          handshakeRows.add(String.format(Locale.ROOT, "%4d ", cluster.hsmIds().size()) + line);
          progress.println("  " + line);
          progress.flush();
        }
      }
      if (!settings.creations().isEmpty()) {
        long t0 = System.nanoTime();
        for (int i = 0; i < CREATION_WARMUP; i++) {
          create(client, cluster, KeySpec.AES_256, null, "bench-warmup-" + i);
        }
        for (Map.Entry<KeySpec, Integer> e : settings.creations().entrySet()) {
          Creation c = creations(client, cluster, e.getKey(), e.getValue());
          creations.add(c);
          if (settings.csv()) {
            csv(c);
          }
          progress.printf(Locale.ROOT, "  %d %s creations: p50 %.1f ms, p99 %.1f ms%n", c.n(), c.spec(),
              c.p50Micros() / 1000, c.p99Micros() / 1000);
          progress.flush();
        }
        progress.printf(Locale.ROOT, "  key creations done in %.1f s%n", (System.nanoTime() - t0) / 1e9);
        progress.flush();
      }
    } finally {
      sharedClient = null; // closed with this cluster's try block; the next cluster connects its own
      if (jce != null) {
        jce.close();
        jce = null;
      }
    }
  }

  private byte[] input(BenchOp op) {
    byte[] b = new byte[op.inputBytes];
    random.nextBytes(b);
    return b;
  }

  private static BridgeClient connect(Cluster cluster, Link link) {
    switch (link) {
      case HOST:
      case HOST_SHARED:
      case JCE: // the JCE rows' own connections are the providers'; this one makes the keys
        return BridgeClient.connect(cluster.host(), cluster.frontDoorPort(), REQUEST_TIMEOUT, cluster.tls());
      case BRIDGE:
        return BridgeClient.connect(cluster.host(), cluster.port(), REQUEST_TIMEOUT, cluster.tls());
      default:
        return BridgeClient.connect("127.0.0.1", cluster.plaintextPort(), REQUEST_TIMEOUT);
    }
  }

  /**
   * Warms one client link with every op until its throughput has settled: each op at least
   * {@link #LINK_WARMUP_REQUESTS} requests, then windows of {@link #WARMUP_WINDOW_MS} until one's throughput is
   * within {@link #WARMUP_SETTLED} of the one before, all ops within {@link #LINK_WARMUP_CAP}. Measured: an
   * agent JVM compiled for 23 s of CPU in its first minute of load (jstat), and three identical RSA-2048 rows
   * right after a 2,000-request warm-up of one op gave 0.37, 0.45 and 0.54 of direct: rows measured
   * while the JIT still takes a core's share are not what a running deployment gives.
   */
  private void warmLink(Cluster cluster, Link link, Map<BenchOp, String> keys) throws Exception {
    long deadline = System.nanoTime() + LINK_WARMUP_CAP.toNanos();
    for (BenchOp op : settings.ops()) {
      byte[] input = input(op);
      long done = 0;
      int windows = 0;
      double before = 0;
      double rate = 0;
      boolean settled = false;
      while (true) { // at least one window per op, also past the cap
        rewindIfJce(link);
        Measurement.Result w = Measurement.run(() -> worker(cluster, link, op, keys.get(op), input), 4, 0,
            WARMUP_WINDOW_MS);
        done += w.count();
        windows++;
        before = rate;
        rate = w.opsPerSecond();
        settled = before > 0 && Math.abs(rate - before) <= WARMUP_SETTLED * before;
        if ((done >= LINK_WARMUP_REQUESTS && settled) || System.nanoTime() - deadline >= 0) {
          break;
        }
      }
      progress.printf(Locale.ROOT, "  warmed the %s link with %d %s requests in %d windows of %d ms, last %.0f op/s%s%n",
          link.id, done, op.id(), windows, WARMUP_WINDOW_MS, rate, settled ? " (settled)" : " (cap reached, not settled)");
      progress.flush();
    }
  }

  private void row(Cluster cluster, BridgeClient client, BenchOp op, String keyId, byte[] input, int threads, Link link)
      throws Exception {
    List<Measurement.Worker> workers = Collections.synchronizedList(new ArrayList<>());
    rewindIfJce(link);
    Measurement.Result r = Measurement.run(() -> {
      Measurement.Worker w = worker(cluster, link, op, keyId, input);
      workers.add(w);
      return w;
    }, threads, settings.warmupSeconds() * 1000L, settings.seconds() * 1000L);
    Map<String, Long> served = zeros(cluster.hsmIds());
    for (Measurement.Worker w : workers) {
      if (w instanceof OpWorker o) { // the provider does not say which HSM served
        o.served.forEach((k, v) -> served.merge(k, v, Long::sum));
      }
    }
    Row row = new Row(cluster.hsmIds().size(), op, threads, link, baseline.direct(op, threads), r, served);
    rows.add(row);
    if (settings.csv()) {
      csv(row, cluster.hsmIds());
    }
    progress.printf(Locale.ROOT, "  %s at %d thread%s over %s: %.0f op/s (%s); the service-time estimates: %s%n",
        op.id(), threads, threads == 1 ? "" : "s", link.id, r.opsPerSecond(), servedBy(row, cluster.hsmIds(), false),
        serviceEstimates(client));
    progress.flush();
  }

  /** Each run's threads take the JCE providers from the first on: the warm providers, logged in once. */
  private void rewindIfJce(Link link) {
    if (link == Link.JCE) {
      jce.rewind();
    }
  }

  /** One client thread's worker for a row over {@code link}: a client connection, or a JCE provider's engine. */
  private Measurement.Worker worker(Cluster cluster, Link link, BenchOp op, String keyId, byte[] input) throws Exception {
    if (link == Link.JCE) {
      return jce.worker(op, "bench-" + op.id(), input);
    }
    if (link == Link.HOST_SHARED) {
      return new OpWorker(sharedClient, false, op, keyId, input, cluster.session());
    }
    return new OpWorker(connect(cluster, link), true, op, keyId, input, cluster.session());
  }

  private Creation creations(BridgeClient client, Cluster cluster, KeySpec spec, int count) {
    Histogram h = new Histogram(3_600_000_000_000L, 3);
    Map<String, Long> served = zeros(cluster.hsmIds());
    int minApplied = Integer.MAX_VALUE;
    long deadline = System.nanoTime() + CREATION_TIME_CAP.toNanos();
    long n = 0;
    String tag = spec.name().toLowerCase(Locale.ROOT);
    while (n < count && System.nanoTime() - deadline < 0) {
      long t0 = System.nanoTime();
      JsonObject reply = create(client, cluster, spec, null, "bench-" + tag + "-" + n);
      long t1 = System.nanoTime();
      h.recordValue(t1 - t0);
      n++;
      minApplied = Math.min(minApplied, reply.getInteger("appliedOn"));
      served.merge(String.valueOf(reply.getString("servedBy")), 1L, Long::sum);
    }
    if (n < count) {
      progress.printf(Locale.ROOT, "  %s: stopped after %d of %d creations (time cap %d s)%n", spec, n, count,
          CREATION_TIME_CAP.toSeconds());
    }
    return new Creation(cluster.hsmIds().size(), cluster.required(), spec, n, h.getValueAtPercentile(50) / 1000.0,
        h.getValueAtPercentile(99) / 1000.0, h.getMaxValue() / 1000.0, h.getMean() / 1000.0, minApplied, served,
        baseline.generation().get(spec));
  }

  /**
   * The front door's per-HSM mean service time (its routing input, from {@code cluster.status}), e.g.
   * {@code hsm1 520 us, hsm2 610 us}: shows why the requests were spread as they were.
   */
  private static String serviceEstimates(BridgeClient client) {
    JsonObject status = client.request(new JsonObject().put("op", Op.CLUSTER_STATUS.wire()));
    List<String> parts = new ArrayList<>();
    JsonArray hsms = status.getJsonArray("hsms", new JsonArray());
    for (int i = 0; i < hsms.size(); i++) {
      JsonObject h = hsms.getJsonObject(i);
      parts.add(h.getString("hsmId") + " " + h.getValue("serviceMicros") + " us");
    }
    return String.join(", ", parts);
  }

  /** Every HSM with a count of 0, so that one that served nothing shows as 0 %. */
  private static Map<String, Long> zeros(List<String> hsmIds) {
    Map<String, Long> m = new TreeMap<>();
    hsmIds.forEach(id -> m.put(id, 0L));
    return m;
  }

  /**
   * Creates a key and checks that the reply says it reached {@code required} HSMs.
   *
   * @param usage null: the spec's default ({@link KeyUsage#defaultFor}: encryption for AES, signing otherwise)
   */
  private static JsonObject create(BridgeClient client, Cluster cluster, KeySpec spec, KeyUsage usage, String label) {
    int required = cluster.required();
    JsonObject req = new JsonObject().put("op", Op.KEY_GENERATE.wire()).put("spec", spec.name()).put("label", label)
        .put("exportable", false).put("session", cluster.session());
    req.put("usage", (usage != null ? usage : KeyUsage.defaultFor(spec)).name());
    JsonObject reply = client.request(req);
    Integer applied = reply.getInteger("appliedOn");
    if (reply.getString("keyId") == null || applied == null || applied < required) {
      throw new IllegalStateException("a " + spec + " creation was acknowledged without reaching " + required
          + " HSMs: " + reply.encode());
    }
    return reply;
  }

  /** One client thread's connection for a crypto row; counts which HSM served each measured request. */
  private static final class OpWorker implements Measurement.Worker {
    private final BridgeClient client;
    /** Whether this worker's connection is its own (closed with it), not the link's shared one. */
    private final boolean owned;
    private final BenchOp op;
    private final String keyId;
    private final byte[] input;
    private final String session;
    private final Map<String, Long> served = new TreeMap<>();
    private String last;

    OpWorker(BridgeClient client, boolean owned, BenchOp op, String keyId, byte[] input, String session) {
      this.client = client;
      this.owned = owned;
      this.op = op;
      this.keyId = keyId;
      this.input = input;
      this.session = session;
    }

    @Override
    public void runOnce() {
      JsonObject reply = client.request(op.request(keyId, input).put("session", session));
      if (reply.getString(op.resultField()) == null) {
        throw new IllegalStateException(op.id() + " reply without a " + op.resultField() + ": " + reply.encode());
      }
      last = reply.getString("servedBy");
    }

    @Override
    public void measured() {
      served.merge(String.valueOf(last), 1L, Long::sum);
    }

    @Override
    public void close() {
      if (owned) {
        client.close();
      }
    }
  }

  private void header() {
    if (settings.csv()) {
      out.println(CSV_HEADER);
      out.flush();
    }
    PrintStream p = settings.csv() ? progress : out;
    p.printf(Locale.ROOT, "hsmbridge bench: %d cores (Runtime.availableProcessors), Java %s; the agents, the bridge"
        + " and this client all run on them%n", cores, System.getProperty("java.version"));
    p.println("each cluster size: a throwaway data dir (up --hsms N --port 0): N agent JVMs (each a front door with"
        + " its TLS client endpoint, audit log on) + 1 standalone bridge JVM; down and deleted after");
    p.println("links: " + String.join("; ", settings.links().stream().map(l -> l.id + " = " + l.description).toList()));
    p.println("direct baseline (measured first, no cluster running): " + baseline.description());
    for (BenchOp op : settings.ops()) {
      for (int t : settings.threads()) {
        Direct d = baseline.direct(op, t);
        if (d != null) {
          p.printf(Locale.ROOT, "  direct %s, %d thread%s: %.0f op/s, p50 %.0f us, p99 %.0f us%n", op.id(), t,
              t == 1 ? "" : "s", d.opsPerSecond(), d.p50Micros(), d.p99Micros());
        }
      }
    }
    baseline.generation().values().forEach(g -> p.printf(Locale.ROOT,
        "  direct %s generation, sequential: %d keys, p50 %.1f ms, mean %.1f ms%n", g.spec(), g.n(),
        g.p50Micros() / 1000, g.meanMicros() / 1000));
    p.flush();
  }

  private void tables() {
    if (!creations.isEmpty()) {
      out.println();
      out.printf(Locale.ROOT, "key creation latency: one TLS client, sequential, %d AES warm-up creations per cluster;"
          + " a creation returns once applied on 'need' HSMs = min(durability, HSMs); 'x gen' = p50 over one token's"
          + " own sequential generation p50 (direct, above)%n", CREATION_WARMUP);
      out.printf(Locale.ROOT, "%4s %4s %-9s %5s %9s %9s %9s %9s %9s %6s  %s%n", "hsms", "need", "spec", "n", "p50 ms",
          "p99 ms", "max ms", "mean ms", "gen p50", "x gen", "generated by (share)");
      for (Creation c : creations) {
        double gen = c.direct() == null ? Double.NaN : c.direct().p50Micros();
        out.printf(Locale.ROOT, "%4d %4d %-9s %5d %9.2f %9.2f %9.2f %9.2f %9.2f %6.1f  %s%n", c.hsms(), c.required(),
            c.spec(), c.n(), c.p50Micros() / 1000, c.p99Micros() / 1000, c.maxMicros() / 1000, c.meanMicros() / 1000,
            gen / 1000, c.p50Micros() / gen, shares(c.servedBy(), List.of(), false));
      }
    }
    out.println();
    out.printf(Locale.ROOT, "crypto: 'thr' blocking TCP client threads (a connection each; host_shared: one they share), %d s warm-up + %d s measured"
        + " per row; direct = the baseline above; 'added' = p50 minus direct p50; %d cores%n",
        settings.warmupSeconds(), settings.seconds(), cores);
    out.printf(Locale.ROOT, "%4s %-26s %4s %-12s %11s %11s %6s %8s %8s %8s  %s%n", "hsms", "op", "thr", "link",
        "direct op/s", "path op/s", "ratio", "p50 us", "p99 us", "added", "served by (share of requests)");
    for (Row r : rows) {
      double d = r.direct() == null ? Double.NaN : r.direct().opsPerSecond();
      double dp50 = r.direct() == null ? Double.NaN : r.direct().p50Micros();
      out.printf(Locale.ROOT, "%4d %-26s %4d %-12s %11.0f %11.0f %6.2f %8.0f %8.0f %8.0f  %s%n", r.hsms(), r.op().id(),
          r.threads(), r.link().id, d, r.result().opsPerSecond(), r.result().opsPerSecond() / d, r.result().p50Micros(),
          r.result().p99Micros(), r.result().p50Micros() - dp50, servedBy(r, List.of(), false));
    }
    for (Row j : rows) {
      for (Row h : rows) {
        if (j.link() == Link.JCE && h.link() == Link.HOST && j.op() == h.op() && j.hsms() == h.hsms()
            && j.threads() == h.threads()) {
          out.printf(Locale.ROOT, "JCE provider over the client, %s, %d HSM%s, %d thread%s: %.2f of the client's"
              + " throughput (issue #13's goal: >= 0.90)%n", j.op().id(), j.hsms(), j.hsms() == 1 ? "" : "s",
              j.threads(), j.threads() == 1 ? "" : "s", j.result().opsPerSecond() / h.result().opsPerSecond());
        }
      }
    }
    if (!handshakeRows.isEmpty()) {
      out.println();
      out.println("TLS 1.3 handshakes per second: a JSSE server on loopback (a thread per client) with its key in memory"
          + " (JDK) or in the cluster (JCE provider, registered), clients making full handshakes (no resumption);"
          + " the client, the server and the cluster share the cores");
      out.printf(Locale.ROOT, "%4s %-26s %4s %12s %12s %6s %9s %9s%n", "hsms", "row", "thr", "jdk key/s",
          "cluster key/s", "ratio", "jdk p50", "hsm p50");
      handshakeRows.forEach(out::println);
    }
    for (Row t : rows) {
      for (Row p : rows) {
        if (t.link() == Link.BRIDGE && p.link() == Link.BRIDGE_PLAIN && t.op() == p.op() && t.hsms() == p.hsms()
            && t.threads() == p.threads()) {
          out.printf(Locale.ROOT, "TLS cost at the bridge, %s, %d HSM%s, %d thread%s: %.1f %% of plaintext throughput%n",
              t.op().id(), t.hsms(), t.hsms() == 1 ? "" : "s", t.threads(), t.threads() == 1 ? "" : "s",
              100 * (1 - t.result().opsPerSecond() / p.result().opsPerSecond()));
        }
      }
    }
  }

  private void csv(Creation c) {
    double direct = c.direct() == null ? Double.NaN : 1e6 / c.direct().meanMicros();
    double path = 1e6 / c.meanMicros();
    out.printf(Locale.ROOT, "create_%s,%d,%d,1,%d,%.1f,%.1f,%.2f,%.0f,%.0f,%.0f,%d,%s%n",
        c.spec().name().toLowerCase(Locale.ROOT), c.hsms(), c.required(), c.n(), direct, path, path / direct,
        c.p50Micros(), c.p99Micros(), c.maxMicros(), cores, shares(c.servedBy(), List.of(), true));
    out.flush();
  }

  private void csv(Row r, List<String> hsmIds) {
    double d = r.direct() == null ? Double.NaN : r.direct().opsPerSecond();
    out.printf(Locale.ROOT, "%s,%d,,%d,%d,%.0f,%.0f,%.2f,%.0f,%.0f,,%d,%s%n", r.name(), r.hsms(), r.threads(),
        r.result().count(), d, r.result().opsPerSecond(), r.result().opsPerSecond() / d, r.result().p50Micros(),
        r.result().p99Micros(), cores, servedBy(r, hsmIds, true));
    out.flush();
  }

  /** A row's {@link #shares}, or "not reported" for the JCE rows: the provider does not say which HSM served. */
  private static String servedBy(Row r, List<String> hsmIds, boolean csv) {
    return r.link() == Link.JCE ? (csv ? "" : "not reported") : shares(r.servedBy(), hsmIds, csv);
  }

  /**
   * Each HSM's share of the requests: {@code hsm1 51% hsm2 49%}, or for CSV {@code hsm1=0.51;hsm2=0.49}.
   * HSMs of {@code hsmIds} that served nothing are shown with 0.
   */
  static String shares(Map<String, Long> served, List<String> hsmIds, boolean csv) {
    Map<String, Long> all = new TreeMap<>(ClusterBench::compareIds);
    hsmIds.forEach(id -> all.put(id, 0L));
    all.putAll(served);
    long total = all.values().stream().mapToLong(Long::longValue).sum();
    List<String> parts = new ArrayList<>();
    all.forEach((id, n) -> {
      double share = total == 0 ? 0 : (double) n / total;
      parts.add(csv ? String.format(Locale.ROOT, "%s=%.2f", id, share)
          : String.format(Locale.ROOT, "%s %.0f%%", id, 100 * share));
    });
    return String.join(csv ? ";" : " ", parts);
  }

  /** hsm2 before hsm10; anything else by name. */
  private static int compareIds(String a, String b) {
    boolean ha = a.matches("hsm\\d{1,9}");
    boolean hb = b.matches("hsm\\d{1,9}");
    if (ha && hb) {
      return Long.compare(Long.parseLong(a.substring(3)), Long.parseLong(b.substring(3)));
    }
    return ha != hb ? (ha ? -1 : 1) : a.compareTo(b);
  }

  /** The most sequential creations one spec may ask for. */
  static final int MAX_CREATIONS = 10_000;

  /**
   * Parses what {@code bench --creations} takes (and the baseline child's {@code --generate}): {@code
   * SPEC:N,...} in order, or {@code none}.
   *
   * @throws IllegalArgumentException saying what is wrong: the form, a spec, one that cannot be replicated,
   *     a count outside 1..{@value #MAX_CREATIONS}, a spec named twice
   */
  public static Map<KeySpec, Integer> parseCreations(String list) {
    Map<KeySpec, Integer> out = new LinkedHashMap<>();
    if (list.equals("none")) {
      return out;
    }
    for (String item : list.split(",")) {
      String[] p = item.split(":");
      if (p.length != 2 || !p[1].strip().matches("\\d{1,5}")) {
        throw new IllegalArgumentException("must look like AES_256:200,EC_P256:100,RSA_2048:20 (or none)");
      }
      KeySpec spec = KeySpec.parse(p[0]);
      if (spec.family() == KeySpec.Family.EDWARDS) {
        throw new IllegalArgumentException(spec + " keys cannot be replicated (see docs/cluster.md)");
      }
      int n = Integer.parseInt(p[1].strip());
      if (n < 1 || n > MAX_CREATIONS) {
        throw new IllegalArgumentException("each count must be 1.." + MAX_CREATIONS);
      }
      if (out.put(spec, n) != null) {
        throw new IllegalArgumentException(spec + " is named twice");
      }
    }
    return out;
  }

  /** The line {@code BenchMain --direct-only} prints for one op at one thread count. */
  static String directLine(BenchOp op, int threads, Measurement.Result r) {
    return String.format(Locale.ROOT, "direct,%s,%d,%.1f,%.1f,%.1f", op.id(), threads, r.opsPerSecond(), r.p50Micros(),
        r.p99Micros());
  }

  /** The line {@code BenchMain --direct-only} prints for one spec's sequential generations. */
  static String generateLine(DirectGeneration g) {
    return String.format(Locale.ROOT, "generate,%s,%d,%.1f,%.1f", g.spec().name(), g.n(), g.p50Micros(), g.meanMicros());
  }
}
