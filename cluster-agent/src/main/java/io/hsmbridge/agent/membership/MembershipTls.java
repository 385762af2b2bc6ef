package io.hsmbridge.agent.membership;

import io.hsmbridge.agent.replication.RaftTls;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.util.EnumSet;
import java.util.Set;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;

/**
 * The membership port's mutual TLS: a member presents its own cluster certificate and trusts only
 * certificates of the cluster CA ({@code cluster.tls.ca}, the only trust anchor) of a member kind: agent,
 * front door or application. A client certificate, a certificate without a kind, of another CA or self-signed is refused
 * in the handshake, as a server and as a client.
 */
public final class MembershipTls {
  /** The kinds of certificate that may be members. */
  public static final Set<ClusterCa.MemberKind> MEMBER_KINDS =
      EnumSet.of(ClusterCa.MemberKind.AGENT, ClusterCa.MemberKind.FRONT_DOOR, ClusterCa.MemberKind.APPLICATION);
  static final String ACCEPTED = "an agent, front-door or application certificate";

  private MembershipTls() {}

  public static boolean isMember(X509Certificate certificate) {
    return MEMBER_KINDS.contains(ClusterCa.MemberKind.of(certificate));
  }

  /** The TLS context of a member configured with {@code cluster} (whose own certificate is checked by ClusterConfig). */
  public static SSLContext context(ClusterConfig cluster) {
    X509Certificate ca = ClusterCa.trustAnchor(cluster);
    X509Certificate own = ClusterCa.readCertificate(cluster.tlsCert(), "member certificate (cluster.tls.cert)");
    RaftTls material = RaftTls.of(ca, own, ClusterCa.readPrivateKey(cluster.tlsKey(), "member key (cluster.tls.key)"),
        MembershipTls::isMember, ACCEPTED);
    try {
      SSLContext context = SSLContext.getInstance("TLSv1.3");
      context.init(new KeyManager[] {material.keyManager()}, new TrustManager[] {material.trustManager()},
          new SecureRandom());
      return context;
    } catch (GeneralSecurityException e) {
      throw new HsmException(ErrorCode.CONFIG_INVALID, "cannot set up the membership's TLS: " + e.getMessage(),
          null, null, e);
    }
  }
}
