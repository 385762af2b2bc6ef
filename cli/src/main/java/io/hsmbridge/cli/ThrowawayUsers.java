package io.hsmbridge.cli;

import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.Session;
import io.hsmbridge.protocol.Role;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;

/**
 * Activates a cluster a command started for itself ({@code demo}, {@code bench --cluster}) and logs in a
 * crypto user, all through the client as an operator would: PRECO login, {@code cluster.activate} with a
 * random admin password, a CU with a random password, its login. The passwords exist only in this JVM's
 * memory and die with the throwaway cluster: nobody else can ever log in to it.
 */
final class ThrowawayUsers {
  /** The crypto user that runs the keys and crypto of a throwaway cluster. */
  static final String CRYPTO_USER = "runner";
  private static final SecureRandom RANDOM = new SecureRandom();

  /**
   * The sessions made: the admin's (for admin requests) and the crypto user's, which {@code hsm} now uses; and
   * that user's password, kept in this JVM only, for what logs in by itself (the JCE rows of {@code bench}).
   */
  static final class Logins {
    private final Session admin;
    private final Session cryptoUser;
    private final char[] cryptoUserPassword;

    Logins(Session admin, Session cryptoUser, char[] cryptoUserPassword) {
      this.admin = admin;
      this.cryptoUser = cryptoUser;
      this.cryptoUserPassword = cryptoUserPassword.clone();
    }

    Session admin() {
      return admin;
    }

    Session cryptoUser() {
      return cryptoUser;
    }

    /** A copy of the crypto user's password; the caller clears it. */
    char[] cryptoUserPassword() {
      return cryptoUserPassword.clone();
    }

    @Override
    public String toString() {
      return "Logins[admin, " + CRYPTO_USER + "]";
    }
  }

  private ThrowawayUsers() {}

  /**
   * Activates the cluster behind {@code hsm} and leaves {@code hsm} logged in as the crypto user.
   *
   * @throws io.hsmbridge.client.HsmBridgeException when the cluster is no new one (LOGIN_FAILED) or refuses
   */
  static Logins activate(Hsm hsm) {
    char[] preco = ClusterAdminCommands.PRECO_DEFAULT_PASSWORD.toCharArray();
    char[] admin = randomPassword();
    char[] user = randomPassword();
    try {
      hsm.login(ClusterAdminCommands.PRECO_USER, preco);
      hsm.activate(admin);
      Session co = hsm.login(ClusterAdminCommands.PRECO_USER, admin);
      hsm.createUser(CRYPTO_USER, Role.CU, user);
      Session cu = hsm.login(CRYPTO_USER, user);
      return new Logins(co, cu, user);
    } finally {
      Arrays.fill(admin, '\0');
      Arrays.fill(user, '\0');
    }
  }

  /** 32 characters of URL-safe base64 from 24 random bytes (192 bits): within every password rule. */
  static char[] randomPassword() {
    byte[] b = new byte[24];
    RANDOM.nextBytes(b);
    byte[] text = Base64.getUrlEncoder().withoutPadding().encode(b);
    char[] out = new char[text.length];
    for (int i = 0; i < text.length; i++) {
      out[i] = (char) text[i];
    }
    Arrays.fill(b, (byte) 0);
    Arrays.fill(text, (byte) 0);
    return out;
  }
}
