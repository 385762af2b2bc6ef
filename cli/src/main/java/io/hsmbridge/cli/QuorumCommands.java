package io.hsmbridge.cli;

import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.Pem;
import io.hsmbridge.client.QuorumApproval;
import io.hsmbridge.client.QuorumToken;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.time.Instant;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code quorum ...}: M-of-N approvals (docs/users.md). Approvers make a key pair ({@code keygen}),
 * register its public half ({@code user register-key}) and sign token documents offline ({@code approve}).
 */
@Command(name = "quorum", description = "M-of-N approvals: approval keys, the admin quorum, signing quorum tokens.",
    subcommands = {QuorumCommands.Keygen.class, QuorumCommands.Set.class, QuorumCommands.Approve.class})
final class QuorumCommands extends CliCommand {
  static final int MAX_QUORUM = 8;

  @Override
  protected int execute() {
    throw usage("missing subcommand; one of: keygen, set, approve");
  }

  @Command(name = "keygen", description = "Make an RSA-" + KeyFiles.KEYGEN_BITS + " approval key pair on this machine:"
      + " the private key (PKCS#8 PEM, 0600) to --out, the public key beside it as NAME.pub.pem. Needs no bridge.")
  static final class Keygen extends CliCommand {
    @Option(names = "--out", required = true, paramLabel = "FILE.pem", description = "Where the private key goes.")
    Path out;

    @Override
    protected int execute() throws IOException {
      Path pub = KeyFiles.publicKeyPathFor(out);
      KeyFiles.generate(out, pub);
      out().println("private key " + out + " (0600: keep it to yourself; it signs your approvals)");
      out().println("public key  " + pub);
      out().println("register it: hsmbridge user register-key --key " + out);
      return ExitCodes.OK;
    }
  }

  @Command(name = "set", description = "Set how many approvals the admin services need: user create/delete/passwd"
      + " and quorum changes (CO only; 1 = none; protected by the current admin quorum).")
  static final class Set extends ClientCommand {
    @Option(names = "--admin", required = true, paramLabel = "M", description = "1.." + MAX_QUORUM + ".")
    int admin;

    @Mixin
    QuorumOptions quorum;

    @Override
    protected void validate() {
      if (admin < 1 || admin > MAX_QUORUM) {
        throw usage("--admin must be 1.." + MAX_QUORUM + ", got " + admin);
      }
    }

    @Override
    protected int run(Hsm hsm) {
      hsm.setAdminQuorum(admin);
      out().println("admin quorum: " + admin + (admin == 1 ? " (no approvals needed)" : " approvals"));
      return ExitCodes.OK;
    }
  }

  @Command(name = "approve", description = "Approve a quorum token offline: sign its document with your approval key and"
      + " write the approval for the requester. Needs no bridge; read the document before you sign it.")
  static final class Approve extends CliCommand {
    @Option(names = "--token", required = true, paramLabel = "FILE", description = "The token file --quorum-request wrote.")
    Path tokenFile;

    @Option(names = "--user", required = true, paramLabel = "NAME", description = "Your user name.")
    String user;

    @Option(names = "--key", required = true, paramLabel = "PEM", description = "Your approval key (private, PKCS#8 PEM).")
    Path keyFile;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "Where the approval goes.")
    Path outFile;

    @Override
    protected int execute() throws IOException {
      QuorumToken token = QuorumFiles.readToken(tokenFile);
      if (System.currentTimeMillis() >= token.expiresAt()) {
        throw new CliException("the quorum token in " + tokenFile + " expired at " + Instant.ofEpochMilli(token.expiresAt())
            + "; nothing was signed");
      }
      PrivateKey key = KeyFiles.readPrivate(keyFile);
      QuorumApproval approval = QuorumApproval.approve(token, user, key);
      // Catches a key that cannot have made this signature before anyone relies on it.
      if (!QuorumApproval.verify(token.document(), approval.signature(), Pem.publicKeyOf(key))) {
        throw new CliException("the approval does not verify with the public half of " + keyFile);
      }
      QuorumFiles.writeApproval(outFile, approval);
      out().println("approved (signed as " + user + "):");
      readable(token.document()).lines().forEach(l -> out().println("  " + l));
      out().println("approval written to " + outFile + "; give it to the requester (it holds no secret)");
      return ExitCodes.OK;
    }

    /** The bridge's documents are one line of JSON: shown one field a line, so the approver reads what they sign. */
    private static String readable(String document) {
      try {
        return new JsonObject(document).encodePrettily();
      } catch (RuntimeException notJson) {
        return document;
      }
    }
  }
}
