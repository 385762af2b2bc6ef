package io.hsmbridge.cli;

import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code recovery ...}: the offline recovery token of disaster recovery (docs/disaster-recovery.md). */
@Command(name = "recovery", description = "The offline recovery token that can hand the backup key to new HSMs"
    + " after every HSM is lost (docs/disaster-recovery.md).", subcommands = {RecoveryCommands.Init.class})
final class RecoveryCommands extends CliCommand {
  @Override
  protected int execute() {
    throw usage("missing subcommand; one of: init");
  }

  @Command(name = "init", description = "Make the recovery token in DIR (a SoftHSM2 token with PIN files of its own,"
      + " unless DIR/node.properties names another token) and its RSA key pair; writes DIR/recovery-key.pem for"
      + " 'backup escrow'. Keep DIR offline.")
  static final class Init extends CliCommand {
    @Option(names = "--dir", required = true, paramLabel = "DIR", description = "The recovery token's directory.")
    Path dir;

    @Override
    protected int execute() throws Exception {
      Path library = NodeLayout.findLibrary(cli().env());
      String fingerprint = RecoveryCeremony.init(dir, library, out());
      out().println("recovery key " + fingerprint);
      out().println("  public key " + dir.toAbsolutePath().normalize().resolve("recovery-key.pem"));
      out().println("next: ./hsmbridge backup escrow --recovery-key " + dir.resolve("recovery-key.pem")
          + " --out escrow.json   (as a CO)");
      return ExitCodes.OK;
    }
  }
}
