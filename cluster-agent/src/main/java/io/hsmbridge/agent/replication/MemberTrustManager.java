package io.hsmbridge.agent.replication;

import java.net.Socket;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.Objects;
import java.util.function.Predicate;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * Trusts exactly the certificates of one cluster that belong to one kind of member: the chain must verify
 * (PKIX: signature, validity, basic constraints, extended key usage) against the cluster CA as the ONLY
 * trust anchor (never the JDK's default CAs), and the end-entity certificate must pass {@code accepted}
 * (for the Raft group: "carries the agent kind"). Used on both sides of a connection: a server checks its
 * clients, a client checks the server.
 *
 * <p>It authenticates a member of the cluster, not a host name: peers are addressed as configured
 * ({@code raft.peers}), and any certificate of the accepted kind under this CA is a legitimate peer (the
 * same model as the event bus). Thread-safe (immutable).
 */
public final class MemberTrustManager extends X509ExtendedTrustManager {
  private final X509TrustManager pkix;
  private final X509Certificate ca;
  private final Predicate<X509Certificate> accepted;
  private final String what;

  /**
   * @param ca the cluster CA certificate, the only trust anchor
   * @param accepted which end-entity certificates of that CA are welcome here
   * @param what names them in refusals, e.g. "an agent certificate"
   */
  public MemberTrustManager(X509Certificate ca, Predicate<X509Certificate> accepted, String what) {
    this.ca = Objects.requireNonNull(ca, "ca");
    this.accepted = Objects.requireNonNull(accepted, "accepted");
    this.what = Objects.requireNonNull(what, "what");
    this.pkix = caOnly(ca);
  }

  private static X509TrustManager caOnly(X509Certificate ca) {
    try {
      KeyStore anchors = KeyStore.getInstance("PKCS12");
      anchors.load(null, null);
      anchors.setCertificateEntry("cluster-ca", ca);
      TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
      tmf.init(anchors);
      for (TrustManager tm : tmf.getTrustManagers()) {
        if (tm instanceof X509TrustManager x) {
          return x;
        }
      }
      throw new IllegalStateException("the JDK offers no PKIX trust manager");
    } catch (GeneralSecurityException | java.io.IOException e) {
      throw new IllegalArgumentException("cannot trust the cluster CA certificate: " + e.getMessage(), e);
    }
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    pkix.checkClientTrusted(chain, authType);
    checkKind(chain);
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    pkix.checkServerTrusted(chain, authType);
    checkKind(chain);
  }

  // The engine/socket variants deliberately do not verify a host name (see the class comment): they
  // apply the same chain and kind checks.
  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
    checkClientTrusted(chain, authType);
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
    checkServerTrusted(chain, authType);
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
    checkClientTrusted(chain, authType);
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
    checkServerTrusted(chain, authType);
  }

  private void checkKind(X509Certificate[] chain) throws CertificateException {
    if (chain == null || chain.length == 0 || !accepted.test(chain[0])) {
      // The subject is public (it was just sent in clear in TLS 1.2, encrypted in 1.3): naming it helps the operator.
      throw new CertificateException("refused: " + (chain == null || chain.length == 0 ? "no certificate"
          : chain[0].getSubjectX500Principal().getName()) + " is not " + what + " of this cluster");
    }
  }

  /** Only the cluster CA: a client certificate request names no other. */
  @Override
  public X509Certificate[] getAcceptedIssuers() {
    return new X509Certificate[] {ca};
  }

  @Override
  public String toString() {
    return "MemberTrustManager[" + what + " under " + ca.getSubjectX500Principal().getName() + "]";
  }
}
