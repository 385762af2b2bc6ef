package io.hsmbridge.cli;

import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.client.Session;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.time.Instant;
import java.util.Arrays;
import java.util.Optional;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code login}, {@code logout}, {@code whoami}: the session the other commands use (docs/users.md). */
final class AuthCommands {
  private AuthCommands() {}

  @Command(name = "login", description = "Log in; the session is kept in the session file (0600) for the commands"
      + " after it. The password comes from --password-file, $HSMBRIDGE_PASSWORD, the terminal or one line of"
      + " standard input, never from the command line.")
  static final class Login extends BridgeCommand {
    @Option(names = "--user", required = true, paramLabel = "NAME")
    String user;

    @Option(names = "--password-file", paramLabel = "FILE", description = "Read the password from FILE's first line.")
    Path passwordFile;

    @Option(names = "--mfa-key", paramLabel = "PEM",
        description = "Sign the login challenge with this RSA private key (users with MFA on; see 'user mfa').")
    Path mfaKey;

    @Override
    protected int execute() throws IOException {
      PrivateKey key = mfaKey == null ? null : KeyFiles.readPrivate(mfaKey);
      char[] password = Passwords.read(cli(), passwordFile, Passwords.PASSWORD_ENV, "password for " + user, false);
      Session s;
      try (Hsm hsm = Hsm.owning(connect())) {
        s = key == null ? hsm.login(user, password) : hsm.loginWithMfa(user, password, key);
      } finally {
        Arrays.fill(password, '\0');
      }
      SessionFile file = sessionFile();
      file.write(s);
      out().println("logged in as " + s.user() + " (" + s.role() + "); the session ends at "
          + Instant.ofEpochMilli(s.expiresAt()) + " or when idle; kept in " + file.path());
      if ("PRECO".equals(s.role())) {
        out().println("this cluster is not activated yet: run hsmbridge cluster activate");
      }
      return ExitCodes.OK;
    }
  }

  @Command(name = "logout", description = "End the session at the bridge and delete the session file.")
  static final class Logout extends BridgeCommand {
    @Override
    protected int execute() throws IOException {
      SessionFile file = sessionFile();
      Optional<Session> s = file.read();
      if (s.isEmpty()) {
        out().println("not logged in (no " + file.path() + ")");
        return ExitCodes.OK;
      }
      String notTold = null;
      try (Hsm hsm = Hsm.owning(connect())) {
        hsm.useSession(s.get().token());
        hsm.logout();
      } catch (HsmBridgeException e) {
        // An expired session is as good as ended; anything else is said after the file is gone.
        notTold = e.code() == ErrorCode.NOT_AUTHENTICATED ? null : e.getMessage();
      } catch (CliException e) {
        notTold = e.getMessage(); // e.g. no cluster running
      } finally {
        file.delete();
      }
      if (notTold != null) {
        throw new CliException("deleted " + file.path() + ", but the bridge was not told (" + notTold
            + "); the session ends by itself when idle");
      }
      out().println("logged out " + s.get().user() + "; deleted " + file.path());
      return ExitCodes.OK;
    }
  }

  @Command(name = "whoami", description = "The user and role of the session, as the bridge sees it.")
  static final class WhoAmI extends ClientCommand {
    @Override
    protected void validate() {
      if (sessionFile().read().isEmpty()) {
        throw new CliException(AuthHints.NOT_LOGGED_IN);
      }
    }

    @Override
    protected int run(Hsm hsm) {
      JsonObject me = hsm.whoami();
      Object exp = me.getValue("expiresAt");
      out().println(me.getValue("user") + " (" + me.getValue("role") + ")"
          + (exp instanceof Number n ? ", session ends at " + Instant.ofEpochMilli(n.longValue()) : ""));
      return ExitCodes.OK;
    }
  }
}
