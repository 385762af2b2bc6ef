package io.hsmbridge.cli;

import io.hsmbridge.agent.membership.ClusterCa;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.pkcs11.HsmException;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code containers kit}: everything a cluster of hsmbridge containers needs that must not be in an
 * image (softhsm-docker/README.md): a cluster CA, each member's TLS files, each HSM's PINs, the shared
 * environment ({@code cluster.env}) and a {@code compose.yaml} for docker compose and podman-compose.
 * Secrets are created 0600 in 0700 directories and never printed.
 */
@Command(name = "containers", description = "Files for running the cluster in containers (softhsm-docker/).",
    subcommands = {ContainerKitCommand.Kit.class, ContainerKitCommand.Status.class, ContainerKitCommand.Restore.class})
final class ContainerKitCommand extends CliCommand {
  /** The image softhsm-docker/build makes. */
  static final String DEFAULT_IMAGE = "localhost/hsmbridge:dev";
  static final String BRIDGE = "bridge";
  /** Ports inside every container (the image's contract). */
  static final int MEMBER_PORT = 5701;
  static final int RAFT_PORT = 7800;
  static final int BRIDGE_PORT = 7701;
  static final int MAX_HSMS = 16;
  /** Where every HSM container mounts the cluster's shared backup store (the image's entrypoint: backup.dir). */
  static final String BACKUP_DIR = "/var/lib/hsmbridge-backups";

  private static final int PIN_LENGTH = 24;
  private static final char[] PIN_ALPHABET =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".toCharArray();
  private static final SecureRandom RANDOM = new SecureRandom();

  @Override
  protected int execute() {
    throw usage("missing subcommand; one of: kit, status, restore");
  }

  /**
   * {@code containers restore}: a new cluster of containers from a backup (docs/disaster-recovery.md). On this
   * host, before the kit's first start, hsm1's token is made with the kit's PINs and given the backup as
   * {@code backup restore} does (the PBK from the escrow through the recovery token, a new cluster key, the
   * backup authenticated inside the token, its Raft log starting after the backup). The token and Raft
   * directories land in {@code KIT/restore/hsm1}, for hsm1's volume ({@code softhsm-docker/cluster up
   * --restored} copies them in); the other HSMs then join one by one and restore the new cluster's first backup.
   */
  @Command(name = "restore", description = {
      "Restore a backup onto hsm1 of a new kit, before its first start: hsm1's token and Raft directory go to"
          + " KIT/restore/hsm1 (softhsm-docker/cluster up --restored starts the cluster from them).",
      "Needs the escrow and the recovery token (docs/disaster-recovery.md)."})
  static final class Restore extends CliCommand {
    @Parameters(index = "0", paramLabel = "FILE|ID", description = "A backup file (.hbk), or a backup id in --store.")
    String backup;

    @Option(names = "--kit", required = true, paramLabel = "DIR", description = "A kit from 'containers kit' whose"
        + " cluster has never started.")
    Path kit;

    @Option(names = "--store", paramLabel = "DIR", description = "The store that holds the backup id.")
    Path store;

    @Option(names = "--escrow", required = true, paramLabel = "FILE", description = "The escrow of the backup's cluster.")
    Path escrow;

    @Option(names = "--recovery-dir", required = true, paramLabel = "DIR", description = "The recovery token the escrow is for.")
    Path recoveryDir;

    @Override
    protected int execute() throws Exception {
      Path hsm1Secrets = kit.resolve(Home.FIRST_HSM).resolve("secrets");
      if (!Files.isRegularFile(kit.resolve("compose.yaml")) || !Files.isRegularFile(hsm1Secrets.resolve("so-pin"))) {
        throw new CliException(kit + " is no kit of 'hsmbridge containers kit'");
      }
      NodeDir hsm1 = new NodeDir(Home.FIRST_HSM, kit.resolve("restore").resolve(Home.FIRST_HSM));
      if (Files.exists(hsm1.dir())) {
        throw new CliException(hsm1.dir() + " exists: this kit was restored already (make a new kit to restore again)");
      }
      Path file = BackupSource.resolve(backup, store);
      Path library = NodeLayout.findLibrary(cli().env());
      ProgressBar progress = new ProgressBar(cli().err(), cli().terminal() != null, "restoring onto hsm1: keys");
      try {
        NodeLayout.privateDir(hsm1.dir());
        NodeLayout.privateDir(hsm1.tokensDir());
        NodeLayout.privateDir(hsm1.raftDir());
        // The container's token: its label and the PINs the kit gives hsm1's container (softhsm-docker/README.md).
        for (String[] pin : new String[][] {{"so-pin", hsm1.soPin().toString()}, {"user-pin", hsm1.userPin().toString()}}) {
          Files.copy(hsm1Secrets.resolve(pin[0]), Path.of(pin[1]));
          Files.setPosixFilePermissions(Path.of(pin[1]), java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        }
        NodeLayout.writeIfChanged(hsm1.softhsmConf(), NodeLayout.softhsmConf(hsm1));
        NodeLayout.writeIfChanged(hsm1.nodeProperties(), NodeProperties.directToken(hsm1, library));
        RecoveryCeremony.restoreOnto(hsm1, file, escrow, recoveryDir, out(), progress);
      } catch (IOException | RuntimeException e) {
        DemoCommand.deleteTree(hsm1.dir()); // nothing half-made: the restore can be run again
        throw e;
      } finally {
        progress.finish();
      }
      // Only what the container needs: the PINs come from the kit's secrets, the rest is the container's own.
      for (Path p : List.of(hsm1.soPin(), hsm1.userPin(), hsm1.softhsmConf(), hsm1.nodeProperties())) {
        Files.deleteIfExists(p);
      }
      // The audit log the restore began, where the container's agent keeps it (state.dir=/var/lib/hsmbridge/state):
      // the token's audit anchor already counts its line, so the container must find it there.
      NodeLayout.privateDir(hsm1.dir().resolve("state"));
      Files.move(hsm1.auditLog(), hsm1.dir().resolve("state").resolve("audit.log"));
      Files.writeString(kit.resolve("compose.yaml"), restoredLayout(Files.readString(kit.resolve("compose.yaml"))));
      out().println("hsm1's token, Raft directory and audit log are in " + hsm1.dir() + " (tokens/, raft/, state/)");
      out().println("start the cluster from them: softhsm-docker/cluster up --dir " + kit + " --restored");
      return ExitCodes.OK;
    }

    /**
     * The kit's compose file for a restored cluster: hsm1 a Raft group of one (it holds the restored token, and
     * creates no cluster key), each later HSM joining the ones before it (HSMBRIDGE_RAFT_JOIN; a restarted
     * member does not ask again). docs/containers.md, "Backups and restoring a cluster of containers".
     */
    static String restoredLayout(String compose) {
      java.util.regex.Matcher ids = java.util.regex.Pattern.compile("\n      HSMBRIDGE_HSM_ID: (hsm[0-9]+)\n").matcher(compose);
      List<String> hsms = new ArrayList<>();
      while (ids.find()) {
        hsms.add(ids.group(1));
      }
      String out = compose.replace("      # only the first HSM of a new cluster creates the cluster key (a no-op once its token holds it)\n", "")
          .replace("      HSMBRIDGE_CREATE_KEY: \"true\"\n", "");
      List<String> peers = new ArrayList<>();
      for (String h : hsms) {
        peers.add(h + "@" + h + ":" + RAFT_PORT);
        String restored = "      HSMBRIDGE_RAFT_PEERS: " + String.join(",", peers) + "\n"
            + (peers.size() > 1 ? "      HSMBRIDGE_RAFT_JOIN: \"true\"\n" : "");
        out = out.replace("\n      HSMBRIDGE_HSM_ID: " + h + "\n", "\n      HSMBRIDGE_HSM_ID: " + h + "\n" + restored);
      }
      return out;
    }
  }

  @Command(name = "kit", description = {
      "Write a cluster CA, TLS files and PINs for hsm1..hsmN and the bridge, cluster.env and compose.yaml into DIR.",
      "Run it with: cd DIR && podman-compose up -d (or docker compose up -d), or softhsm-docker/cluster up."})
  static final class Kit extends CliCommand {
    @Option(names = "--hsms", paramLabel = "N", defaultValue = "3", description = "HSM containers (default 3).")
    int hsms;

    @Option(names = "--dir", paramLabel = "DIR", required = true,
        description = "Where to write the kit (created 0700; must be missing or empty unless --force).")
    Path dir;

    @Option(names = "--name", paramLabel = "CLUSTER",
        description = "Cluster name, also the compose project (lower-case letters, digits, '-', '_';"
            + " default hsmbridge-<random>).")
    String name;

    @Option(names = "--durability", paramLabel = "D", defaultValue = "2",
        description = "A change is acknowledged once min(D, HSMs) HSMs applied it (default 2).")
    int durability;

    @Option(names = "--image", paramLabel = "IMAGE", defaultValue = DEFAULT_IMAGE,
        description = "Image of every service (default " + DEFAULT_IMAGE + ").")
    String image;

    @Option(names = "--port", paramLabel = "PORT", defaultValue = "7701",
        description = "Host port for the bridge, published on 127.0.0.1 only (default 7701).")
    int port;

    @Option(names = "--force", description = "Write into a non-empty DIR, replacing an earlier kit's files.")
    boolean force;

    @Override
    protected int execute() throws IOException {
      if (hsms < 1 || hsms > MAX_HSMS) {
        throw usage("--hsms must be 1.." + MAX_HSMS);
      }
      if (durability < 1 || durability > MAX_HSMS) {
        // As on the bridge: a change needs min(durability, HSMs in the cluster), so more than N is allowed.
        throw usage("--durability must be 1.." + MAX_HSMS);
      }
      if (port < 1 || port > 65535) {
        throw usage("--port must be 1..65535");
      }
      String cluster = name != null ? name : "hsmbridge-" + HexFormat.of().formatHex(randomBytes(4));
      if (!cluster.matches("[a-z0-9][a-z0-9_-]{0,62}")) {
        throw usage("--name must be 1..63 lower-case letters, digits, '-' or '_', starting with a letter or digit");
      }
      if (image.isBlank() || image.chars().anyMatch(c -> Character.isWhitespace(c) || c == '"' || c == '\\')) {
        throw usage("--image must be an image reference");
      }
      Path target = dir.toAbsolutePath().normalize();
      prepare(target, force);
      Layout layout = new Layout(cluster, hsms, durability, image, port);
      write(target, layout);
      PrintStream out = out();
      out.println("wrote a kit for cluster " + cluster + " (" + hsms + " HSMs + bridge) in " + target);
      out.println("  ca/ca-key.pem       the cluster CA key: needed only to issue certificates later; keep it offline");
      out.println("  <node>/tls/         cert.pem, key.pem (0600), ca.pem: mounted read-only at /etc/hsmbridge/tls");
      out.println("  hsmN/secrets/       user-pin, so-pin (0600): compose secrets at /run/secrets/hsmbridge-*-pin");
      out.println("  cluster.env         cluster name, members, Raft peers");
      out.println("  compose.yaml        " + hsms + " HSM services + bridge; bridge on 127.0.0.1:" + port);
      out.println();
      out.println("start it:  cd " + target + " && podman-compose -p " + cluster + " up -d   (or: docker compose up -d),");
      out.println("           or: softhsm-docker/cluster up --dir " + target);
      out.println("then:      ./hsmbridge cluster activate --endpoint 127.0.0.1:" + port + " --ca "
          + target.resolve("ca").resolve(ClusterCa.CA_CERT_FILE) + "   (the endpoint runs TLS under the kit's CA)");
      return ExitCodes.OK;
    }
  }

  /**
   * {@code containers status}: what {@code status} shows for a local cluster, for a bridge known only by its
   * address (a container cluster has no local data directory and no pids on this host).
   */
  @Command(name = "status", description = "Per HSM of a bridge at --endpoint: state, applied sequence, objects, load,"
      + " last error. Exit code 3 when the bridge does not answer.")
  static final class Status extends CliCommand {
    @Option(names = "--endpoint", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:7701",
        description = "The bridge (default: ${DEFAULT-VALUE}, where softhsm-docker/cluster publishes it).")
    String endpoint;

    @Option(names = "--ca", paramLabel = "FILE", required = true,
        description = "The cluster CA certificate to pin (the kit's ca/ca.pem): the bridge's endpoint runs TLS.")
    Path ca;

    @Override
    protected int execute() {
      Endpoint ep;
      try {
        ep = Endpoint.parse(endpoint);
      } catch (IllegalArgumentException e) {
        throw usage("invalid --endpoint: " + e.getMessage());
      }
      ClusterStatus st;
      try (BridgeAdmin admin = BridgeAdmin.TCP.connect(ep.withCa(ca), BridgeAdmin.POLL_TIMEOUT)) {
        st = admin.status();
      } catch (HsmBridgeException e) {
        throw new CliException(ExitCodes.NOT_RUNNING, "no bridge answers at " + endpoint + ": " + e.getMessage(), null);
      }
      PrintStream out = out();
      out.println("bridge " + endpoint + ": " + st.healthy() + " of " + st.hsms().size() + " HSMs healthy;"
          + " durability " + st.durability() + ", a key change needs " + st.required());
      out.println();
      HsmTable.full(out, List.of(), st, java.util.Map.of());
      return ExitCodes.OK;
    }
  }

  /** What the kit describes: pure data, so that the texts can be derived and tested without files. */
  record Layout(String cluster, int hsms, int durability, String image, int port) {
    List<String> hsmIds() {
      List<String> ids = new ArrayList<>();
      for (int i = 1; i <= hsms; i++) {
        ids.add("hsm" + i);
      }
      return ids;
    }

    List<String> nodes() {
      List<String> n = new ArrayList<>(hsmIds());
      n.add(BRIDGE);
      return n;
    }

    /** {@code hsm1:5701,...,bridge:5701}: container host names on the compose network. */
    String members() {
      return String.join(",", nodes().stream().map(n -> n + ":" + MEMBER_PORT).toList());
    }

    String raftPeers() {
      return String.join(",", hsmIds().stream().map(h -> h + "@" + h + ":" + RAFT_PORT).toList());
    }

    String clusterEnv() {
      return "# hsmbridge cluster " + cluster + ": read by every service of compose.yaml (env_file). No secrets here.\n"
          + "HSMBRIDGE_CLUSTER_NAME=" + cluster + "\n"
          + "HSMBRIDGE_MEMBERS=" + members() + "\n"
          + "HSMBRIDGE_RAFT_PEERS=" + raftPeers() + "\n";
    }

    /**
     * A compose file for {@code docker compose} and {@code podman-compose} (1.0.3 checked): one network,
     * one named volume per node, TLS files mounted read-only, PINs as file secrets, the bridge's port on
     * the host's loopback only. Paths are relative to the kit directory.
     */
    /** The host port of an HSM host's front door: the bridge's port + the HSM's number. */
    int frontDoorPort(String hsmId) {
      return port + Integer.parseInt(hsmId.substring("hsm".length()));
    }

    String compose() {
      StringBuilder b = new StringBuilder()
          .append("# hsmbridge cluster ").append(cluster).append(": ").append(hsms)
          .append(" HSM containers (agent + SoftHSM2 token each) and the bridge.\n")
          .append("# Written by 'hsmbridge containers kit'; see softhsm-docker/README.md. PINs are file secrets,\n")
          .append("# never environment variables; the bridge and each HSM host's front door are published on the host's\n")
          .append("# loopback only.\n")
          .append("name: ").append(cluster).append('\n')
          .append("services:\n");
      for (String h : hsmIds()) {
        b.append("  ").append(h).append(":\n");
        common(b, h);
        b.append("    environment:\n")
            .append("      HSMBRIDGE_ROLE: agent\n")
            .append("      HSMBRIDGE_HSM_ID: ").append(h).append('\n')
            .append("      HSMBRIDGE_HOST: ").append(h).append('\n')
            .append("      HSMBRIDGE_DURABILITY: \"").append(durability).append("\"\n");
        if (h.equals(Home.FIRST_HSM)) {
          b.append("      # only the first HSM of a new cluster creates the cluster key (a no-op once its token holds it)\n")
              .append("      HSMBRIDGE_CREATE_KEY: \"true\"\n");
        }
        // Each HSM host is a front door too: its client endpoint on the host's loopback, the bridge's port + N.
        b.append("    ports:\n")
            .append("      - \"127.0.0.1:").append(frontDoorPort(h)).append(':').append(BRIDGE_PORT).append("\"\n");
        b.append("    secrets:\n")
            .append("      - source: ").append(h).append("-user-pin\n")
            .append("        target: hsmbridge-user-pin\n")
            .append("      - source: ").append(h).append("-so-pin\n")
            .append("        target: hsmbridge-so-pin\n");
      }
      b.append("  ").append(BRIDGE).append(":\n");
      common(b, BRIDGE);
      b.append("    environment:\n")
          .append("      HSMBRIDGE_ROLE: bridge\n")
          .append("      HSMBRIDGE_HOST: ").append(BRIDGE).append('\n')
          .append("      HSMBRIDGE_DURABILITY: \"").append(durability).append("\"\n")
          .append("    ports:\n")
          .append("      - \"127.0.0.1:").append(port).append(':').append(BRIDGE_PORT).append("\"\n")
          .append("    depends_on:\n");
      for (String h : hsmIds()) {
        b.append("      - ").append(h).append('\n');
      }
      b.append("networks:\n")
          .append("  hsmbridge: {}\n")
          .append("volumes:\n");
      for (String n : nodes()) {
        b.append("  ").append(n).append("-data: {}\n");
      }
      b.append("  backups: {}\n");
      b.append("secrets:\n");
      for (String h : hsmIds()) {
        for (String kind : List.of("user", "so")) {
          b.append("  ").append(h).append('-').append(kind).append("-pin:\n")
              .append("    file: ./").append(h).append("/secrets/").append(kind).append("-pin\n");
        }
      }
      return b.toString();
    }

    private void common(StringBuilder b, String node) {
      b.append("    image: ").append(image).append('\n')
          .append("    hostname: ").append(node).append('\n')
          .append("    networks: [hsmbridge]\n")
          .append("    env_file: cluster.env\n")
          .append("    volumes:\n")
          .append("      - ").append(node).append("-data:/var/lib/hsmbridge\n")
          .append("      - ./").append(node).append("/tls:/etc/hsmbridge/tls:ro\n");
      if (!node.equals(BRIDGE)) {
        // One backup store for every HSM (docs/backups.md): a joining or lagging HSM restores what another made.
        b.append("      - backups:").append(BACKUP_DIR).append('\n');
      }
      b.append("    restart: unless-stopped\n")
          .append("    stop_grace_period: 30s\n");
    }
  }

  /**
   * Makes {@code dir} (0700). A non-empty directory is refused unless {@code force}; with it, only an
   * earlier kit's own entries are deleted (never anything else in the directory).
   */
  static void prepare(Path dir, boolean force) throws IOException {
    if (Files.exists(dir) && !Files.isDirectory(dir)) {
      throw new CliException(dir + " exists and is not a directory");
    }
    if (Files.isDirectory(dir) && !isEmpty(dir)) {
      if (!force) {
        throw new CliException(dir + " is not empty (an earlier kit?); choose another --dir, or pass --force to replace"
            + " the kit's files in it (its ca/ and PINs are then new: existing volumes keep their tokens)");
      }
      try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
        for (Path p : entries) {
          String n = p.getFileName().toString();
          if (n.equals("ca") || n.equals(BRIDGE) || n.matches("hsm[0-9]+") || n.equals("cluster.env")
              || n.equals("compose.yaml")) {
            deleteTree(p);
          }
        }
      }
    }
    NodeLayout.privateDir(dir);
  }

  /** Writes the kit into the prepared directory. */
  static void write(Path dir, Layout layout) throws IOException {
    ClusterCa ca;
    try {
      ca = ClusterCa.create(dir.resolve("ca"), layout.cluster());
      for (String node : layout.nodes()) {
        Path nodeDir = dir.resolve(node);
        NodeLayout.privateDir(nodeDir);
        Path tls = nodeDir.resolve("tls");
        NodeLayout.privateDir(tls);
        // The containers mount these files under fixed names; ClusterCa names them after the member.
        ClusterCa.MemberKind kind = node.equals(BRIDGE) ? ClusterCa.MemberKind.FRONT_DOOR : ClusterCa.MemberKind.AGENT;
        // Every node's certificate also serves its client endpoint (the bridge's, and each HSM host's front
        // door), which the host reaches on a published port at 127.0.0.1: its SANs must name what clients dial.
        List<String> hosts = List.of(node, "localhost", "127.0.0.1");
        ClusterCa.MemberFiles f = ca.issueMember(node, kind, hosts, tls);
        Files.move(f.certificate(), tls.resolve("cert.pem"));
        Files.move(f.key(), tls.resolve("key.pem"));
      }
    } catch (HsmException e) {
      throw new CliException(e.getMessage());
    }
    for (String h : layout.hsmIds()) {
      Path secrets = dir.resolve(h).resolve("secrets");
      NodeLayout.privateDir(secrets);
      writePin(secrets.resolve("user-pin"));
      writePin(secrets.resolve("so-pin"));
    }
    writePublic(dir.resolve("cluster.env"), layout.clusterEnv());
    writePublic(dir.resolve("compose.yaml"), layout.compose());
  }

  private static void writePin(Path file) throws IOException {
    byte[] pin = new byte[PIN_LENGTH];
    try {
      for (int i = 0; i < pin.length; i++) {
        pin[i] = (byte) PIN_ALPHABET[RANDOM.nextInt(PIN_ALPHABET.length)];
      }
      PrivateFiles.create(file, pin);
    } finally {
      Arrays.fill(pin, (byte) 0);
    }
  }

  /** Not secret: readable by others (inside the kit's 0700 directory). */
  private static void writePublic(Path file, String text) throws IOException {
    Files.writeString(file, text, StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
  }

  private static boolean isEmpty(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.findAny().isEmpty();
    }
  }

  private static void deleteTree(Path p) throws IOException {
    try (Stream<Path> s = Files.walk(p)) {
      for (Path q : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(q);
      }
    }
  }

  private static byte[] randomBytes(int n) {
    byte[] b = new byte[n];
    RANDOM.nextBytes(b);
    return b;
  }
}
