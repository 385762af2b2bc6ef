package io.hsmbridge.cli.bench;

import io.hsmbridge.agent.AgentConfig;
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
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The direct PKCS#11 baseline of {@code bench}, in a process of its own: it must run with SOFTHSM2_CONF set
 * for its own token store (SoftHSM2 reads it once per process), so the {@code bench} command starts it as
 * a child JVM. It opens the token of {@code --config} (the token keys of a node.properties: no node, no
 * cluster starts here) and measures one raw PKCS#11 call per op on a per-thread session, the figure the
 * path through a cluster is compared with ({@link ClusterBench}). It prints {@code token,<description>},
 * one {@code direct,<op>,<threads>,<ops/s>,<p50 us>,<p99 us>} line per op and thread count, and one
 * {@code generate,<spec>,<n>,<p50 us>,<mean us>} line per key spec of {@code --generate}.
 *
 * <p>Arguments: {@code --config FILE [--seconds N] [--warmup N] [--threads 1,2,4,8] [--ops a,b]
 * [--generate SPEC:N,...]}.
 */
public final class BenchMain {
  private BenchMain() {}

  public static void main(String[] args) throws Exception {
    measureDirect(Options.parse(args), System.out);
    System.exit(0);
  }

  /**
   * The direct baseline, on a token opened without a node (nothing else runs in this JVM): every op of
   * {@code --ops} at every thread count, then sequential key generations of {@code --generate}, one
   * {@link ClusterBench#directLine} or {@link ClusterBench#generateLine} each.
   */
  private static void measureDirect(Options o, PrintStream out) throws Exception {
    HsmToken hsm;
    try {
      hsm = HsmToken.open(AgentConfig.load(o.config).token());
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

  /** Parsed arguments, validated. */
  private static final class Options {
    Path config;
    int seconds = 3;
    int warmup = 1;
    List<Integer> threads = List.of(1, 2, 4, 8);
    List<BenchOp> ops = List.of(BenchOp.values());
    /** Key spec to the number of sequential generations to time. */
    Map<KeySpec, Integer> generate = new java.util.LinkedHashMap<>();

    static Options parse(String[] args) {
      Options o = new Options();
      for (int i = 0; i < args.length; i++) {
        switch (args[i]) {
          case "--config": o.config = Paths.get(args[++i]); break;
          case "--seconds": o.seconds = Integer.parseInt(args[++i]); break;
          case "--warmup": o.warmup = Integer.parseInt(args[++i]); break;
          case "--threads": o.threads = ints(args[++i]); break;
          case "--ops": o.ops = BenchOp.parseList(args[++i]); break;
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
