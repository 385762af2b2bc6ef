package io.hsmbridge.cli;

import io.hsmbridge.cli.bench.BenchMain;
import io.hsmbridge.cli.bench.BenchOp;
import io.hsmbridge.cli.bench.ClusterBench;
import io.hsmbridge.cli.bench.LinkFloor;
import io.hsmbridge.protocol.KeySpec;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code bench}: measures the path a deployment uses ({@link ClusterBench}). First the direct PKCS#11
 * baseline of every op (and one token's own key generation) in a child JVM on a throwaway token of its
 * own, then for each size N a throwaway cluster in its own temporary data directory (as {@code up --hsms N
 * --port 0}: N agent processes, each a front door, and a bridge), activated with passwords that live only
 * in this JVM ({@link ThrowawayUsers}), measured from this JVM (a client process of its own) over TLS as a
 * crypto user, stopped as {@code down} does and deleted. The user's cluster is never touched. The default
 * run is one HSM; {@code --cluster} runs 1, 2 and 3.
 *
 * <p>The direct baseline runs in a child JVM ({@link BenchMain}): SoftHSM2 reads SOFTHSM2_CONF once per
 * process, so the token store is chosen before the library loads. There is no in-process variant: a
 * one-HSM cluster is measured as it is deployed (the old {@code --in-process} rows, agent and a users-less
 * front door in the client's JVM, went with {@code node.role=all}).
 */
@Command(name = "bench",
    description = {"Measure RSA-2048 sign, ECDSA P-256 sign, AES-256-GCM 4 KiB encrypt and HMAC-SHA256 1 KiB"
        + " through the path a deployment uses (a client process -> TLS -> the front door on an HSM host ->"
        + " its token) on a throwaway 1-HSM cluster, beside direct PKCS#11 measured in the same run; and"
        + " replicated key creation beside one token's own key generation.",
        "--cluster: the same on throwaway clusters of 1, 2 and 3 HSMs."})
final class BenchCommand extends CliCommand {
  static final String DEFAULT_CLUSTER_HSMS = "1,2,3";
  static final String DEFAULT_HSMS = "1";
  static final String DEFAULT_CREATIONS = "AES_256:200,EC_P256:100,RSA_2048:20";
  static final String DEFAULT_SINGLE_CREATIONS = "AES_256:50";
  /** Bound on the direct-baseline child beyond its own measuring time (start-up, key generation). */
  private static final long CHILD_SLACK_SECONDS = 300;

  @Option(names = "--csv", description = "Print " + ClusterBench.CSV_HEADER + " rows (progress then goes to stderr).")
  boolean csv;

  @Option(names = "--seconds", paramLabel = "N", description = "Measured seconds per cell (default 3).")
  Integer seconds;

  @Option(names = "--warmup", paramLabel = "N", description = "Warm-up seconds per cell (default 1).")
  Integer warmup;

  @Option(names = "--threads", defaultValue = "1,2,4,8", description = "Client thread counts (default ${DEFAULT-VALUE}).")
  String threads;

  @Option(names = "--ops", paramLabel = "LIST",
      description = "Subset of ops: rsa2048_pkcs1_sha256_sign, ecdsa_p256_sha256_sign, aes256_gcm_encrypt_4k, hmac_sha256_1k.")
  String ops;

  @Option(names = "--cluster", description = "Clusters of 1, 2 and 3 HSMs (about 15 minutes with every op).")
  boolean cluster;

  @Option(names = "--hsms", paramLabel = "LIST",
      description = "Cluster sizes to measure (default " + DEFAULT_HSMS + "; with --cluster " + DEFAULT_CLUSTER_HSMS + ").")
  String hsms;

  @Option(names = "--via", paramLabel = "LIST", defaultValue = "host",
      description = "How the client reaches the cluster: host (the front door in hsm1's agent process, TLS: what a"
          + " deployment does; a connection per client thread), host_shared (the same, one connection all threads share,"
          + " pipelined), bridge (the standalone bridge, TLS), bridge_plain (its plaintext loopback"
          + " listener), jce (the JCE provider over the host link, plus TLS handshake rows). Default ${DEFAULT-VALUE}.")
  String via;

  @Option(names = "--creations", paramLabel = "SPEC:N,...",
      description = "Sequential key creations measured per cluster size (default " + DEFAULT_SINGLE_CREATIONS
          + "; with --cluster " + DEFAULT_CREATIONS + "; 'none' for none).")
  String creations;

  @Option(names = "--backup-keys", paramLabel = "N,...",
      description = "Instead: backup time, restore time and file size for N AES-256 keys each (e.g. 1000,5000), beside"
          + " the token's own wrap and unwrap of one key times N, on throwaway tokens (docs/backups.md).")
  String backupKeys;

  /** Set on the JVM that the cluster bench re-starts from a private copy of the jar (see {@link #relaunch}). */
  @Option(names = "--from-copy", hidden = true)
  boolean fromCopy;

  @Override
  protected int execute() throws Exception {
    if (backupKeys != null) {
      return backupBench();
    }
    int s = seconds != null ? seconds : 3;
    int w = warmup != null ? warmup : 1;
    if (s < 1 || s > 60 || w < 0 || w > 60) {
      throw usage("--seconds must be 1..60 and --warmup 0..60");
    }
    List<Integer> threadCounts = threadCounts();
    Path library = NodeLayout.findLibrary(cli().env());
    List<BenchOp> opList;
    List<ClusterBench.Link> links;
    try {
      opList = ops == null ? List.of(BenchOp.values()) : BenchOp.parseList(ops);
      links = ClusterBench.Link.parseList(via);
    } catch (IllegalArgumentException e) {
      throw usage("--ops/--via: " + e.getMessage());
    }
    ClusterBench.Settings settings = new ClusterBench.Settings(clusterSizes(), opList, links, creationCounts(),
        threadCounts, w, s, csv);
    return fromCopy ? runCluster(library, settings) : relaunch(settings);
  }

  /**
   * Runs the cluster bench in a child JVM started from a private copy of the jar. The run takes
   * minutes, and the ./hsmbridge script rebuilds cli/target/hsmbridge.jar whenever a source changed: a JVM
   * whose jar is replaced fails on the next class it loads (seen here: NoClassDefFoundError when the third
   * cluster started). The child's output is copied to this command's streams; Ctrl-C reaches the child
   * (same process group), whose shutdown hook stops the clusters it started.
   */
  private int relaunch(ClusterBench.Settings settings) throws IOException, InterruptedException {
    Path dir = Files.createTempDirectory("hsmbridge-bench-run-");
    Process child = null;
    Thread hook = null;
    try {
      List<String> cmd = new ArrayList<>(List.of(
          Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx1g",
          "-Djava.io.tmpdir=" + System.getProperty("java.io.tmpdir"),
          "-cp", LocalNode.classPathCopiedTo(dir.resolve("bench.jar")), Main.class.getName()));
      if (root().debug) {
        cmd.add("--debug");
      }
      cmd.addAll(List.of("bench", "--from-copy", "--threads", threads,
          "--seconds", Integer.toString(settings.seconds()), "--warmup", Integer.toString(settings.warmupSeconds()),
          "--hsms", sizesArgument(), "--via", via, "--creations", creationsArgument()));
      if (ops != null) {
        cmd.add("--ops");
        cmd.add(ops);
      }
      if (csv) {
        cmd.add("--csv");
      }
      ProcessBuilder pb = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
      pb.environment().putAll(cli().env());
      child = pb.start();
      Process running = child;
      hook = new Thread(() -> stopChild(running), "hsmbridge-bench-stop");
      Runtime.getRuntime().addShutdownHook(hook);
      Thread err = copy(child.getErrorStream(), cli().err(), "hsmbridge-bench-stderr");
      child.getInputStream().transferTo(out());
      out().flush();
      int code = child.waitFor();
      err.join(10_000);
      return code;
    } finally {
      if (hook != null) {
        ThrowawayCluster.removeHook(hook);
      }
      if (child != null && child.isAlive()) {
        stopChild(child);
      }
      DemoCommand.deleteTree(dir);
    }
  }

  /** SIGTERM (the child's shutdown hook stops its clusters, up to 20 s per node group), then SIGKILL. */
  private static void stopChild(Process child) {
    child.destroy();
    try {
      if (!child.waitFor(90, TimeUnit.SECONDS)) {
        child.destroyForcibly();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static Thread copy(InputStream from, PrintStream to, String name) {
    Thread t = new Thread(() -> {
      try {
        from.transferTo(to);
      } catch (IOException e) {
        // the child is gone
      }
      to.flush();
    }, name);
    t.setDaemon(true);
    t.start();
    return t;
  }

  /** The direct baseline in a child JVM (a token of its own), then each cluster size in turn. */
  private int runCluster(Path library, ClusterBench.Settings settings) throws Exception {
    PrintStream out = out();
    PrintStream progress = csv ? cli().err() : out;
    List<String> opIds = settings.ops().stream().map(BenchOp::id).toList();
    progress.printf("measuring the direct PKCS#11 baseline (%s at %s threads%s) on a throwaway token in a child"
        + " JVM ...%n", String.join(", ", opIds), threads,
        settings.creations().isEmpty() ? "" : "; key generation " + creationsArgument());
    progress.flush();
    List<String> lines = new ArrayList<>();
    List<String> args = new ArrayList<>(List.of("--ops", String.join(",", opIds),
        "--seconds", Integer.toString(settings.seconds()), "--warmup", Integer.toString(settings.warmupSeconds()),
        "--threads", threads));
    if (!settings.creations().isEmpty()) {
      args.add("--generate");
      args.add(creationsArgument());
    }
    int code = runChild(library, args, lines);
    ClusterBench.Baseline baseline = ClusterBench.Baseline.parse(lines);
    if (code != 0 || !baseline.covers(settings)) {
      throw new CliException("the direct baseline did not complete (exit code " + code + "): "
          + String.join("; ", lines));
    }
    printFloor(progress);
    new ClusterBench(settings, baseline, n -> startCluster(n, library, progress), out, progress).run();
    return ExitCodes.OK;
  }

  /**
   * Runs {@link BenchMain} (the direct baseline) in a child JVM on a token in a fresh temporary directory,
   * deleted after.
   *
   * @param captured where the child's output lines are collected
   * @return the child's exit code
   */
  private int runChild(Path library, List<String> args, List<String> captured) throws IOException, InterruptedException {
    return runChild(library, BenchMain.class.getName(), args, captured);
  }

  /**
   * {@code --backup-keys}: {@link io.hsmbridge.cli.bench.BackupBench} in a child JVM on throwaway tokens; prints
   * each size's backup and restore beside the token's own wrap and unwrap cost, and the goals.
   */
  private int backupBench() throws IOException, InterruptedException {
    List<Integer> counts = new ArrayList<>();
    try {
      for (String n : backupKeys.split(",")) {
        int k = Integer.parseInt(n.trim());
        if (k < 1 || k > 100_000) {
          throw new NumberFormatException();
        }
        counts.add(k);
      }
    } catch (NumberFormatException e) {
      throw usage("--backup-keys must be key counts 1..100000, e.g. 1000,5000");
    }
    List<String> lines = new ArrayList<>();
    int code = runChild(NodeLayout.findLibrary(cli().env()), io.hsmbridge.cli.bench.BackupBench.class.getName(),
        List.of("--keys", counts.stream().map(String::valueOf).collect(java.util.stream.Collectors.joining(","))), lines);
    if (code != 0) {
      throw new CliException("the backup bench did not complete (exit code " + code + "): " + String.join("; ", lines));
    }
    PrintStream out = out();
    out.println("backups of N AES-256 keys on SoftHSM2 (one token backs up, another of the cluster restores); token"
        + " cost = (one key's wrap + one key's unwrap) x N, measured in the same run");
    out.printf(java.util.Locale.ROOT, "%8s %11s %11s %13s %13s %10s %11s %9s%n", "keys", "backup ms", "restore ms",
        "wrap x N ms", "unwrap x N ms", "cost ms", "backup/cost", "restore/cost");
    for (String line : lines) {
      String[] f = line.split(",");
      if (f.length != 7 || !f[0].equals("backup")) {
        continue;
      }
      int n = Integer.parseInt(f[1]);
      double backupMs = Double.parseDouble(f[2]);
      double restoreMs = Double.parseDouble(f[4]);
      double wrapMs = Double.parseDouble(f[5]) * n / 1000.0;
      double unwrapMs = Double.parseDouble(f[6]) * n / 1000.0;
      double cost = wrapMs + unwrapMs;
      out.printf(java.util.Locale.ROOT, "%8d %11.0f %11.0f %13.0f %13.0f %10.0f %11.2f %12.2f   file %d KiB%n", n, backupMs,
          restoreMs, wrapMs, unwrapMs, cost, backupMs / cost, restoreMs / cost, Long.parseLong(f[3]) / 1024);
    }
    out.println("goals (issue #12): backup/cost <= 1.5, restore/cost <= 2.0");
    return ExitCodes.OK;
  }

  private int runChild(Path library, String mainClass, List<String> args, List<String> captured)
      throws IOException, InterruptedException {
    Path dir = Files.createTempDirectory("hsmbridge-bench-");
    Process child = null;
    try {
      NodeDir node = NodeLayout.prepareDirectToken(new Home(dir), library);
      List<String> cmd = new ArrayList<>(List.of(
          Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx1g",
          "-cp", LocalNode.classPathCopiedTo(dir.resolve("bench.jar")), mainClass,
          "--config", node.nodeProperties().toString()));
      cmd.addAll(args);
      ProcessBuilder pb = new ProcessBuilder(cmd)
          .redirectOutput(ProcessBuilder.Redirect.PIPE)
          .redirectError(ProcessBuilder.Redirect.INHERIT)
          .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
      pb.environment().put("SOFTHSM2_CONF", node.softhsmConf().toString());
      child = pb.start();
      // The child is bounded in time (cells x (warm-up + seconds)); its output ends when it exits.
      try (BufferedReader r = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
        for (String line = r.readLine(); line != null; line = r.readLine()) {
          captured.add(line);
        }
      }
      if (!child.waitFor(CHILD_SLACK_SECONDS, TimeUnit.SECONDS)) {
        return -1;
      }
      return child.exitValue();
    } finally {
      if (child != null && child.isAlive()) {
        child.destroyForcibly();
      }
      DemoCommand.deleteTree(dir);
    }
  }

  /** A {@link ThrowawayCluster} as the cluster bench sees it, with the bridge's plaintext listener open. */
  /**
   * The least any process boundary adds here, measured in the same run ({@link LinkFloor}): a bare round
   * trip between two JVMs on loopback, plain and TLS 1.3, to read the "added" column against.
   */
  private static void printFloor(PrintStream progress) throws IOException, InterruptedException {
    progress.println("the floor of a process boundary on this machine (two JVMs, loopback, 1 KiB request, one at a time):");
    for (boolean tls : new boolean[] {false, true}) {
      progress.println("  " + LinkFloor.measure(tls, 2_000, 20_000));
    }
    progress.flush();
  }

  private static ClusterBench.Cluster startCluster(int n, Path library, PrintStream progress) throws IOException {
    ThrowawayCluster c = ThrowawayCluster.start(n, library, progress, true);
    try {
      Endpoint bridge = c.bridge();
      int frontDoorPort = c.frontDoor(c.hsmIds().get(0)).port();
      int plaintextPort = c.plaintextPort();
      String session = c.logins().cryptoUser().token();
      io.hsmbridge.client.ClientTls tls = bridge.clientTls();
      return new ClusterBench.Cluster() {
        @Override
        public String host() {
          return bridge.host();
        }

        @Override
        public int port() {
          return bridge.port();
        }

        @Override
        public int frontDoorPort() {
          return frontDoorPort;
        }

        @Override
        public io.hsmbridge.client.ClientTls tls() {
          return tls;
        }

        @Override
        public int plaintextPort() {
          return plaintextPort;
        }

        @Override
        public List<String> hsmIds() {
          return c.hsmIds();
        }

        @Override
        public int durability() {
          return c.status().durability();
        }

        @Override
        public int required() {
          return c.status().required();
        }

        @Override
        public double startSeconds() {
          return c.startSeconds();
        }

        @Override
        public String session() {
          return session;
        }

        @Override
        public String cryptoUser() {
          return ThrowawayUsers.CRYPTO_USER;
        }

        @Override
        public char[] cryptoUserPassword() {
          return c.logins().cryptoUserPassword();
        }

        @Override
        public void close() {
          c.close();
        }
      };
    } catch (IOException | RuntimeException e) {
      c.close();
      throw e;
    }
  }

  private List<Integer> threadCounts() {
    if (!threads.matches("\\d{1,2}(,\\d{1,2})*")) {
      throw usage("--threads must look like 1,2,4,8");
    }
    List<Integer> out = new ArrayList<>();
    for (String t : threads.split(",")) {
      int n = Integer.parseInt(t);
      if (n < 1) {
        throw usage("--threads: each count must be 1..99");
      }
      out.add(n);
    }
    return out;
  }

  private String sizesArgument() {
    return hsms != null ? hsms : cluster ? DEFAULT_CLUSTER_HSMS : DEFAULT_HSMS;
  }

  private String creationsArgument() {
    return creations != null ? creations : cluster ? DEFAULT_CREATIONS : DEFAULT_SINGLE_CREATIONS;
  }

  private List<Integer> clusterSizes() {
    String list = sizesArgument();
    if (!list.matches("\\d(,\\d)*")) {
      throw usage("--hsms must look like 1,2,3");
    }
    List<Integer> out = new ArrayList<>();
    for (String h : list.split(",")) {
      int n = Integer.parseInt(h);
      if (n < 1 || n > LocalCluster.MAX_HSMS) {
        throw usage("--hsms: each size must be 1.." + LocalCluster.MAX_HSMS);
      }
      out.add(n);
    }
    return out;
  }

  private Map<KeySpec, Integer> creationCounts() {
    try {
      return ClusterBench.parseCreations(creationsArgument());
    } catch (IllegalArgumentException e) {
      throw usage("--creations: " + e.getMessage());
    }
  }

}
