package io.hsmbridge.cli;

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
      return reportAndVerdict(BridgeAdmin::check, "consistent", "consistent", "inconsistent");
    }
  }
}
