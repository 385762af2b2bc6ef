package io.hsmbridge.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The text of each node's {@code node.properties}, derived from the {@link ClusterRecord} (the keys are
 * documented in docs/configuration.md and docs/cluster-transport.md). Pure functions: no file system.
 * PINs are never in these files, only the paths of the PIN files.
 */
final class NodeProperties {
  /** Everything of a local cluster binds to loopback. */
  static final String HOST = "127.0.0.1";
  /** The addresses in every member certificate of a local cluster. */
  static final List<String> CERT_HOSTS = List.of(HOST, "localhost");

  private NodeProperties() {}

  /** An agent: one HSM, a member of the Raft group of every HSM in the record. */
  static String agent(Home home, ClusterRecord rec, ClusterRecord.Member m, Path library) {
    NodeDir d = home.hsm(m.id());
    StringBuilder b = new StringBuilder()
        .append("node.role=agent\n")
        .append(token(d, library))
        .append("state.dir=").append(d.dir()).append('\n')
        .append(cluster(rec, d, m.hazelcastPort()))
        .append("raft.port=").append(m.raftPort()).append('\n')
        .append("raft.dir=").append(d.raftDir()).append('\n')
        .append("raft.peers=").append(raftPeers(rec)).append('\n')
        .append("raft.join=").append(m.joining()).append('\n')
        // One catalog for the local cluster (docs/backups.md): a joining HSM restores the newest backup from it.
        .append("backup.dir=").append(home.dir().resolve("backups")).append('\n')
        .append(frontDoor(home, rec, m.clientPort()));
    if (!rec.established() && m.id().equals(Home.FIRST_HSM)) {
      // Only the first HSM of a new cluster creates the cluster key; every other one fetches it.
      b.append("cluster.createKey=true\n");
    }
    return b.toString();
  }

  /**
   * Every HSM host is a front door too (issue #11): its own client endpoint (TLS, its cluster certificate,
   * its fixed client port, also in its endpoint.json) and routing, so that losing the bridge does not stop clients
   * that know the hosts' endpoints (the CLI and {@code FailoverSender}). The periodic consistency check
   * runs in the front door of the Raft leader's host (see ClusterBridgeVerticle), so it needs no bridge.
   */
  static String frontDoor(Home home, ClusterRecord rec, int clientPort) {
    return "frontDoor.enabled=true\n"
        + "bridge.tcp.host=" + HOST + "\n"
        + "bridge.tcp.port=" + clientPort + "\n"
        + "bridge.tls=true\n"
        + "bridge.tls.clientCa=" + home.clientCaDir().resolve("ca.pem") + "\n"
        + "cluster.durability=" + rec.durability() + "\n";
  }

  /** The bridge: the cluster's client endpoint; it holds no token. */
  static String bridge(Home home, ClusterRecord rec) {
    NodeDir d = home.bridge();
    return "node.role=bridge\n"
        + "bridge.tcp.host=" + HOST + "\n"
        + "bridge.tcp.port=" + rec.tcpPort() + "\n"
        // TLS on loopback too: clients, tests and bench take the path a remote client takes. The server
        // certificate is the bridge's cluster certificate (front door; SANs 127.0.0.1 and localhost).
        + "bridge.tls=true\n"
        // Used only with bridge.tls.clientAuth=required: client certificates come from their own CA.
        + "bridge.tls.clientCa=" + home.clientCaDir().resolve("ca.pem") + "\n"
        + "state.dir=" + d.dir() + "\n"
        + cluster(rec, d, rec.bridgeHazelcastPort())
        + "cluster.durability=" + rec.durability() + "\n";
  }

  /**
   * The token keys alone, for {@code bench}'s direct PKCS#11 baseline (a process that opens the token, no
   * node). Every node, a one-HSM cluster's too, is an {@link #agent} or the {@link #bridge}.
   */
  static String directToken(NodeDir d, Path library) {
    return token(d, library);
  }

  /** {@code hsm1@127.0.0.1:PORT,...}: every HSM of the record, in id order. */
  static String raftPeers(ClusterRecord rec) {
    List<String> peers = new ArrayList<>();
    for (ClusterRecord.Member m : rec.hsms()) {
      peers.add(m.id() + "@" + HOST + ":" + m.raftPort());
    }
    return String.join(",", peers);
  }

  /** Every member's membership address: the HSMs in id order, then the bridge. */
  static String clusterMembers(ClusterRecord rec) {
    List<String> members = new ArrayList<>();
    for (ClusterRecord.Member m : rec.hsms()) {
      members.add(HOST + ":" + m.hazelcastPort());
    }
    members.add(HOST + ":" + rec.bridgeHazelcastPort());
    return String.join(",", members);
  }

  private static String token(NodeDir d, Path library) {
    return "hsm.id=" + d.name() + "\n"
        + "pkcs11.library=" + library + "\n"
        + "token.label=hsmbridge-" + d.name() + "\n"
        + "token.initialize=true\n"
        + "pin.user.file=" + d.userPin() + "\n"
        + "pin.so.file=" + d.soPin() + "\n";
  }

  private static String cluster(ClusterRecord rec, NodeDir d, int memberPort) {
    return "cluster.enabled=true\n"
        + "cluster.name=" + rec.name() + "\n"
        + "cluster.host=" + HOST + "\n"
        + "cluster.memberPort=" + memberPort + "\n"
        + "cluster.members=" + clusterMembers(rec) + "\n"
        + "cluster.tls.cert=" + d.tlsCert() + "\n"
        + "cluster.tls.key=" + d.tlsKey() + "\n"
        + "cluster.tls.ca=" + d.tlsCa() + "\n";
  }
}
