package io.hsmbridge.cli.bench;

import io.hsmbridge.bridge.NodeConfig;
import io.hsmbridge.bridge.NodeMain;
import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.Hsm;
import io.hsmbridge.pkcs11.DirectPkcs11;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.io.PrintStream;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The benchmark process. It must run with SOFTHSM2_CONF set for its own token store, so the
 * {@code bench} command starts it as a child JVM. In ONE run it measures each operation on the same
 * token twice: directly through PKCS#11 (one raw call per op, a session per thread) and through the
 * full path a client sees (client -> TCP event-bus bridge -> bridge verticle -> event bus -> agent
 * worker -> PKCS#11), and prints both with their ratio.
 *
 * <p>Arguments: {@code --config FILE [--csv] [--seconds N] [--warmup N] [--threads 1,2,4,8] [--ops a,b]
 * [--direct-only [--generate SPEC:N,...]]}. With {@code --direct-only} no node starts: the token is opened
 * directly and only the direct baseline is measured (for the cluster benchmark, which is the default
 * {@code bench}), printed as {@code token,<description>}, one {@code direct,<op>,<threads>,<ops/s>,<p50 us>,<p99 us>}
 * line per op and thread count, and one {@code generate,<spec>,<n>,<p50 us>,<mean us>} line per key spec.
 */
public final class BenchMain {
  private BenchMain() {}

  public static void main(String[] args) throws Exception {
    Options o = Options.parse(args);
    PrintStream out = System.out;
    if (o.directOnly) {
      directOnly(o, out);
      System.exit(0);
      return;
    }
    NodeMain.Node node;
    try {
      node = NodeMain.Node.start(NodeConfig.load(o.config));
    } catch (HsmException e) {
      System.err.println("hsmbridge: " + e.clientMessage());
      System.exit(1);
      return;
    }
    try {
      HsmToken hsm = node.hsm();
      Map<BenchOp, String> keys = new EnumMap<>(BenchOp.class);
      for (BenchOp op : o.ops) {
        keys.put(op, hsm.keys().generate(op.spec, op.usage, "bench-" + op.id, false).keyId());
      }
      int cores = Runtime.getRuntime().availableProcessors();
      if (o.csv) {
        out.println("op,threads,direct_ops_per_s,bridge_ops_per_s,ratio,p50_us,p99_us");
      } else {
        out.printf(Locale.ROOT, "hsmbridge bench: token '%s' (%s %s), %d cores, Java %s; %d s measured after %d s warm-up per cell%n",
            hsm.label(), hsm.library().description(), hsm.library().versionMajor() + "." + hsm.library().versionMinor(),
            cores, System.getProperty("java.version"), o.seconds, o.warmup);
        out.println("direct = one raw PKCS#11 call per op on a per-thread session (the baseline, measured in this run)");
        out.println("<op>     = in-cluster Vert.x client on an event loop, <thr> requests in flight: event bus -> bridge (validate) -> event bus -> agent worker -> PKCS#11");
        out.println("<op>@tcp = <thr> blocking client threads over the TCP event-bus bridge on loopback -> bridge -> event bus -> agent worker -> PKCS#11");
        out.printf(Locale.ROOT, "%-30s %4s %13s %13s %6s %12s %12s %12s %12s%n", "op", "thr", "direct op/s", "bridge op/s",
            "ratio", "bridge p50us", "bridge p99us", "direct p50us", "direct p99us");
      }
      SecureRandom random = new SecureRandom();
      for (BenchOp op : o.ops) {
        byte[] input = new byte[op.inputBytes];
        random.nextBytes(input);
        String keyId = keys.get(op);
        for (int threads : o.threads) {
          Measurement.Result direct = Measurement.run(() -> direct(hsm, keyId, op.alg, input), threads,
              o.warmup * 1000L, o.seconds * 1000L);
          Measurement.Result bus = AsyncBusMeasurement.run(node.vertx(), () -> op.request(keyId, input), threads,
              o.warmup * 1000L, o.seconds * 1000L);
          Measurement.Result tcp = Measurement.run(() -> bridge(node.port(), keyId, op.alg, input), threads,
              o.warmup * 1000L, o.seconds * 1000L);
          row(out, o.csv, op.id, threads, direct, bus);
          row(out, o.csv, op.id + "@tcp", threads, direct, tcp);
          out.flush();
        }
      }
      for (String keyId : keys.values()) {
        hsm.keys().delete(keyId);
      }
    } finally {
      node.stop();
    }
    System.exit(0);
  }

  /**
   * The direct baseline alone, on a token opened without a node (nothing else runs in this JVM): every op
   * of {@code --ops} at every thread count, then sequential key generations of {@code --generate}, one
   * {@link ClusterBench#directLine} or {@link ClusterBench#generateLine} each.
   */
  private static void directOnly(Options o, PrintStream out) throws Exception {
    HsmToken hsm;
    try {
      hsm = HsmToken.open(NodeConfig.load(o.config).agent().token());
    } catch (HsmException e) {
      System.err.println("hsmbridge: " + e.clientMessage());
      System.exit(1);
      return;
    }
    try {
      out.printf(Locale.ROOT, "token,one raw PKCS#11 call per op on a per-thread session, token '%s' of its own"
          + " (%s %d.%d) in a child JVM%n", hsm.label(), hsm.library().description(),
          hsm.library().versionMajor(), hsm.library().versionMinor());
      for (BenchOp op : o.ops) {
        String keyId = hsm.keys().generate(op.spec, op.usage, "bench-direct-" + op.id, false).keyId();
        byte[] input = new byte[op.inputBytes];
        new SecureRandom().nextBytes(input);
        for (int threads : o.threads) {
          Measurement.Result r = Measurement.run(() -> direct(hsm, keyId, op.alg, input), threads, o.warmup * 1000L,
              o.seconds * 1000L);
          out.println(ClusterBench.directLine(op, threads, r));
          out.flush();
        }
        hsm.keys().delete(keyId);
      }
      for (Map.Entry<KeySpec, Integer> g : o.generate.entrySet()) {
        out.println(ClusterBench.generateLine(generations(hsm, g.getKey(), g.getValue())));
        out.flush();
      }
    } finally {
      hsm.close();
    }
  }

  /** One token's sequential key generations (what a replicated creation is compared with), keys deleted after. */
  private static ClusterBench.DirectGeneration generations(HsmToken hsm, KeySpec spec, int count) {
    org.HdrHistogram.Histogram h = new org.HdrHistogram.Histogram(3_600_000_000_000L, 3);
    KeyUsage usage = KeyUsage.defaultFor(spec); // what a creation through the cluster gets
    long deadline = System.nanoTime() + ClusterBench.CREATION_TIME_CAP.toNanos();
    List<String> made = new ArrayList<>();
    for (int i = 0; i < count && System.nanoTime() - deadline < 0; i++) {
      long t0 = System.nanoTime();
      made.add(hsm.keys().generate(spec, usage, "bench-generate-" + i, false).keyId());
      h.recordValue(System.nanoTime() - t0);
    }
    made.forEach(hsm.keys()::delete);
    return new ClusterBench.DirectGeneration(spec, h.getTotalCount(), h.getValueAtPercentile(50) / 1000.0,
        h.getMean() / 1000.0);
  }

  private static void row(PrintStream out, boolean csv, String op, int threads, Measurement.Result direct,
      Measurement.Result bridge) {
    double ratio = bridge.opsPerSecond() / direct.opsPerSecond();
    if (csv) {
      out.printf(Locale.ROOT, "%s,%d,%.0f,%.0f,%.2f,%.0f,%.0f%n", op, threads, direct.opsPerSecond(),
          bridge.opsPerSecond(), ratio, bridge.p50Micros(), bridge.p99Micros());
    } else {
      out.printf(Locale.ROOT, "%-30s %4d %13.0f %13.0f %6.2f %12.0f %12.0f %12.0f %12.0f%n", op, threads,
          direct.opsPerSecond(), bridge.opsPerSecond(), ratio, bridge.p50Micros(), bridge.p99Micros(),
          direct.p50Micros(), direct.p99Micros());
    }
  }

  private static Measurement.Worker direct(HsmToken hsm, String keyId, Algorithm alg, byte[] input) {
    DirectPkcs11 d = DirectPkcs11.open(hsm, keyId, alg, input);
    return new Measurement.Worker() {
      @Override
      public void runOnce() {
        d.runOnce();
      }

      @Override
      public void close() {
        d.close();
      }
    };
  }

  /** A client as an application outside the JVM would use it: its own TCP connection, one request at a time. */
  private static Measurement.Worker bridge(int port, String keyId, Algorithm alg, byte[] input) {
    Hsm hsm = Hsm.owning(BridgeClient.connect("127.0.0.1", port));
    String wire = alg.wireName();
    return new Measurement.Worker() {
      @Override
      public void runOnce() {
        switch (alg.kind()) {
          case SIGNATURE:
            hsm.sign(keyId, wire, input);
            break;
          case MAC:
            hsm.mac(keyId, wire, input);
            break;
          default:
            hsm.encrypt(keyId, wire, input, null);
        }
      }

      @Override
      public void close() {
        hsm.close();
      }
    };
  }

  /** Parsed arguments, validated. */
  private static final class Options {
    Path config;
    boolean csv;
    int seconds = 3;
    int warmup = 2;
    List<Integer> threads = List.of(1, 2, 4, 8);
    List<BenchOp> ops = List.of(BenchOp.values());
    boolean directOnly;
    /** With --direct-only: key spec to the number of sequential generations to time. */
    Map<KeySpec, Integer> generate = new java.util.LinkedHashMap<>();

    static Options parse(String[] args) {
      Options o = new Options();
      for (int i = 0; i < args.length; i++) {
        switch (args[i]) {
          case "--config": o.config = Paths.get(args[++i]); break;
          case "--csv": o.csv = true; break;
          case "--seconds": o.seconds = Integer.parseInt(args[++i]); break;
          case "--warmup": o.warmup = Integer.parseInt(args[++i]); break;
          case "--threads": o.threads = ints(args[++i]); break;
          case "--ops": o.ops = BenchOp.parseList(args[++i]); break;
          case "--direct-only": o.directOnly = true; break;
          case "--generate": o.generate = ClusterBench.parseCreations(args[++i]); break;
          default: throw new IllegalArgumentException("unknown bench argument " + args[i]);
        }
      }
      if (o.config == null) {
        throw new IllegalArgumentException("--config is required");
      }
      return o;
    }

    private static List<Integer> ints(String csv) {
      List<Integer> out = new ArrayList<>();
      for (String s : csv.split(",")) {
        out.add(Integer.parseInt(s.trim()));
      }
      return out;
    }
  }
}
