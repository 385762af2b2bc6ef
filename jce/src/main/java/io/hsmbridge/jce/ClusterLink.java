package io.hsmbridge.jce;

import io.hsmbridge.client.ClientTls;
import io.hsmbridge.client.FailoverSender;
import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.client.RetryingSender;
import io.hsmbridge.protocol.ErrorCode;
import java.util.Arrays;
import java.util.function.Function;

/**
 * The provider's one logged-in connection to the cluster, made at first use. It fails over between front
 * doors and retries what cannot be done twice as the client does ({@link FailoverSender}, {@link
 * RetryingSender}); when the cluster says the session is gone (expired, logged out, or the user's password
 * changed), it logs in again with the configured credentials and sends the call once more. Thread-safe: the
 * engines of every thread share it.
 */
final class ClusterLink implements AutoCloseable {
  private final JceConfig config;
  private Hsm hsm;
  /** Bumped at each login, so that threads that all saw one session end log in once, not once each. */
  private long loginGeneration;

  ClusterLink(JceConfig config) {
    this.config = config;
  }

  JceConfig config() {
    return config;
  }

  /**
   * Runs {@code call} with the logged-in facade.
   *
   * @throws HsmBridgeException what the cluster answered (LOGIN_FAILED when the configured credentials are refused)
   */
  <T> T call(Function<Hsm, T> call) {
    long generation;
    Hsm h;
    synchronized (this) {
      h = connected();
      generation = loginGeneration;
    }
    try {
      return call.apply(h);
    } catch (HsmBridgeException e) {
      if (e.code() != ErrorCode.NOT_AUTHENTICATED) {
        throw e;
      }
      synchronized (this) {
        if (generation == loginGeneration) {
          login(h);
        }
      }
      return call.apply(h);
    }
  }

  private Hsm connected() {
    if (hsm == null) {
      ClientTls tls = config.ca() == null ? null : ClientTls.pinning(config.ca());
      FailoverSender failover = new FailoverSender(config.endpoints(), config.timeout(), tls);
      Hsm h = Hsm.owning(new RetryingSender(failover), failover);
      try {
        login(h);
      } catch (RuntimeException e) {
        h.close();
        throw e;
      }
      hsm = h;
    }
    return hsm;
  }

  /** How many times this link logged in: once at first use, once more after each session end. */
  synchronized long logins() {
    return loginGeneration;
  }

  private void login(Hsm h) {
    char[] password = config.password();
    try {
      h.login(config.user(), password);
      loginGeneration++;
    } finally {
      Arrays.fill(password, '\0');
    }
  }

  @Override
  public synchronized void close() {
    if (hsm != null) {
      try {
        hsm.logout();
      } catch (RuntimeException e) {
        // the session ends by itself at its expiry; closing must not fail for it
      }
      hsm.close();
      hsm = null;
    }
  }

  @Override
  public String toString() {
    return "ClusterLink[" + config + "]";
  }
}
