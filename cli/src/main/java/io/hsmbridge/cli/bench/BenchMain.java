package io.hsmbridge.cli.bench;

import io.hsmbridge.bridge.NodeConfig;
import io.hsmbridge.bridge.NodeMain;
import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.Hsm;
import io.hsmbridge.pkcs11.DirectPkcs11;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.protocol.Algorithm;
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
 * [--direct-only]}. With {@code --direct-only} no node starts: the token is opened directly and only the
 * direct baseline of the first op is measured, printed as {@code token,<description>} and one
 * {@code direct,<threads>,<ops/s>,<p50 us>,<p99 us>} line per thread count (for {@code bench --cluster}).
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
          Measurement.Result bus = AsyncBusMeasurement.run(node.vertx(), busRequest(keyId, op.alg, input), threads,
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

  /** The direct baseline alone, on a token opened without a node (nothing else runs in this JVM). */
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
      BenchOp op = o.ops.get(0);
      String keyId = hsm.keys().generate(op.spec, op.usage, "bench-direct-" + op.id, false).keyId();
      byte[] input = new byte[op.inputBytes];
      new SecureRandom().nextBytes(input);
      out.printf(Locale.ROOT, "token,%s: one raw PKCS#11 call per op on a per-thread session, token '%s' of its own"
          + " (%s %d.%d) in a child JVM%n", op.id, hsm.label(), hsm.library().description(),
          hsm.library().versionMajor(), hsm.library().versionMinor());
      for (int threads : o.threads) {
        Measurement.Result r = Measurement.run(() -> direct(hsm, keyId, op.alg, input), threads, o.warmup * 1000L,
            o.seconds * 1000L);
        out.println(ClusterBench.directLine(threads, r));
        out.flush();
      }
      hsm.keys().delete(keyId);
    } finally {
      hsm.close();
    }
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

  /** The request an in-cluster client sends for {@code alg} (a fresh body each time: the bus copies it). */
  private static java.util.function.Supplier<io.vertx.core.json.JsonObject> busRequest(String keyId, Algorithm alg,
      byte[] input) {
    String b64 = java.util.Base64.getEncoder().encodeToString(input);
    return () -> {
      io.vertx.core.json.JsonObject body = new io.vertx.core.json.JsonObject().put("keyId", keyId).put("alg", alg.wireName());
      switch (alg.kind()) {
        case SIGNATURE: return body.put("op", "sign").put("message", b64);
        case MAC: return body.put("op", "mac").put("message", b64);
        default: return body.put("op", "encrypt").put("plaintext", b64);
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

    static Options parse(String[] args) {
      Options o = new Options();
      for (int i = 0; i < args.length; i++) {
        switch (args[i]) {
          case "--config": o.config = Paths.get(args[++i]); break;
          case "--csv": o.csv = true; break;
          case "--seconds": o.seconds = Integer.parseInt(args[++i]); break;
          case "--warmup": o.warmup = Integer.parseInt(args[++i]); break;
          case "--threads": o.threads = ints(args[++i]); break;
          case "--ops": o.ops = ops(args[++i]); break;
          case "--direct-only": o.directOnly = true; break;
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

    private static List<BenchOp> ops(String csv) {
      List<BenchOp> out = new ArrayList<>();
      for (String s : csv.split(",")) {
        BenchOp match = null;
        for (BenchOp op : BenchOp.values()) {
          if (op.id.equals(s.trim()) || op.name().equalsIgnoreCase(s.trim())) {
            match = op;
          }
        }
        if (match == null) {
          throw new IllegalArgumentException("unknown op " + s);
        }
        out.add(match);
      }
      return out;
    }
  }
}
