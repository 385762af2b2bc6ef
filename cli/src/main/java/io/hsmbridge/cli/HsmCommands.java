package io.hsmbridge.cli;

import io.hsmbridge.client.HsmBridgeException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code hsm ...}: add, remove and list the local cluster's HSMs. */
@Command(name = "hsm", description = "Add, remove and list the cluster's HSMs.",
    subcommands = {HsmCommands.ListHsms.class, HsmCommands.Add.class, HsmCommands.Remove.class})
final class HsmCommands extends CliCommand {

  @Override
  protected int execute() {
    throw usage("missing subcommand; one of: list, add, remove");
  }

  @Command(name = "list", description = "Each HSM: state, token, objects, pid. Exit code 3 when nothing runs.")
  static final class ListHsms extends CliCommand {
    @Override
    protected int execute() {
      Home home = home();
      LocalCluster cluster = new LocalCluster(home);
      ClusterRecord rec = cluster.record().orElseThrow(() -> new CliException(ExitCodes.NOT_RUNNING,
          "no cluster in " + home.dir() + " (create one with ./hsmbridge up)", null));
      Map<String, Long> pids = cluster.running();
      Optional<Endpoint> ep = cluster.bridge().runningEndpoint();
      ClusterStatus st = null;
      if (ep.isPresent()) {
        try {
          st = cluster.status(ep.get());
        } catch (HsmBridgeException e) {
          throw new CliException("the bridge (pid " + ep.get().pid() + ") does not answer: " + e.getMessage());
        }
      }
      HsmTable.compact(out(), rec.hsmIds(), st, pids);
      return pids.isEmpty() ? ExitCodes.NOT_RUNNING : ExitCodes.OK;
    }
  }

  @Command(name = "add", description = "Add an HSM to the running cluster: a new SoftHSM2 token and agent that joins"
      + " the Raft group, receives the cluster key and every key, and is listed once it serves.")
  static final class Add extends CliCommand {
    @Override
    protected int execute() throws Exception {
      Home home = home();
      Path library = NodeLayout.findLibrary(cli().env());
      try (HomeLock lock = HomeLock.acquire(home)) {
        LocalCluster cluster = new LocalCluster(home);
        ClusterRecord rec = ClusterRecord.load(home.clusterProperties());
        out().println("adding " + rec.nextHsmId() + " (it serves once it has every key) ...");
        out().flush();
        LocalCluster.Added added;
        try {
          added = cluster.add(rec, library);
        } catch (NodeFailure f) {
          ClusterCommands.printTail(out(), f);
          throw f;
        }
        ClusterStatus.Hsm h = added.ready().status().hsm(added.hsmId()).orElseThrow();
        PrintStream out = out();
        out.println("added " + h.hsmId() + ": " + h.state() + " (token " + h.token()
            + (h.objects() < 0 ? "" : ", objects " + h.objects()) + "); log " + home.hsm(h.hsmId()).nodeLog());
        out.println();
        HsmTable.compact(out, ClusterRecord.load(home.clusterProperties()).hsmIds(), added.ready().status(),
            cluster.running());
      }
      return ExitCodes.OK;
    }
  }

  @Command(name = "remove", description = "Remove an HSM (needs a CO's session): the bridge drains it and takes it out"
      + " of the Raft group, then its agent stops and its directory (token kept) moves to HOME/removed/.")
  static final class Remove extends CliCommand {
    @Parameters(paramLabel = "HSM_ID", description = "e.g. hsm2 (see 'hsm list').")
    String hsmId;

    @Override
    protected int execute() throws Exception {
      if (!Home.isHsmId(hsmId)) {
        throw usage("not an HSM id: '" + hsmId + "' (hsm1, hsm2, ...)");
      }
      Home home = home();
      Path library = NodeLayout.findLibrary(cli().env());
      String session = sessionFile().token();
      try (HomeLock lock = HomeLock.acquire(home)) {
        ClusterRecord rec = ClusterRecord.load(home.clusterProperties());
        out().println("removing " + hsmId + " (draining it first) ...");
        out().flush();
        LocalCluster.Removal r = new LocalCluster(home).remove(rec, hsmId, library, session);
        List<String> left = rec.without(hsmId).hsmIds();
        out().println("removed " + r.hsmId() + (r.pid().isPresent() ? " (stopped pid " + r.pid().getAsLong() + ")" : ""));
        out().println("  token kept in " + r.movedTo());
        out().println("  HSMs now    " + String.join(", ", left)
            + (r.peers().isEmpty() ? "" : " (Raft group: " + String.join(", ", r.peers()) + ")"));
      }
      return ExitCodes.OK;
    }
  }
}
