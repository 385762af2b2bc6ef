package io.hsmbridge.cli;

import io.hsmbridge.client.HsmBridgeException;
import java.io.PrintStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code up}, {@code down} and {@code status} of the local cluster. */
final class ClusterCommands {
  static final int DEFAULT_PORT = 7701;
  static final int DEFAULT_HSMS = 3;
  static final int DEFAULT_DURABILITY = 2;

  private ClusterCommands() {}

  @Command(name = "up", description = "Create and start the local cluster: one agent per HSM, each with its own"
      + " SoftHSM2 token, and a bridge (the client endpoint). On an existing cluster, start what is not running."
      + " Waits until every HSM serves.")
  static final class Up extends CliCommand {
    @Option(names = "--hsms", paramLabel = "N",
        description = "HSMs of a new cluster, 1.." + LocalCluster.MAX_HSMS + " (default: " + DEFAULT_HSMS + ")."
            + " An existing cluster keeps its own: 'hsm add' and 'hsm remove' change them.")
    Integer hsms;

    @Option(names = "--port", paramLabel = "N",
        description = "TCP bridge port on 127.0.0.1 (default: " + DEFAULT_PORT + "; 0 = any free port).")
    Integer port;

    @Option(names = "--durability", paramLabel = "D",
        description = "HSMs a key change must reach before it is acknowledged (default: " + DEFAULT_DURABILITY
            + "; fewer while fewer are healthy).")
    Integer durability;

    @Option(names = "--from-backup", paramLabel = "FILE|ID",
        description = "A new cluster that holds exactly this backup's keys, users, ACLs and quorum settings (also of a"
            + " cluster whose HSMs are all lost): a backup file, or a backup id in --store; needs --escrow and"
            + " --recovery-dir (docs/disaster-recovery.md). The same as 'backup restore'.")
    String fromBackup;

    @Option(names = "--store", paramLabel = "DIR",
        description = "With --from-backup ID: the backup store that holds it (an old cluster's backup.dir, or a"
            + " copy-to-region store).")
    Path store;

    @Option(names = "--escrow", paramLabel = "FILE", description = "With --from-backup: the escrow of the backup's cluster.")
    Path escrow;

    @Option(names = "--recovery-dir", paramLabel = "DIR", description = "With --from-backup: the recovery token the escrow is for.")
    Path recoveryDir;

    @Override
    protected int execute() throws Exception {
      if ((fromBackup == null) != (escrow == null) || (fromBackup == null) != (recoveryDir == null)) {
        throw usage("--from-backup, --escrow and --recovery-dir go together");
      }
      if (store != null && fromBackup == null) {
        throw usage("--store goes with --from-backup ID");
      }
      if (hsms != null && (hsms < 1 || hsms > LocalCluster.MAX_HSMS)) {
        throw usage("--hsms must be 1.." + LocalCluster.MAX_HSMS + ", got " + hsms);
      }
      if (port != null && (port < 0 || port > 65535)) {
        throw usage("--port must be 0..65535, got " + port);
      }
      if (durability != null && (durability < 1 || durability > LocalCluster.MAX_HSMS)) {
        throw usage("--durability must be 1.." + LocalCluster.MAX_HSMS + ", got " + durability);
      }
      Home home = home();
      Path library = NodeLayout.findLibrary(cli().env());
      NodeLayout.prepareHome(home);
      try (HomeLock lock = HomeLock.acquire(home)) {
        LocalCluster cluster = new LocalCluster(home);
        if (fromBackup != null) {
          return upFromBackup(cluster, library);
        }
        ClusterRecord rec = record(cluster);
        ClusterLayout.write(home, rec, library);
        List<LocalNode.Spawned> spawned = cluster.startMissing(rec);
        List<String> names = spawned.stream().map(LocalNode.Spawned::name).toList();
        out().println(names.isEmpty() ? "hsmbridge is already running; checking it ..."
            : "starting " + String.join(", ", names) + " (data dir " + home.dir() + ") ...");
        out().flush();
        LocalCluster.Ready ready = awaitServing(cluster, spawned, rec);
        ClusterRecord settled = rec.asEstablished();
        for (String id : rec.hsmIds()) {
          settled = settled.joined(id); // seen serving: a restart no longer asks to join
        }
        if (!settled.equals(rec)) {
          ClusterLayout.write(home, settled, library);
        }
        printUp(ready, cluster.running(), settled, names.isEmpty(), !rec.established());
      }
      return ExitCodes.OK;
    }

    /**
     * A new cluster from a backup (docs/disaster-recovery.md): its first HSM gets the old cluster's PBK from
     * the recovery token, a new cluster key and the backup; once it serves (and has made a backup of the new
     * cluster), each further HSM joins as {@code hsm add} does.
     */
    private int upFromBackup(LocalCluster cluster, Path library) throws Exception {
      if (cluster.record().isPresent() || !cluster.running().isEmpty()) {
        throw new CliException(home().dir() + " already holds a cluster: restore into a new data dir (--home)");
      }
      Path backup = BackupSource.resolve(fromBackup, store);
      int n = hsms == null ? DEFAULT_HSMS : hsms;
      ClusterRecord rec = ClusterLayout.newRecord(1, port == null ? DEFAULT_PORT : port,
          durability == null ? DEFAULT_DURABILITY : durability).asEstablished();
      java.util.Set<Path> before = entries(home().dir());
      ClusterLayout.write(home(), rec, library);
      long started = System.nanoTime();
      ProgressBar progress = new ProgressBar(cli().err(), cli().terminal() != null, "restoring onto " + Home.FIRST_HSM + ": keys");
      try {
        RecoveryCeremony.restoreOnto(home().hsm(Home.FIRST_HSM), backup, escrow, recoveryDir, out(), progress);
      } catch (IOException | RuntimeException e) {
        // Nothing started yet: leave HOME as it was, so that the restore can simply be run again.
        for (Path p : entries(home().dir())) {
          if (!before.contains(p)) {
            DemoCommand.deleteTree(p);
          }
        }
        throw e;
      } finally {
        progress.finish();
      }
      out().println("starting " + Home.FIRST_HSM + " on the restored token ...");
      out().flush();
      LocalCluster.Ready ready = awaitServing(cluster, cluster.startMissing(rec), rec);
      ClusterRecord settled = rec.joined(Home.FIRST_HSM);
      ClusterLayout.write(home(), settled, library);
      for (int i = 1; i < n; i++) {
        ClusterRecord now = ClusterRecord.load(home().clusterProperties());
        out().println("adding " + now.nextHsmId() + " (it restores the new cluster's first backup) ...");
        out().flush();
        try {
          ready = cluster.add(now, library).ready();
        } catch (NodeFailure f) {
          printTail(out(), f);
          throw f;
        }
      }
      out().println("restored into a new cluster in " + (System.nanoTime() - started) / 1_000_000 + " ms");
      printUp(ready, cluster.running(), ClusterRecord.load(home().clusterProperties()), false, false);
      return ExitCodes.OK;
    }

    private static java.util.Set<Path> entries(Path dir) throws IOException {
      try (java.util.stream.Stream<Path> list = Files.list(dir)) {
        return list.collect(java.util.stream.Collectors.toSet());
      }
    }

    /** Waits until every HSM of {@code rec} serves; a node that fails shows its log's tail. */
    private LocalCluster.Ready awaitServing(LocalCluster cluster, List<LocalNode.Spawned> spawned, ClusterRecord rec) {
      try {
        return cluster.awaitServing(spawned, rec.hsmIds());
      } catch (NodeFailure f) {
        printTail(out(), f);
        throw f;
      }
    }

    /** The existing cluster with this command's options, or a new one. */
    private ClusterRecord record(LocalCluster cluster) {
      Optional<ClusterRecord> existing = cluster.record();
      if (existing.isEmpty()) {
        Home home = cluster.home();
        if (!cluster.running().isEmpty()) {
          throw new CliException("a node of an earlier hsmbridge version runs in " + home.dir()
              + "; stop it with ./hsmbridge down first");
        }
        if (Files.exists(home.hsm(Home.FIRST_HSM).nodeProperties())) {
          // ClusterLayout writes cluster.properties before any node.properties: this is no cluster of ours.
          throw new CliException(home.dir() + " holds the single node of an earlier hsmbridge version, whose keys"
              + " would not be replicated; move it away (or use --home) to create a cluster");
        }
        return ClusterLayout.newRecord(hsms == null ? DEFAULT_HSMS : hsms, port == null ? DEFAULT_PORT : port,
            durability == null ? DEFAULT_DURABILITY : durability);
      }
      ClusterRecord rec = existing.get();
      if (hsms != null && hsms != rec.hsms().size()) {
        throw new CliException("this cluster has " + rec.hsms().size() + " HSMs (" + String.join(", ", rec.hsmIds())
            + "); change that with ./hsmbridge hsm add or ./hsmbridge hsm remove <hsmId>");
      }
      int p = port == null ? rec.tcpPort() : port;
      int d = durability == null ? rec.durability() : durability;
      if ((p != rec.tcpPort() || d != rec.durability()) && cluster.bridge().runningPid().isPresent()) {
        throw new CliException("the bridge runs with --port " + rec.tcpPort() + " --durability " + rec.durability()
            + "; stop the cluster with ./hsmbridge down to change them");
      }
      return rec.withBridge(p, d);
    }

    /** @param firstStart the cluster's first {@code up}: the walkthrough; a restart gets the short list */
    private void printUp(LocalCluster.Ready ready, Map<String, Long> pids, ClusterRecord rec, boolean wasRunning,
        boolean firstStart) {
      PrintStream out = out();
      String h = root().home != null ? " --home " + home().dir() : "";
      out.println("hsmbridge " + (wasRunning ? "is already running" : "is up") + ": " + rec.hsms().size()
          + " HSM" + (rec.hsms().size() == 1 ? "" : "s") + ", durability " + rec.durability());
      printEndpoint(out, ready.bridge(), pids);
      for (String id : rec.hsmIds()) {
        ClusterStatus.Hsm s = ready.status().hsm(id).orElseThrow();
        out.println("  " + pad(id, 10) + " " + pad(s.state(), 8) + " token " + s.token()
            + (pids.containsKey(id) ? ", pid " + pids.get(id) : ""));
      }
      out.println("  data dir   " + home().dir());
      out.println("  logs       " + home().dir() + "/{" + String.join(",", rec.hsmIds()) + ",bridge}/node.log");
      out.println();
      String hb = "./hsmbridge" + h;
      if (!firstStart) {
        // A restart (of the whole cluster or of a host that died): it was activated before, most likely.
        out.println("Try next: " + hb + " status (each HSM's state), " + hb + " login --user <name>");
        return;
      }
      String[][] next = {
          {hb + " cluster activate", "a new cluster: set the first admin's password"},
          {hb + " login --user admin", "admins manage users and quorum"},
          {hb + " user create alice --role CU", "a crypto user owns and uses keys"},
          {hb + " login --user alice", ""},
          {hb + " key generate --spec AES_256 --label my-key", ""},
          {hb + " encrypt --key <keyId> --text 'hello'", ""},
          {hb + " status", ""},
          {hb + " hsm add", "one more HSM: it copies every key before it serves"},
          {hb + " cluster check", "as admin: compare the HSMs' objects, repair drift"},
          {"./hsmbridge demo", "a self-check on a throwaway node"},
          {hb + " down", ""}};
      int width = hb.length() + 30;
      out.println("Try next:");
      for (String[] n : next) {
        out.println("  " + (n[1].isEmpty() ? n[0] : pad(n[0], width) + " (" + n[1] + ")"));
      }
    }
  }

  @Command(name = "down", description = "Stop the local cluster: the bridge, then every HSM agent"
      + " (SIGTERM, then SIGKILL after 20 s).")
  static final class Down extends CliCommand {
    @Override
    protected int execute() throws Exception {
      Home home = home();
      Map<String, Long> stopped;
      try (HomeLock lock = HomeLock.acquire(home)) {
        stopped = new LocalCluster(home).stop();
      }
      if (stopped.isEmpty()) {
        out().println("hsmbridge is not running (data dir " + home.dir() + ")");
      } else {
        List<String> what = new ArrayList<>();
        stopped.forEach((name, pid) -> what.add(name + " (pid " + pid + ")"));
        out().println("stopped " + String.join(", ", what));
      }
      return ExitCodes.OK;
    }
  }

  @Command(name = "status", description = "Whether the local cluster runs, and each HSM's state."
      + " Exit code 3 when nothing runs.")
  static final class Status extends CliCommand {
    @Override
    protected int execute() {
      Home home = home();
      LocalCluster cluster = new LocalCluster(home);
      Map<String, Long> pids = cluster.running();
      PrintStream out = out();
      if (pids.isEmpty()) {
        out.println("hsmbridge is not running (data dir " + home.dir() + ")");
        return ExitCodes.NOT_RUNNING;
      }
      List<String> ids = cluster.record().map(ClusterRecord::hsmIds).orElse(home.hsmDirs());
      Optional<Endpoint> ep = cluster.bridge().runningEndpoint();
      if (ep.isEmpty()) {
        boolean starting = pids.containsKey(Home.BRIDGE);
        out.println(starting
            ? "hsmbridge is starting (bridge pid " + pids.get(Home.BRIDGE) + "), not ready yet"
            : "hsmbridge is partly running: the bridge is not running (./hsmbridge up starts what is missing)");
        out.println("  data dir   " + home.dir());
        out.println();
        HsmTable.full(out, ids, null, pids);
        return starting ? ExitCodes.OK : ExitCodes.FAILURE;
      }
      ClusterStatus st;
      try {
        st = cluster.status(ep.get());
      } catch (HsmBridgeException e) {
        throw new CliException("hsmbridge runs (bridge pid " + ep.get().pid() + ") but does not answer: "
            + e.getMessage());
      }
      out.println("hsmbridge is running: " + st.healthy() + " of " + st.hsms().size() + " HSMs healthy;"
          + " durability " + st.durability() + ", a key change needs " + st.required());
      printEndpoint(out, ep.get(), pids);
      out.println("  data dir   " + home.dir());
      out.println();
      HsmTable.full(out, ids, st, pids);
      return ExitCodes.OK;
    }
  }

  static void printEndpoint(PrintStream out, Endpoint ep, Map<String, Long> pids) {
    Long pid = ep.pid() > 0 ? Long.valueOf(ep.pid()) : pids.get(Home.BRIDGE);
    out.println("  endpoint   " + ep.hostPort() + (pid == null ? "" : " (bridge, pid " + pid + ")"));
  }

  /** Shows why a node failed (its log's last lines) before the one-line error. */
  static void printTail(PrintStream out, NodeFailure f) {
    if (!f.logTail().isEmpty()) {
      out.println("last lines of " + f.log() + ":");
      f.logTail().forEach(l -> out.println("  " + l));
      out.flush();
    }
  }

  static String pad(String s, int width) {
    String t = s == null ? "-" : s;
    return t.length() >= width ? t : t + " ".repeat(width - t.length());
  }
}
