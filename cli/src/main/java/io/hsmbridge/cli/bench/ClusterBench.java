package io.hsmbridge.cli.bench;

import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import io.hsmbridge.protocol.Op;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.PrintStream;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.HdrHistogram.Histogram;

/**
 * The cluster part of {@code bench --cluster}: for each cluster size, a throwaway cluster (started by the
 * caller's {@link Launcher}: {@code up --hsms N --port 0} in a temporary data directory), then (sign rows
 * first, on a token that holds little more than the sign key, as the baseline's does)
 * <ol>
 *   <li>key-creation latency: sequential {@code key.generate} requests from one TCP client; a creation is
 *       answered only once {@code required = min(durability, HSMs)} HSMs applied it (the bridge's rule),
 *       and every reply is checked for {@code appliedOn >= required};</li>
 *   <li>RSA-2048 PKCS#1 SHA-256 sign ops/s from N blocking TCP client threads (one {@link BridgeClient}
 *       connection each), with the share of the requests each HSM served ({@code servedBy} of each reply),
 *       beside the direct PKCS#11 baseline the caller measured in the same run.</li>
 * </ol>
 * The client runs in this JVM, on the same cores as the agents and the bridge. Every loop is bounded in
 * count and time.
 */
public final class ClusterBench {
  /** The sign row's name. */
  public static final String SIGN_ROW = "rsa2048_pkcs1_sha256_sign@cluster";
  /** The same row through the bridge's plaintext loopback listener: what TLS on the client endpoint costs. */
  public static final String PLAIN_SIGN_ROW = "rsa2048_pkcs1_sha256_sign@cluster_plain";
  /** The CSV header of {@code bench --cluster --csv}: one header for creation and sign rows. */
  public static final String CSV_HEADER =
      "row,hsms,required,threads,n,direct_ops_per_s,bridge_ops_per_s,ratio,p50_us,p99_us,max_us,cores,served_by";
  /** AES creations per cluster before the measured ones (JIT, Raft and session warm-up), not recorded. */
  static final int CREATION_WARMUP = 5;
  /** A bound on the time one spec's creations may take; fewer are measured when it is reached. */
  static final Duration CREATION_TIME_CAP = Duration.ofSeconds(90);
  private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(60);
  private static final Algorithm SIGN_ALG = Algorithm.RSA_PKCS1_SHA256;
  static final long LINK_WARMUP_REQUESTS = 2000;
  static final Duration LINK_WARMUP_CAP = Duration.ofSeconds(90);

  /** A running throwaway cluster; {@link #close} stops it and deletes its data directory. */
  public interface Cluster extends AutoCloseable {
    String host();

    /** The bridge's client endpoint (TLS). */
    int port();

    /** The TLS settings pinning the cluster CA, for {@link #port()}. */
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

    @Override
    void close() throws Exception;
  }

  /** Starts a throwaway cluster of {@code hsms} HSMs and waits until every HSM serves. */
  @FunctionalInterface
  public interface Launcher {
    Cluster start(int hsms) throws Exception;
  }

  /** The direct PKCS#11 baseline at one thread count. */
  public record Direct(int threads, double opsPerSecond, double p50Micros, double p99Micros) {}

  /** What to run. {@code creations}: key spec to measured count, in order. */
  public record Settings(List<Integer> hsms, Map<KeySpec, Integer> creations, List<Integer> threads, int warmupSeconds,
      int seconds, boolean csv) {
    public Settings {
      hsms = List.copyOf(hsms);
      creations = Collections.unmodifiableMap(new LinkedHashMap<>(creations));
      threads = List.copyOf(threads);
    }
  }

  /** One spec's creation latencies on one cluster size. */
  record Creation(int hsms, int required, KeySpec spec, long n, double p50Micros, double p99Micros,
      double maxMicros, double meanMicros, int minAppliedOn, Map<String, Long> servedBy) {}

  /** One sign row. */
  record Sign(int hsms, int threads, boolean tls, Direct direct, Measurement.Result bridge, Map<String, Long> servedBy) {}

  private final Settings settings;
  private final Map<Integer, Direct> direct;
  private final String directDescription;
  private final Launcher launcher;
  private final PrintStream out;
  private final PrintStream progress;
  private final int cores = Runtime.getRuntime().availableProcessors();
  private final List<Creation> creations = new ArrayList<>();
  private final List<Sign> signs = new ArrayList<>();
  private final SecureRandom random = new SecureRandom();

  /**
   * @param direct the baseline by thread count (measured by the caller before any cluster ran)
   * @param directDescription where the baseline ran (token and library), for the header
   * @param progress where progress lines go (stderr in CSV mode)
   */
  public ClusterBench(Settings settings, Map<Integer, Direct> direct, String directDescription, Launcher launcher,
      PrintStream out, PrintStream progress) {
    this.settings = settings;
    this.direct = Map.copyOf(direct);
    this.directDescription = directDescription;
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
        progress.printf(Locale.ROOT, "  up in %.1f s at %s:%d: %s, durability %d, a key change needs %d%n",
            cluster.startSeconds(), cluster.host(), cluster.port(), String.join(", ", cluster.hsmIds()),
            cluster.durability(), cluster.required());
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
    try (BridgeClient client = BridgeClient.connect(cluster.host(), cluster.port(), REQUEST_TIMEOUT, cluster.tls())) {
      // Sign first: on a token that holds little more than the sign key, as the direct baseline's does.
      String keyId = create(client, cluster, KeySpec.RSA_2048, "bench-sign").getString("keyId");
      byte[] message = new byte[32];
      random.nextBytes(message);
      String b64 = Base64.getEncoder().encodeToString(message);
      // Both links warmed first (the first row of a fresh cluster also pays for its JIT), then each thread
      // count measured over TLS and in plaintext back to back, the order swapped from one count to the next.
      for (boolean tls : new boolean[] {true, false}) {
        if (settings.warmupSeconds() > 0) { // --warmup 0 (the tests' tiny runs) skips it
          warmLink(cluster, tls, keyId, b64);
        }
      }
      int row = 0;
      for (int threads : settings.threads()) {
        boolean tlsFirst = row++ % 2 == 0;
        signRow(cluster, client, keyId, b64, threads, tlsFirst);
        signRow(cluster, client, keyId, b64, threads, !tlsFirst);
      }
      long t0 = System.nanoTime();
      for (int i = 0; i < CREATION_WARMUP; i++) {
        create(client, cluster, KeySpec.AES_256, "bench-warmup-" + i);
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
  }

  /**
   * Warms one client link until it carried {@link #LINK_WARMUP_REQUESTS} signatures (at most
   * {@link #LINK_WARMUP_CAP}): the TLS path runs interpreted at first (measured in-process: 16 ms a round
   * trip for the first 200 requests, ~0.2 ms after 2,000), and a time-based warm-up of a few seconds at a
   * few dozen signatures a second on a busy host ends long before the JIT has compiled it.
   */
  private void warmLink(Cluster cluster, boolean tls, String keyId, String b64) throws Exception {
    long deadline = System.nanoTime() + LINK_WARMUP_CAP.toNanos();
    long done = 0;
    while (done < LINK_WARMUP_REQUESTS && System.nanoTime() - deadline < 0) {
      done += Measurement.run(() -> new SignWorker(cluster, tls, keyId, b64), 4, 0, 5000L).count();
    }
    progress.printf(Locale.ROOT, "  warmed the %s link with %d signatures%n", tls ? "TLS" : "plaintext", done);
    progress.flush();
  }

  private void signRow(Cluster cluster, BridgeClient client, String keyId, String b64, int threads, boolean tls)
      throws Exception {
    List<SignWorker> workers = Collections.synchronizedList(new ArrayList<>());
    Measurement.Result r = Measurement.run(() -> {
      SignWorker w = new SignWorker(cluster, tls, keyId, b64);
      workers.add(w);
      return w;
    }, threads, settings.warmupSeconds() * 1000L, settings.seconds() * 1000L);
    Map<String, Long> served = zeros(cluster.hsmIds());
    for (SignWorker w : workers) {
      w.served.forEach((k, v) -> served.merge(k, v, Long::sum));
    }
    Sign s = new Sign(cluster.hsmIds().size(), threads, tls, direct.get(threads), r, served);
    signs.add(s);
    if (settings.csv()) {
      csv(s, cluster.hsmIds());
    }
    progress.printf(Locale.ROOT, "  sign at %d thread%s over %s: %.0f op/s (%s); the bridge's service-time estimate: %s%n",
        threads, threads == 1 ? "" : "s", tls ? "TLS" : "plaintext", r.opsPerSecond(),
        shares(served, cluster.hsmIds(), false), serviceEstimates(client));
    progress.flush();
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
      JsonObject reply = create(client, cluster, spec, "bench-" + tag + "-" + n);
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
        h.getValueAtPercentile(99) / 1000.0, h.getMaxValue() / 1000.0, h.getMean() / 1000.0, minApplied, served);
  }

  /**
   * The bridge's per-HSM mean service time (its routing input, from {@code cluster.status}), e.g.
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

  /** Creates a key through the bridge and checks that the reply says it reached {@code required} HSMs. */
  private static JsonObject create(BridgeClient client, Cluster cluster, KeySpec spec, String label) {
    int required = cluster.required();
    JsonObject req = new JsonObject().put("op", Op.KEY_GENERATE.wire()).put("spec", spec.name()).put("label", label)
        .put("exportable", false).put("session", cluster.session());
    if (spec.family() == KeySpec.Family.RSA || spec.family() == KeySpec.Family.EC) {
      req.put("usage", KeyUsage.SIGN_VERIFY.name());
    }
    JsonObject reply = client.request(req);
    Integer applied = reply.getInteger("appliedOn");
    if (reply.getString("keyId") == null || applied == null || applied < required) {
      throw new IllegalStateException("a " + spec + " creation was acknowledged without reaching " + required
          + " HSMs: " + reply.encode());
    }
    return reply;
  }

  /** One client thread's connection for the sign rows; counts which HSM served each measured request. */
  private static final class SignWorker implements Measurement.Worker {
    private final BridgeClient client;
    private final String keyId;
    private final String message;
    private final String session;
    private final Map<String, Long> served = new TreeMap<>();
    private String last;

    SignWorker(Cluster cluster, boolean tls, String keyId, String message) {
      this.client = tls ? BridgeClient.connect(cluster.host(), cluster.port(), REQUEST_TIMEOUT, cluster.tls())
          : BridgeClient.connect("127.0.0.1", cluster.plaintextPort(), REQUEST_TIMEOUT);
      this.keyId = keyId;
      this.message = message;
      this.session = cluster.session();
    }

    @Override
    public void runOnce() {
      JsonObject reply = client.request(new JsonObject().put("op", Op.SIGN.wire()).put("keyId", keyId)
          .put("alg", SIGN_ALG.wireName()).put("message", message).put("session", session));
      if (reply.getString("signature") == null) {
        throw new IllegalStateException("sign reply without a signature: " + reply.encode());
      }
      last = reply.getString("servedBy");
    }

    @Override
    public void measured() {
      served.merge(String.valueOf(last), 1L, Long::sum);
    }

    @Override
    public void close() {
      client.close();
    }
  }

  private void header() {
    if (settings.csv()) {
      out.println(CSV_HEADER);
      out.flush();
    }
    PrintStream p = settings.csv() ? progress : out;
    p.printf(Locale.ROOT, "hsmbridge bench --cluster: %d cores (Runtime.availableProcessors), Java %s; the agents,"
        + " the bridge and this client all run on them%n", cores, System.getProperty("java.version"));
    p.println("each cluster size: a throwaway data dir (up --hsms N --port 0), N agent JVMs + 1 bridge JVM,"
        + " down and deleted after");
    p.println("direct baseline (measured first, no cluster running): " + directDescription);
    for (int t : settings.threads()) {
      Direct d = direct.get(t);
      if (d != null) {
        p.printf(Locale.ROOT, "  direct RSA-2048 sign, %d thread%s: %.0f op/s, p50 %.0f us, p99 %.0f us%n", t,
            t == 1 ? "" : "s", d.opsPerSecond(), d.p50Micros(), d.p99Micros());
      }
    }
    p.flush();
  }

  private void tables() {
    out.println();
    out.printf(Locale.ROOT, "key creation latency: one TCP client, sequential, %d AES warm-up creations per cluster;"
        + " a creation returns once applied on 'need' HSMs = min(durability, HSMs)%n", CREATION_WARMUP);
    out.printf(Locale.ROOT, "%4s %4s %-9s %5s %9s %9s %9s %9s  %s%n", "hsms", "need", "spec", "n", "p50 ms", "p99 ms",
        "max ms", "mean ms", "generated by (share)");
    for (Creation c : creations) {
      out.printf(Locale.ROOT, "%4d %4d %-9s %5d %9.2f %9.2f %9.2f %9.2f  %s%n", c.hsms(), c.required(), c.spec(), c.n(),
          c.p50Micros() / 1000, c.p99Micros() / 1000, c.maxMicros() / 1000, c.meanMicros() / 1000,
          shares(c.servedBy(), List.of(), false));
    }
    out.println();
    out.printf(Locale.ROOT, "RSA-2048 PKCS#1 SHA-256 sign, 32-byte message: 'thr' blocking TCP client threads (a"
        + " BridgeClient connection each), %d s warm-up + %d s measured per row; direct = the baseline above;"
        + " %d cores%n", settings.warmupSeconds(), settings.seconds(), cores);
    out.println("client endpoint: 'tls' = TLS 1.3 pinning the cluster CA (the default), 'plain' = the bridge's"
        + " plaintext loopback listener; both warmed first, then measured back to back per thread count (order"
        + " swapped from one count to the next); every other hop (event bus) runs mutual TLS in both");
    out.printf(Locale.ROOT, "%4s %4s %5s %12s %12s %6s %9s %9s  %s%n", "hsms", "thr", "link", "direct op/s",
        "bridge op/s", "ratio", "p50 us", "p99 us", "served by (share of requests)");
    for (Sign s : signs) {
      double d = s.direct() == null ? Double.NaN : s.direct().opsPerSecond();
      out.printf(Locale.ROOT, "%4d %4d %5s %12.0f %12.0f %6.2f %9.0f %9.0f  %s%n", s.hsms(), s.threads(),
          s.tls() ? "tls" : "plain", d, s.bridge().opsPerSecond(), s.bridge().opsPerSecond() / d, s.bridge().p50Micros(),
          s.bridge().p99Micros(), shares(s.servedBy(), List.of(), false));
    }
    for (Sign t : signs) {
      for (Sign p : signs) {
        if (t.tls() && !p.tls() && t.hsms() == p.hsms() && t.threads() == p.threads()) {
          out.printf(Locale.ROOT, "TLS cost, %d HSM%s, %d thread%s: %.1f %% of plaintext throughput%n", t.hsms(),
              t.hsms() == 1 ? "" : "s", t.threads(), t.threads() == 1 ? "" : "s",
              100 * (1 - t.bridge().opsPerSecond() / p.bridge().opsPerSecond()));
        }
      }
    }
  }

  private void csv(Creation c) {
    out.printf(Locale.ROOT, "create_%s,%d,%d,1,%d,,,,%.0f,%.0f,%.0f,%d,%s%n", c.spec().name().toLowerCase(Locale.ROOT),
        c.hsms(), c.required(), c.n(), c.p50Micros(), c.p99Micros(), c.maxMicros(), cores,
        shares(c.servedBy(), List.of(), true));
    out.flush();
  }

  private void csv(Sign s, List<String> hsmIds) {
    double d = s.direct() == null ? Double.NaN : s.direct().opsPerSecond();
    out.printf(Locale.ROOT, "%s,%d,,%d,%d,%.0f,%.0f,%.2f,%.0f,%.0f,,%d,%s%n", s.tls() ? SIGN_ROW : PLAIN_SIGN_ROW,
        s.hsms(), s.threads(),
        s.bridge().count(), d, s.bridge().opsPerSecond(), s.bridge().opsPerSecond() / d, s.bridge().p50Micros(),
        s.bridge().p99Micros(), cores, shares(s.servedBy(), hsmIds, true));
    out.flush();
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

  /** The line {@code BenchMain --direct-only} prints for one thread count. */
  static String directLine(int threads, Measurement.Result r) {
    return String.format(Locale.ROOT, "direct,%d,%.1f,%.1f,%.1f", threads, r.opsPerSecond(), r.p50Micros(), r.p99Micros());
  }

  /** Parses the {@code direct,...} lines of {@code BenchMain --direct-only}; other lines are ignored. */
  public static Map<Integer, Direct> parseDirect(List<String> lines) {
    Map<Integer, Direct> byThreads = new TreeMap<>();
    for (String line : lines) {
      String[] f = line.strip().split(",");
      if (f.length == 5 && f[0].equals("direct")) {
        int t = Integer.parseInt(f[1]);
        byThreads.put(t, new Direct(t, Double.parseDouble(f[2]), Double.parseDouble(f[3]), Double.parseDouble(f[4])));
      }
    }
    return byThreads;
  }

  /** The {@code token,...} line of {@code BenchMain --direct-only}: where the baseline ran. */
  public static String parseDirectDescription(List<String> lines) {
    for (String line : lines) {
      if (line.startsWith("token,")) {
        return line.substring("token,".length()).strip();
      }
    }
    return "(no description)";
  }
}
