package io.hsmbridge.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code audit verify | export}: the HSMs' hash-chained audit logs. */
@Command(name = "audit", description = "The HSMs' audit logs.",
    subcommands = {AuditCommand.Verify.class, AuditCommand.Export.class})
final class AuditCommand extends CliCommand {

  @Override
  protected int execute() {
    throw usage("missing subcommand; one of: verify, export");
  }

  @Command(name = "verify", description = "Each serving HSM recomputes its audit chain with its own audit key;"
      + " prints the per-HSM report as JSON, then intact (exit 0) or TAMPERED (exit 1).")
  static final class Verify extends BridgeCommand {
    @Override
    protected int execute() {
      return reportAndVerdict(BridgeAdmin::auditVerify, "intact", "intact", "TAMPERED or unreadable");
    }
  }

  @Command(name = "export", description = "Print one HSM's audit log of the local cluster as JSON lines"
      + " (verify it with 'audit verify').")
  static final class Export extends CliCommand {
    @Option(names = "--hsm", required = true, paramLabel = "ID", description = "The HSM (e.g. hsm1).")
    String hsmId;

    @Override
    protected int execute() throws IOException {
      if (!hsmId.matches("[A-Za-z0-9_-]{1,64}")) {
        throw usage("--hsm must be an HSM id such as hsm1");
      }
      Path file = home().dir().resolve(hsmId).resolve("audit.log");
      if (!Files.exists(file)) {
        throw new CliException("no audit log for " + hsmId + " in " + home().dir());
      }
      out().print(Files.readString(file, StandardCharsets.UTF_8));
      return ExitCodes.OK;
    }
  }
}
