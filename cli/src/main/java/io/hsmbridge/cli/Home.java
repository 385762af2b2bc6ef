package io.hsmbridge.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The layout of a local cluster's data directory:
 * <pre>
 * HOME/cluster.properties   the cluster's record kept by the CLI ({@link ClusterRecord})
 * HOME/cluster/ca/          the cluster CA (ca.pem, ca-key.pem 0600)
 * HOME/hsmK/                one agent per HSM ({@link NodeDir}: token store, PINs, node.properties, log, raft/, tls/)
 * HOME/bridge/              the bridge (node.properties, log, endpoint.json: what clients connect to)
 * HOME/removed/hsmK-TIME/   directories of removed HSMs, tokens kept
 * HOME/node.jar             the copy of hsmbridge.jar the nodes run from
 * HOME/cli/tls/             the local CLI's client certificate (kind client), for an endpoint with mutual TLS
 * </pre>
 */
record Home(Path dir) {
  static final String BRIDGE = "bridge";
  /** The first HSM of a cluster (the only one of a one-HSM cluster). */
  static final String FIRST_HSM = "hsm1";
  private static final Pattern HSM_ID = Pattern.compile("hsm[1-9][0-9]{0,5}");

  static boolean isHsmId(String s) {
    return s != null && HSM_ID.matcher(s).matches();
  }

  Path clusterProperties() {
    return dir.resolve("cluster.properties");
  }

  Path caDir() {
    return dir.resolve("cluster").resolve("ca");
  }

  /**
   * The CA of client certificates (the CLI's, applications' for the endpoint's mutual TLS): a CA of its
   * own, never the cluster CA, whose certificates the cluster's own links accept.
   */
  Path clientCaDir() {
    return caDir().resolve("clients");
  }

  Path removedDir() {
    return dir.resolve("removed");
  }

  /** The CLI's client certificate of the data directory {@code home} (kind client; see ClusterLayout). */
  static Path cliCert(Path home) {
    return home.resolve("cli").resolve("tls").resolve("cli.pem");
  }

  static Path cliKey(Path home) {
    return home.resolve("cli").resolve("tls").resolve("cli-key.pem");
  }

  Path nodeJar() {
    return dir.resolve("node.jar");
  }

  /** Held by commands that change the cluster, so two of them never interleave. */
  Path lockFile() {
    return dir.resolve(".lock");
  }

  NodeDir node(String name) {
    return new NodeDir(name, dir.resolve(name));
  }

  NodeDir bridge() {
    return node(BRIDGE);
  }

  NodeDir hsm(String hsmId) {
    return node(hsmId);
  }

  /**
   * Every {@code hsmK} directory present, by number: also those of a data directory written by an
   * earlier version (one node in {@code hsm1}, no cluster.properties).
   */
  List<String> hsmDirs() {
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    List<String> ids = new ArrayList<>();
    try (Stream<Path> s = Files.list(dir)) {
      s.filter(Files::isDirectory).map(p -> p.getFileName().toString()).filter(Home::isHsmId).forEach(ids::add);
    } catch (IOException e) {
      return List.of();
    }
    ids.sort(Home::compareHsmIds);
    return ids;
  }

  /** Orders {@code hsm2} before {@code hsm10}. */
  static int compareHsmIds(String a, String b) {
    return Long.compare(Long.parseLong(a.substring(3)), Long.parseLong(b.substring(3)));
  }
}
