package io.hsmbridge.cli;

import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.UserInfo;
import io.hsmbridge.client.Users;
import io.hsmbridge.protocol.Role;
import java.nio.file.Path;
import java.security.PublicKey;
import java.util.Arrays;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.TypeConversionException;

/**
 * {@code user ...}: the cluster's users (docs/users.md). A CO manages users; a CU may change its own
 * password and register its own approval key. New passwords come from {@code --password-file},
 * {@code $HSMBRIDGE_NEW_PASSWORD}, the terminal (asked twice) or one line of standard input.
 */
@Command(name = "user", description = "Manage the cluster's users (crypto officers and crypto users).",
    subcommands = {
        UserCommands.Create.class,
        UserCommands.Delete.class,
        UserCommands.ListUsers.class,
        UserCommands.Passwd.class,
        UserCommands.Unlock.class,
        UserCommands.RegisterKey.class,
        UserCommands.Mfa.class})
final class UserCommands extends CliCommand {

  @Override
  protected int execute() {
    throw usage("missing subcommand; one of: create, delete, list, passwd, unlock, register-key, mfa");
  }

  /** Role names as users type them: CO (admin) or CU (crypto user). */
  static final class RoleConverter implements ITypeConverter<Role> {
    @Override
    public Role convert(String value) {
      try {
        return Role.parseCreatable(value);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }

  /** A command that sets a password: reads it as late as possible and wipes it after the request. */
  abstract static class SetsPassword extends ClientCommand {
    @Option(names = "--password-file", paramLabel = "FILE", description = "Read the new password from FILE's first line.")
    Path passwordFile;

    protected char[] newPassword(String user) {
      return Passwords.read(cli(), passwordFile, Passwords.NEW_PASSWORD_ENV, "new password for " + user, true);
    }
  }

  @Command(name = "create", description = "Create a user (CO only; protected by the admin quorum).")
  static final class Create extends SetsPassword {
    @Parameters(paramLabel = "NAME")
    String name;

    @Option(names = "--role", required = true, paramLabel = "ROLE", converter = RoleConverter.class,
        description = "CO (crypto officer: users and quorum) or CU (crypto user: keys and crypto).")
    Role role;

    @Mixin
    QuorumOptions quorum;

    @Override
    protected int run(Hsm hsm) {
      char[] password = newPassword(name);
      try {
        hsm.createUser(name, role, password);
      } finally {
        Arrays.fill(password, '\0');
      }
      out().println("created " + name + " (" + role + ")");
      return ExitCodes.OK;
    }
  }

  @Command(name = "delete", description = "Delete a user (CO only; protected by the admin quorum).")
  static final class Delete extends ClientCommand {
    @Parameters(paramLabel = "NAME")
    String name;

    @Mixin
    QuorumOptions quorum;

    @Override
    protected int run(Hsm hsm) {
      hsm.deleteUser(name);
      out().println("deleted " + name);
      return ExitCodes.OK;
    }
  }

  @Command(name = "list", description = "Every user: role, lock state, approval key, MFA; and the admin quorum (CO only).")
  static final class ListUsers extends ClientCommand {
    @Override
    protected int run(Hsm hsm) {
      Users users = hsm.listUsers();
      TextTable t = new TextTable("NAME", "ROLE", "LOCKED", "FAILED LOGINS", "APPROVAL KEY", "MFA");
      for (UserInfo u : users.users()) {
        t.row(u.name(), u.role(), yesNo(u.locked()), u.failedLogins(), yesNo(u.approvalKey()), yesNo(u.mfa()));
      }
      t.print(out(), "");
      out().println();
      out().println("admin quorum: " + users.adminQuorum()
          + (users.adminQuorum() > 1 ? " approvals for user and quorum changes" : " (no approvals needed)"));
      return ExitCodes.OK;
    }

    private static String yesNo(boolean b) {
      return b ? "yes" : "no";
    }
  }

  @Command(name = "passwd", description = "Change a password: a CO any user's (another user's is protected by the"
      + " admin quorum), a CU its own.")
  static final class Passwd extends SetsPassword {
    @Parameters(paramLabel = "NAME")
    String name;

    @Mixin
    QuorumOptions quorum;

    @Override
    protected int run(Hsm hsm) {
      char[] password = newPassword(name);
      try {
        hsm.changePassword(name, password);
      } finally {
        Arrays.fill(password, '\0');
      }
      out().println("changed the password of " + name);
      return ExitCodes.OK;
    }
  }

  @Command(name = "unlock", description = "Unlock a user locked after failed logins (CO only).")
  static final class Unlock extends ClientCommand {
    @Parameters(paramLabel = "NAME")
    String name;

    @Override
    protected int run(Hsm hsm) {
      hsm.unlockUser(name);
      out().println("unlocked " + name);
      return ExitCodes.OK;
    }
  }

  /** Exactly one of the two key files. */
  static final class KeySource {
    @Option(names = "--key", required = true, paramLabel = "PEM",
        description = "Your RSA private key (PKCS#8 PEM): its public half is registered; the key is not sent.")
    Path privateKey;

    @Option(names = "--public-key", required = true, paramLabel = "PEM", description = "Your RSA public key (SPKI PEM).")
    Path publicKey;
  }

  @Command(name = "register-key", description = "Register your RSA public key (>= 2048 bits) for quorum approvals"
      + " and MFA; make one with 'quorum keygen'.")
  static final class RegisterKey extends ClientCommand {
    @ArgGroup(exclusive = true, multiplicity = "1")
    KeySource source;

    private PublicKey key;

    @Override
    protected void validate() {
      key = source.privateKey != null ? KeyFiles.publicOf(source.privateKey) : KeyFiles.readPublic(source.publicKey);
    }

    @Override
    protected int run(Hsm hsm) {
      hsm.registerApprovalKey(key.getEncoded());
      out().println("registered the approval key (RSA-" + ((java.security.interfaces.RSAKey) key).getModulus().bitLength()
          + ") of this session's user");
      return ExitCodes.OK;
    }
  }

  /** Exactly one of on or off. */
  static final class OnOff {
    @Option(names = "--enable", required = true, description = "Require a signed challenge at login.")
    boolean enable;

    @Option(names = "--disable", required = true, description = "Password only.")
    boolean disable;
  }

  @Command(name = "mfa", description = "Turn your own second login factor on or off (CO only; needs a registered key:"
      + " then log in with --mfa-key).")
  static final class Mfa extends ClientCommand {
    @ArgGroup(exclusive = true, multiplicity = "1")
    OnOff onOff;

    @Override
    protected int run(Hsm hsm) {
      hsm.setMfa(onOff.enable);
      out().println(onOff.enable ? "MFA on: log in with --mfa-key YOUR_KEY.pem from now on" : "MFA off");
      return ExitCodes.OK;
    }
  }
}
