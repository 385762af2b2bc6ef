package io.hsmbridge.bridge.cluster;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import java.net.Socket;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.EnumSet;
import java.util.Set;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * TLS material shared by the two member channels (JGroups membership and the Vert.x event bus): this
 * member's key and certificate, and a trust manager that accepts a peer only when its certificate chains
 * to the cluster CA <em>and</em> is of a member kind ({@link ClusterCa.MemberKind#AGENT} or
 * {@link ClusterCa.MemberKind#FRONT_DOOR}). A CLIENT certificate of the same CA, a certificate without a
 * kind, a self-signed or foreign certificate, or no certificate at all is refused during the handshake,
 * in both directions (the member checks the peer it connects to, and the peer that connects to it).
 *
 * <p>Immutable and thread-safe. Nothing here logs or shows key material.
 */
public final class MemberTls {
  /** The certificate kinds that may be cluster members; every other kind is refused. */
  public static final Set<ClusterCa.MemberKind> MEMBER_KINDS =
      EnumSet.of(ClusterCa.MemberKind.AGENT, ClusterCa.MemberKind.FRONT_DOOR);

  private static final char[] IN_MEMORY_PASSWORD = "in-memory".toCharArray();

  private final KeyManager[] keyManagers;
  private final MemberTrustManager trustManager;

  private MemberTls(KeyManager[] keyManagers, MemberTrustManager trustManager) {
    this.keyManagers = keyManagers;
    this.trustManager = trustManager;
  }

  /** Reads the member's files (already validated by {@link ClusterConfig}); CONFIG_INVALID when unusable. */
  public static MemberTls load(Path certFile, Path keyFile, Path caFile) {
    X509Certificate ca = ClusterCa.readCertificate(caFile, "cluster CA certificate");
    X509Certificate cert = ClusterCa.readCertificate(certFile, "member certificate");
    PrivateKey key = ClusterCa.readPrivateKey(keyFile, "member key");
    ClusterCa.MemberKind kind = ClusterCa.MemberKind.of(cert);
    if (!MEMBER_KINDS.contains(kind)) {
      throw new HsmException(ErrorCode.CONFIG_INVALID, "cluster.tls.cert " + certFile + " is of kind "
          + (kind == null ? "none" : kind.unit()) + "; only agent and front-door certificates may be cluster members");
    }
    try {
      KeyStore ks = KeyStore.getInstance("PKCS12");
      ks.load(null, null);
      ks.setKeyEntry("member", key, IN_MEMORY_PASSWORD, new X509Certificate[] {cert, ca});
      KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(ks, IN_MEMORY_PASSWORD);
      return new MemberTls(kmf.getKeyManagers(), MemberTrustManager.of(ca));
    } catch (GeneralSecurityException | java.io.IOException e) {
      throw new HsmException(ErrorCode.CONFIG_INVALID, "cannot set up cluster TLS: " + e.getMessage());
    }
  }

  /** A fresh TLS context: this member's key, and {@link #trustManager()} as the only trust. */
  public SSLContext context() {
    try {
      SSLContext ctx = SSLContext.getInstance("TLSv1.3");
      ctx.init(keyManagers, new TrustManager[] {trustManager}, new SecureRandom());
      return ctx;
    } catch (GeneralSecurityException e) {
      throw new HsmException(ErrorCode.CONFIG_INVALID, "cannot set up cluster TLS: " + e.getMessage());
    }
  }

  /** Accepts exactly the certificates of member kinds issued by the cluster CA. */
  public X509ExtendedTrustManager trustManager() {
    return trustManager;
  }

  /**
   * PKIX validation under the cluster CA alone (the JDK's own validator: signature, validity, CA
   * constraints, key usage), then the kind. Host names are not checked: a member's identity is "holds a
   * member certificate of this CA", as for the event bus.
   */
  static final class MemberTrustManager extends X509ExtendedTrustManager {
    private final X509ExtendedTrustManager pkix;
    private final X509Certificate ca;

    private MemberTrustManager(X509ExtendedTrustManager pkix, X509Certificate ca) {
      this.pkix = pkix;
      this.ca = ca;
    }

    static MemberTrustManager of(X509Certificate ca) throws GeneralSecurityException, java.io.IOException {
      KeyStore ts = KeyStore.getInstance("PKCS12");
      ts.load(null, null);
      ts.setCertificateEntry("cluster-ca", ca);
      TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
      tmf.init(ts);
      for (TrustManager tm : tmf.getTrustManagers()) {
        if (tm instanceof X509ExtendedTrustManager x) {
          return new MemberTrustManager(x, ca);
        }
      }
      throw new GeneralSecurityException("no X509 trust manager for the cluster CA");
    }

    private static void checkKind(X509Certificate[] chain) throws CertificateException {
      ClusterCa.MemberKind kind = chain == null || chain.length == 0 ? null : ClusterCa.MemberKind.of(chain[0]);
      if (!MEMBER_KINDS.contains(kind)) {
        throw new CertificateException("peer certificate is of kind " + (kind == null ? "none" : kind.unit())
            + ", not a cluster member kind");
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

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
      pkix.checkClientTrusted(chain, authType, socket);
      checkKind(chain);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
      pkix.checkServerTrusted(chain, authType, socket);
      checkKind(chain);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
        throws CertificateException {
      pkix.checkClientTrusted(chain, authType, engine);
      checkKind(chain);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
        throws CertificateException {
      pkix.checkServerTrusted(chain, authType, engine);
      checkKind(chain);
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
      return new X509Certificate[] {ca};
    }
  }
}
