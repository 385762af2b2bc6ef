package io.hsmbridge.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;

/** The root command: global options and the list of subcommands. */
@Command(
    name = "hsmbridge",
    scope = ScopeType.INHERIT,
    mixinStandardHelpOptions = true,
    versionProvider = Version.class,
    sortOptions = false,
    usageHelpAutoWidth = true,
    description = "A self-hosted HSM cluster over PKCS#11 tokens.",
    subcommands = {
        ClusterCommands.Up.class,
        ClusterCommands.Down.class,
        ClusterCommands.Status.class,
        HsmCommands.class,
        ClusterAdminCommands.class,
        AuditCommand.class,
        BackupCommands.class,
        RecoveryCommands.class,
        AuthCommands.Login.class,
        AuthCommands.Logout.class,
        AuthCommands.WhoAmI.class,
        UserCommands.class,
        QuorumCommands.class,
        KeyCommands.class,
        CryptoCommands.Encrypt.class,
        CryptoCommands.Decrypt.class,
        CryptoCommands.Sign.class,
        CryptoCommands.Verify.class,
        CryptoCommands.Mac.class,
        CryptoCommands.MacVerify.class,
        CryptoCommands.Digest.class,
        CryptoCommands.RandomBytes.class,
        DemoCommand.class,
        BenchCommand.class,
        ContainerKitCommand.class,
    },
    footerHeading = "%n",
    footer = {
        "Data directory: --home, else $HSMBRIDGE_HOME, else <repo>/.hsmbridge.",
        "Session: 'login' keeps it in --session-file, else $HSMBRIDGE_SESSION_FILE, else HOME/session (0600).",
        "Exit codes: 0 ok; 1 failed (or 'invalid' from verify/mac-verify); 2 bad command line;"
            + " 3 'status' or 'hsm list' found nothing running.",
        "Set HSMBRIDGE_DEBUG=1 or pass --debug for stack traces."})
final class HsmbridgeCommand implements Callable<Integer> {
  private final Cli cli;

  @Spec
  CommandSpec spec;

  @Option(names = "--home", paramLabel = "DIR", scope = ScopeType.INHERIT,
      description = "Data directory of the local cluster (default: $HSMBRIDGE_HOME or <repo>/.hsmbridge).")
  Path home;

  @Option(names = "--session-file", paramLabel = "FILE", scope = ScopeType.INHERIT,
      description = "Where 'login' keeps the session for later commands (default: $HSMBRIDGE_SESSION_FILE,"
          + " else HOME/session).")
  Path sessionFile;

  @Option(names = "--debug", scope = ScopeType.INHERIT, description = "Print stack traces of errors.")
  boolean debug;

  HsmbridgeCommand(Cli cli) {
    this.cli = cli;
  }

  Cli cli() {
    return cli;
  }

  Path homeDir() {
    return cli.home(home);
  }

  @Override
  public Integer call() {
    spec.commandLine().usage(cli.out());
    return ExitCodes.OK;
  }
}
