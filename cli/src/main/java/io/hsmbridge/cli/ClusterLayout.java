package io.hsmbridge.cli;

import io.hsmbridge.agent.membership.ClusterCa;
import io.hsmbridge.pkcs11.HsmException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;

/**
 * Creates a local cluster's files from its {@link ClusterRecord}: the cluster CA (once), each member's
 * directory, token store, PIN files and certificate (once), and every {@code node.properties}
 * (rewritten, so they always follow the record and the library path). Idempotent.
 */
final class ClusterLayout {
  private static final SecureRandom RANDOM = new SecureRandom();

  private ClusterLayout() {}

  /**
   * A new cluster's record: {@code hsms} HSMs and the bridge, each with fixed loopback ports free now.
   * Nothing is written.
   */
  static ClusterRecord newRecord(int hsms, int tcpPort, int durability) {
    List<Integer> ports = PortPicker.pick(3 * hsms + 1, tcpPort == 0 ? Set.of() : Set.of(tcpPort));
    List<ClusterRecord.Member> members = new ArrayList<>();
    for (int i = 0; i < hsms; i++) {
      // The first members form the Raft group together; none of them joins a running one. Each is a front
      // door too, on a port of its own that stays across restarts (clients keep a list of them).
      members.add(new ClusterRecord.Member("hsm" + (i + 1), ports.get(1 + 3 * i), ports.get(2 + 3 * i), false,
          ports.get(3 + 3 * i)));
    }
    // A name of its own: two local clusters never mistake each other's members for theirs.
    String name = "hsmbridge-" + HexFormat.of().formatHex(bytes(4));
    return new ClusterRecord(name, tcpPort, durability, false, hsms + 1, ports.get(0), members);
  }

  /** The operator's own agent settings (docs/configuration.md): HOME/agent.properties, appended to every agent's. */
  static final String AGENT_OVERRIDES = "agent.properties";
  /**
   * The operator's own front-door settings (auth.*, cluster.* routing): HOME/front-door.properties, appended to
   * every front door's node.properties, each HSM host's and the bridge's, so that they agree (a session's idle
   * limit, for one, is counted by all of them together).
   */
  static final String FRONT_DOOR_OVERRIDES = "front-door.properties";

  /**
   * HOME/agent.properties when present, after a comment line: settings an operator adds to every HSM's
   * node.properties (e.g. backup.interval, raft.compaction.entries). Java properties take the last value of
   * a key, so these override the derived ones.
   */
  static String agentOverrides(Home home) throws IOException {
    return overrides(home, AGENT_OVERRIDES);
  }

  /** HOME/front-door.properties when present, after a comment line (see {@link #FRONT_DOOR_OVERRIDES}). */
  static String frontDoorOverrides(Home home) throws IOException {
    return overrides(home, FRONT_DOOR_OVERRIDES);
  }

  private static String overrides(Home home, String fileName) throws IOException {
    Path overrides = home.dir().resolve(fileName);
    if (!Files.isRegularFile(overrides)) {
      return "";
    }
    String text = Files.readString(overrides);
    return "# from " + overrides + "\n" + text + (text.endsWith("\n") ? "" : "\n");
  }

  /**
   * Writes the record and everything derived from it: the CA when missing, every member's directory,
   * token files and certificate when missing, every node.properties.
   */
  static void write(Home home, ClusterRecord rec, Path library) throws IOException {
    NodeLayout.prepareHome(home);
    rec.store(home.clusterProperties());
    List<NodeDir> nodes = new ArrayList<>();
    for (ClusterRecord.Member m : rec.hsms()) {
      NodeDir d = home.hsm(m.id());
      NodeLayout.prepareToken(d);
      NodeLayout.privateDir(d.raftDir());
      NodeLayout.writeIfChanged(d.nodeProperties(), NodeProperties.agent(home, rec, m, library)
          + frontDoorOverrides(home) + agentOverrides(home));
      nodes.add(d);
    }
    NodeDir bridge = home.bridge();
    NodeLayout.privateDir(bridge.dir());
    NodeLayout.writeIfChanged(bridge.nodeProperties(), NodeProperties.bridge(home, rec) + frontDoorOverrides(home));
    nodes.add(bridge);
    issueMissingCertificates(home, rec, nodes);
  }

  /**
   * Issues a certificate to each node that has none, or one without its kind (issued before certificates
   * carried kinds: the Raft group accepts agent certificates only, so an old home's agents would refuse
   * each other). ClusterCa never overwrites its files: such a certificate and its key are deleted first.
   * The CA key is only read when a certificate is missing: once every member has one, it may be kept offline.
   */
  private static void issueMissingCertificates(Home home, ClusterRecord rec, List<NodeDir> nodes) throws IOException {
    List<NodeDir> missing = nodes.stream()
        .filter(d -> !(Files.exists(d.tlsCert()) && Files.exists(d.tlsKey()) && Files.exists(d.tlsCa())
            && hasKind(d))).toList();
    boolean cliMissing = !Files.exists(Home.cliCert(home.dir()));
    if (missing.isEmpty() && !cliMissing) {
      return;
    }
    ClusterCa ca = ca(home, rec);
    if (cliMissing) {
      // The CLI's own client certificate: it still reaches the bridge when bridge.tls.clientAuth=required.
      Path cliTls = Home.cliCert(home.dir()).getParent();
      NodeLayout.privateDir(cliTls.getParent());
      NodeLayout.privateDir(cliTls);
      try {
        clientCa(home, rec).issueMember("cli", ClusterCa.MemberKind.CLIENT, NodeProperties.CERT_HOSTS, cliTls);
      } catch (HsmException e) {
        throw new CliException(e.getMessage());
      }
    }
    for (NodeDir d : missing) {
      NodeLayout.privateDir(d.tlsDir());
      Files.deleteIfExists(d.tlsCert());
      Files.deleteIfExists(d.tlsKey());
      try {
        ca.issueMember(d.name(), d.memberKind(), NodeProperties.CERT_HOSTS, d.tlsDir());
      } catch (HsmException e) {
        throw new CliException(e.getMessage());
      }
    }
  }

  /** Whether the node's certificate carries the kind its node has (an unreadable one is issued again too). */
  private static boolean hasKind(NodeDir d) {
    try (var in = Files.newInputStream(d.tlsCert())) {
      var cert = (java.security.cert.X509Certificate)
          java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(in);
      return ClusterCa.MemberKind.of(cert) == d.memberKind();
    } catch (IOException | java.security.GeneralSecurityException | ClassCastException e) {
      return false;
    }
  }

  /** The client CA (made with the first client certificate); the bridge trusts it for mutual TLS only. */
  private static ClusterCa clientCa(Home home, ClusterRecord rec) {
    try {
      return Files.exists(home.clientCaDir().resolve(ClusterCa.CA_CERT_FILE))
          ? ClusterCa.load(home.clientCaDir())
          : ClusterCa.create(home.clientCaDir(), rec.name() + " clients");
    } catch (HsmException e) {
      throw new CliException(e.getMessage());
    }
  }

  private static ClusterCa ca(Home home, ClusterRecord rec) {
    try {
      return Files.exists(home.caDir().resolve(ClusterCa.CA_CERT_FILE))
          ? ClusterCa.load(home.caDir())
          : ClusterCa.create(home.caDir(), rec.name());
    } catch (HsmException e) {
      throw new CliException(e.getMessage());
    }
  }

  private static byte[] bytes(int n) {
    byte[] b = new byte[n];
    RANDOM.nextBytes(b);
    return b;
  }
}
