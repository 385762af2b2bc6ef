package io.hsmbridge.cli;

import io.hsmbridge.client.BridgeClient;
import io.vertx.core.json.JsonObject;
import picocli.CommandLine.Command;

/** {@code cluster check}: the bridge's anti-entropy check. */
@Command(name = "cluster", description = "Cluster-wide checks.", subcommands = ClusterCheckCommand.Check.class)
final class ClusterCheckCommand extends CliCommand {

  @Override
  protected int execute() {
    throw usage("missing subcommand; one of: check");
  }

  @Command(name = "check", description = "Compare the HSMs' objects (digests of their metadata) and repair drift;"
      + " prints the report as JSON, then consistent (exit 0) or inconsistent (exit 1).")
  static final class Check extends BridgeCommand {
    @Override
    protected int execute() {
      JsonObject report;
      BridgeClient client = connect();
      try (BridgeAdmin admin = new BridgeAdmin(client, client)) {
        report = admin.check();
      }
      boolean consistent = Boolean.TRUE.equals(report.getValue("consistent"));
      out().println(report.encodePrettily());
      out().println(consistent ? "consistent" : "inconsistent");
      return consistent ? ExitCodes.OK : ExitCodes.FAILURE;
    }
  }
}
