package io.hsmbridge.cli;

import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.client.Session;
import io.hsmbridge.protocol.ErrorCode;
import java.nio.file.Path;
import java.util.Arrays;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code cluster check | activate | rotate-key}: cluster-wide administration through the bridge; {@code member-cert}
 * and {@code transport-cert}: certificates of the local cluster CA.
 */
@Command(name = "cluster", description = "Cluster-wide checks, the activation of a new cluster, the cluster key's rotation.",
    subcommands = {ClusterAdminCommands.Check.class, ClusterAdminCommands.Activate.class, ClusterAdminCommands.RotateKey.class,
        MemberCertCommand.class, TransportCertCommand.class})
final class ClusterAdminCommands extends CliCommand {
  /** The PRECO's login of a new cluster, as in CloudHSM: user admin, password "password". */
  static final String PRECO_USER = "admin";
  static final String PRECO_DEFAULT_PASSWORD = "password";

  @Override
  protected int execute() {
    throw usage("missing subcommand; one of: check, activate, rotate-key, member-cert, transport-cert");
  }

  @Command(name = "check", description = "Compare the HSMs' objects (digests of their metadata) and repair drift;"
      + " prints the report as JSON, then consistent (exit 0) or inconsistent (exit 1). Needs a CO's session.")
  static final class Check extends BridgeCommand {
    @Override
    protected int execute() {
      return reportAndVerdict(BridgeAdmin::check, "consistent", "consistent", "inconsistent");
    }
  }

  @Command(name = "rotate-key", description = "Rotate the cluster key (under which replicas travel between HSMs): one"
      + " HSM makes the next generation inside its token and the mutation log installs it on every HSM; new replicas"
      + " use it, older ones still install. CO only, under the admin quorum.")
  static final class RotateKey extends KeyRotationCommand {
    @picocli.CommandLine.Mixin
    QuorumOptions quorum;

    @Override
    io.hsmbridge.protocol.Op op() {
      return io.hsmbridge.protocol.Op.CLUSTER_ROTATE_KEY;
    }

    @Override
    String next(Object generation) {
      return "cluster key generation " + generation + " is on every HSM the log reaches; new keys travel under it";
    }
  }

  @Command(name = "activate", description = "Activate a new cluster: log in as its pre-crypto-officer (admin /"
      + " 'password'), set the first admin's password, end that session. The new password comes from"
      + " --password-file, $HSMBRIDGE_NEW_PASSWORD, the terminal (asked twice) or one line of standard input.")
  static final class Activate extends BridgeCommand {
    @Option(names = "--preco-password-file", paramLabel = "FILE",
        description = "The PRECO's password, if not CloudHSM's default 'password'.")
    Path precoPasswordFile;

    @Option(names = "--password-file", paramLabel = "FILE", description = "The first admin's new password (first line).")
    Path passwordFile;

    @Override
    protected int execute() {
      char[] preco = precoPasswordFile == null ? PRECO_DEFAULT_PASSWORD.toCharArray()
          : Passwords.read(cli(), precoPasswordFile, "", "PRECO password", false);
      char[] password = null;
      try (Hsm hsm = Hsm.owning(connect())) {
        loginAsPreco(hsm, preco);
        password = Passwords.read(cli(), passwordFile, Passwords.NEW_PASSWORD_ENV, "new password for admin", true);
        hsm.activate(password);
        endQuietly(hsm);
      } finally {
        Arrays.fill(preco, '\0');
        if (password != null) {
          Arrays.fill(password, '\0');
        }
      }
      out().println("cluster activated: the first admin is '" + PRECO_USER + "' (CO)");
      out().println("log in with: hsmbridge login --user " + PRECO_USER);
      out().println("then create crypto users: hsmbridge user create NAME --role CU");
      return ExitCodes.OK;
    }

    private static Session loginAsPreco(Hsm hsm, char[] preco) {
      Session s;
      try {
        s = hsm.login(PRECO_USER, preco);
      } catch (HsmBridgeException e) {
        if (e.code() == ErrorCode.LOGIN_FAILED) {
          throw new CliException("cannot log in as the pre-crypto-officer (" + PRECO_USER + " with the PRECO password):"
              + " the cluster is probably activated already; log in with hsmbridge login --user " + PRECO_USER);
        }
        throw e;
      }
      if (!"PRECO".equals(s.role())) {
        endQuietly(hsm);
        throw new CliException("the cluster is activated already (" + s.user() + " is a " + s.role() + ");"
            + " log in with hsmbridge login --user " + s.user());
      }
      return s;
    }

    /** The PRECO session is useless after activation; the bridge may have ended it already. */
    private static void endQuietly(Hsm hsm) {
      try {
        hsm.logout();
      } catch (HsmBridgeException e) {
        // ended already (activation retires the PRECO) or the bridge is gone: nothing is left to clean up
      }
    }
  }
}
