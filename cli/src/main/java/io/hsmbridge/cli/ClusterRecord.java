package io.hsmbridge.cli;

import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;

/**
 * The local cluster's own record, {@code HOME/cluster.properties}: its name, the bridge's settings, and
 * each HSM with the loopback ports chosen for it once, at creation. Every node's
 * {@code node.properties} is derived from it ({@link NodeProperties}). Immutable.
 *
 * @param tcpPort the bridge's client port (0 = any free port)
 * @param established false until the first {@code up} saw every HSM serving: until then hsm1 is the
 *     one that creates the cluster key (a failed first start can be retried without a second key)
 * @param nextHsm the number of the next HSM id; ids are never reused (a removed HSM's token is kept)
 * @param hsms in id order
 */
record ClusterRecord(String name, int tcpPort, int durability, boolean established, int nextHsm,
    int bridgeHazelcastPort, List<Member> hsms) {

  /**
   * @param joining true from {@code hsm add} until the HSM was seen serving: it starts with
   *     {@code raft.join=true} (asks the running group to add it)
   * @param clientPort the HSM host's own client endpoint (it is a front door too); 0 in records written
   *     before hosts served clients: then a free port at each start
   */
  record Member(String id, int hazelcastPort, int raftPort, boolean joining, int clientPort) {
    Member(String id, int hazelcastPort, int raftPort, boolean joining) {
      this(id, hazelcastPort, raftPort, joining, 0);
    }
  }
  // hazelcastPort / bridgeHazelcastPort: the membership port (cluster.memberPort). Named when Hazelcast
  // carried the membership; kept, because cluster records on disk use these names.

  static final String HEADER = "# The local hsmbridge cluster, kept by ./hsmbridge (up, hsm add, hsm remove).\n"
      + "# Every node.properties is derived from this file on each start; do not edit it while the cluster runs.\n";

  ClusterRecord {
    hsms = List.copyOf(hsms);
  }

  static boolean exists(Home home) {
    return Files.exists(home.clusterProperties());
  }

  /** Reads the record; a missing or damaged file is a one-line error naming the file and key. */
  static ClusterRecord load(Path file) {
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      throw new CliException("no cluster in " + file.getParent() + " (create one with ./hsmbridge up)");
    } catch (IOException e) {
      throw new CliException("cannot read " + file + ": " + e.getMessage());
    }
    return parse(text, file);
  }

  static ClusterRecord parse(String text, Path file) {
    Properties p = new Properties();
    try (Reader r = new StringReader(text)) {
      p.load(r);
    } catch (IOException | IllegalArgumentException e) {
      throw new CliException(file + " is not a properties file: " + e.getMessage());
    }
    Fields f = new Fields(p, file);
    List<Member> members = new ArrayList<>();
    for (String id : f.string("hsm.members").split(",")) {
      String hsmId = id.strip();
      if (!Home.isHsmId(hsmId)) {
        throw f.invalid("hsm.members", "'" + hsmId + "' is not an HSM id (hsm1, hsm2, ...)");
      }
      String k = "hsm." + hsmId + ".";
      members.add(new Member(hsmId, f.port(k + "hazelcastPort", 1), f.port(k + "raftPort", 1),
          Boolean.parseBoolean(p.getProperty(k + "joining", "false").strip()),
          p.getProperty(k + "clientPort") == null ? 0 : f.port(k + "clientPort", 1)));
    }
    ClusterRecord rec = new ClusterRecord(f.string("cluster.name"), f.port("bridge.tcpPort", 0),
        f.integer("bridge.durability", 1, 9), Boolean.parseBoolean(f.string("cluster.established")),
        f.integer("hsm.next", 1, 999_999), f.port("bridge.hazelcastPort", 1), members);
    rec.check(file);
    return rec;
  }

  /** The file's text: stable key order, no timestamp (a rewrite with the same content changes nothing). */
  String format() {
    StringBuilder b = new StringBuilder(HEADER)
        .append("cluster.name=").append(name).append('\n')
        .append("cluster.established=").append(established).append('\n')
        .append("bridge.tcpPort=").append(tcpPort).append('\n')
        .append("bridge.durability=").append(durability).append('\n')
        .append("bridge.hazelcastPort=").append(bridgeHazelcastPort).append('\n')
        .append("hsm.next=").append(nextHsm).append('\n')
        .append("hsm.members=").append(String.join(",", hsmIds())).append('\n');
    for (Member m : hsms) {
      b.append("hsm.").append(m.id()).append(".hazelcastPort=").append(m.hazelcastPort()).append('\n')
          .append("hsm.").append(m.id()).append(".raftPort=").append(m.raftPort()).append('\n');
      if (m.clientPort() != 0) {
        b.append("hsm.").append(m.id()).append(".clientPort=").append(m.clientPort()).append('\n');
      }
      if (m.joining()) {
        b.append("hsm.").append(m.id()).append(".joining=true\n");
      }
    }
    return b.toString();
  }

  void store(Path file) throws IOException {
    NodeLayout.writeIfChanged(file, format());
  }

  List<String> hsmIds() {
    return hsms.stream().map(Member::id).toList();
  }

  Optional<Member> member(String id) {
    return hsms.stream().filter(m -> m.id().equals(id)).findFirst();
  }

  /** Every port this record has reserved (the bridge's client port only when fixed). */
  Set<Integer> ports() {
    Set<Integer> s = new HashSet<>();
    s.add(bridgeHazelcastPort);
    if (tcpPort != 0) {
      s.add(tcpPort);
    }
    for (Member m : hsms) {
      s.add(m.hazelcastPort());
      s.add(m.raftPort());
      if (m.clientPort() != 0) {
        s.add(m.clientPort());
      }
    }
    return s;
  }

  /** The id the next {@code hsm add} gets. */
  String nextHsmId() {
    return "hsm" + nextHsm;
  }

  /** Adds the HSM {@link #nextHsmId()} (joining) and moves the counter on. */
  ClusterRecord withNewHsm(int hazelcastPort, int raftPort, int clientPort) {
    List<Member> m = new ArrayList<>(hsms);
    m.add(new Member(nextHsmId(), hazelcastPort, raftPort, true, clientPort));
    return new ClusterRecord(name, tcpPort, durability, established, nextHsm + 1, bridgeHazelcastPort, m);
  }

  ClusterRecord without(String id) {
    List<Member> m = hsms.stream().filter(x -> !x.id().equals(id)).toList();
    return new ClusterRecord(name, tcpPort, durability, established, nextHsm, bridgeHazelcastPort, m);
  }

  /** The HSM was seen serving: from now on it starts as an ordinary member of the Raft group. */
  ClusterRecord joined(String id) {
    List<Member> m = hsms.stream()
        .map(x -> x.id().equals(id) ? new Member(x.id(), x.hazelcastPort(), x.raftPort(), false, x.clientPort()) : x)
        .toList();
    return new ClusterRecord(name, tcpPort, durability, established, nextHsm, bridgeHazelcastPort, m);
  }

  ClusterRecord asEstablished() {
    return new ClusterRecord(name, tcpPort, durability, true, nextHsm, bridgeHazelcastPort, hsms);
  }

  ClusterRecord withBridge(int port, int durab) {
    return new ClusterRecord(name, port, durab, established, nextHsm, bridgeHazelcastPort, hsms);
  }

  private void check(Path file) {
    if (!name.matches("[A-Za-z0-9_.-]{1,64}")) {
      throw new CliException(file + ": cluster.name must be 1..64 letters, digits, '.', '-' or '_'");
    }
    if (hsms.isEmpty()) {
      throw new CliException(file + ": hsm.members lists no HSM");
    }
    Set<String> ids = new HashSet<>();
    Set<Integer> ports = new HashSet<>();
    ports.add(bridgeHazelcastPort);
    for (Member m : hsms) {
      if (!ids.add(m.id())) {
        throw new CliException(file + ": hsm.members lists " + m.id() + " twice");
      }
      if (Long.parseLong(m.id().substring(3)) >= nextHsm) {
        throw new CliException(file + ": hsm.next must be above every HSM number (" + m.id() + ")");
      }
      if (!ports.add(m.hazelcastPort()) || !ports.add(m.raftPort())) {
        throw new CliException(file + ": the ports of " + m.id() + " are already used by another member");
      }
    }
  }

  /** Reads typed values; errors name the file and the key. */
  private record Fields(Properties p, Path file) {
    String string(String key) {
      String v = p.getProperty(key);
      if (v == null || v.isBlank()) {
        throw invalid(key, "is missing");
      }
      return v.strip();
    }

    int integer(String key, int min, int max) {
      String v = string(key);
      try {
        int i = Integer.parseInt(v);
        if (i >= min && i <= max) {
          return i;
        }
      } catch (NumberFormatException e) {
        // below
      }
      throw invalid(key, "must be " + min + ".." + max + ", got '" + v + "'");
    }

    int port(String key, int min) {
      return integer(key, min, 65535);
    }

    CliException invalid(String key, String what) {
      return new CliException(file + ": " + key + " " + what);
    }
  }
}
