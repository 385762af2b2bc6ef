package io.hsmbridge.agent.replication;

import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.util.Objects;
import java.util.function.Predicate;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509KeyManager;

/**
 * The mutual-TLS material of one Raft peer: the key manager that presents this HSM's own cluster
 * certificate, and the trust manager that decides which certificates the other side may show. The same
 * pair is used for every connection the peer makes or accepts (peer RPC, client and admin calls), so the
 * group speaks to nobody the trust manager refuses, in either direction.
 *
 * <p>Built by the node from its cluster certificate files ({@code io.hsmbridge.agent.membership.RaftTrust}
 * knows the cluster CA and the member kinds); this package only needs the two JSSE managers. Holds a private key: {@link #toString()}
 * shows none of it.
 *
 * @param keyManager presents this peer's certificate chain (server side and client side)
 * @param trustManager accepts the other side's certificate chain, or throws
 */
public record RaftTls(KeyManager keyManager, TrustManager trustManager) {
  public RaftTls {
    Objects.requireNonNull(keyManager, "keyManager");
    Objects.requireNonNull(trustManager, "trustManager");
  }

  /**
   * The usual pair: {@code key} and {@code certificate} presented as this peer, and only chains issued by
   * {@code ca} whose end-entity certificate passes {@code acceptedPeer} trusted (see
   * {@link MemberTrustManager}).
   *
   * @param what names the accepted certificates in refusals, e.g. "an agent certificate"
   */
  public static RaftTls of(X509Certificate ca, X509Certificate certificate, PrivateKey key,
      Predicate<X509Certificate> acceptedPeer, String what) {
    return new RaftTls(keyManager(certificate, key), new MemberTrustManager(ca, acceptedPeer, what));
  }

  /** A key manager that presents {@code certificate} (with {@code key}) and nothing else. */
  public static X509KeyManager keyManager(X509Certificate certificate, PrivateKey key) {
    try {
      // The store lives only in memory; its password only satisfies the API.
      char[] password = new char[16];
      SecureRandom random = new SecureRandom();
      for (int i = 0; i < password.length; i++) {
        password[i] = (char) ('a' + random.nextInt(26));
      }
      KeyStore store = KeyStore.getInstance("PKCS12");
      store.load(null, null);
      store.setKeyEntry("member", key, password, new X509Certificate[] {certificate});
      KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(store, password);
      java.util.Arrays.fill(password, '\0');
      for (KeyManager km : kmf.getKeyManagers()) {
        if (km instanceof X509KeyManager x) {
          return x;
        }
      }
      throw new IllegalStateException("the JDK offers no X.509 key manager");
    } catch (GeneralSecurityException | java.io.IOException e) {
      throw new IllegalArgumentException("cannot use this member's certificate and key for Raft TLS: " + e.getMessage(), e);
    }
  }

  @Override
  public String toString() {
    return "RaftTls[" + trustManager + "]";
  }
}
