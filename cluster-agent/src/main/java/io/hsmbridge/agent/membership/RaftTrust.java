package io.hsmbridge.agent.membership;

import io.hsmbridge.agent.replication.RaftTls;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import java.security.cert.X509Certificate;

/**
 * The Raft group's mutual TLS for one agent: it presents the agent's own cluster certificate (the PEM
 * files of {@code cluster.tls.cert} / {@code cluster.tls.key}, the same as for the event bus) and trusts
 * only certificates issued by the cluster CA ({@code cluster.tls.ca}, the only trust anchor) that carry
 * the {@link ClusterCa.MemberKind#AGENT} kind. A front door, a client certificate, a certificate without
 * a kind (issued before kinds existed) or of another CA is refused, as a server and as a client.
 */
public final class RaftTrust {
  /** How refusals name what the group accepts. */
  static final String ACCEPTED = "an agent certificate";

  private RaftTrust() {}

  /** Whether {@code certificate} may speak to the Raft group (its chain is checked separately). */
  public static boolean isAgent(X509Certificate certificate) {
    return ClusterCa.MemberKind.of(certificate) == ClusterCa.MemberKind.AGENT;
  }

  /**
   * The TLS material of an agent configured with {@code cluster}. Its own certificate must be an agent
   * certificate too: a node that would be refused by its peers fails here, at start, with a clear error.
   */
  public static RaftTls forAgent(ClusterConfig cluster) {
    if (!cluster.enabled()) {
      throw new HsmException(ErrorCode.CONFIG_INVALID, "an agent needs cluster.enabled=true and its cluster.tls.* files");
    }
    X509Certificate ca = ClusterCa.trustAnchor(cluster);
    X509Certificate own = ClusterCa.readCertificate(cluster.tlsCert(), "member certificate (cluster.tls.cert)");
    if (!isAgent(own)) {
      throw new HsmException(ErrorCode.CONFIG_INVALID, "cluster.tls.cert " + cluster.tlsCert() + " is not an agent"
          + " certificate (its subject carries no OU=" + ClusterCa.MemberKind.AGENT.unit() + "); the Raft group"
          + " accepts agent certificates only: issue this HSM a new one (./hsmbridge up does it for a local cluster)");
    }
    return RaftTls.of(ca, own, ClusterCa.readPrivateKey(cluster.tlsKey(), "member key (cluster.tls.key)"),
        RaftTrust::isAgent, ACCEPTED);
  }
}
