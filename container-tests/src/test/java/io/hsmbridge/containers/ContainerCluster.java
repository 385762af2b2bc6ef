package io.hsmbridge.containers;

import static io.hsmbridge.containers.Report.ms;
import static io.hsmbridge.containers.Report.seconds;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.command.InspectContainerResponse;
import com.github.dockerjava.api.exception.NotFoundException;
import com.github.dockerjava.api.model.ContainerNetwork;
import com.github.dockerjava.api.model.ExposedPort;
import com.github.dockerjava.api.model.PortBinding;
import com.github.dockerjava.api.model.Ports;
import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.HsmBridgeException;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.Container;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.Network;
import org.testcontainers.images.builder.Transferable;
import org.testcontainers.utility.DockerImageName;

/**
 * A real hsmbridge cluster in containers: hsm1..hsm3 (each an agent on its own SoftHSM2 token, in its own
 * container) and the bridge, on a network this fixture creates, built from the image
 * {@code localhost/hsmbridge:dev} (softhsm-docker/README.md). The host reaches only the bridge's port,
 * published on 127.0.0.1; every other byte flows on the fixture's own network.
 *
 * <p>{@link #start()} builds the image when it is missing or older than the jar (by running
 * {@code softhsm-docker/build}), writes the cluster CA, member certificates and PINs with {@code hsmbridge
 * containers kit} (copied into the containers, never mounted from the host), starts the four containers and
 * waits for their ready lines, activates the cluster
 * (PRECO {@code admin}/{@code password} → {@code cluster.activate}), creates the crypto user {@code alice}
 * and logs both in. {@link #close()} saves every container's log to {@code target/container-logs/}, removes
 * the containers (and their volumes) and the network, and writes the report: Ryuk is disabled, so nothing
 * else would. Containers carry the label {@value #LABEL} and names starting {@value #NAME_PREFIX} (.ci/run
 * removes leftovers by that label).
 *
 * <p>Fault injection goes through the engine's API ({@link #kill}, {@link #pause}, {@link #disconnect}...);
 * the cluster is driven only through the bridge, as a client would.
 */
final class ContainerCluster implements AutoCloseable {
  static final String IMAGE = "localhost/hsmbridge:dev";
  static final String LABEL = "io.hsmbridge.container-tests";
  static final String NAME_PREFIX = "hsmbridge-ct-";
  static final List<String> HSMS = List.of("hsm1", "hsm2", "hsm3");
  static final String BRIDGE = "bridge";
  static final int BRIDGE_PORT = 7701;
  static final String ADMIN = "admin";
  static final String CRYPTO_USER = "alice";
  /** Readiness: the entrypoint prints this when the node serves (softhsm-docker/README.md). */
  static final String READY = "hsmbridge-container: ready ";
  static final Duration CLIENT_TIMEOUT = Duration.ofSeconds(60);
  private static final Duration START_TIMEOUT = Duration.ofMinutes(5);
  private static final SecureRandom RANDOM = new SecureRandom();

  private final String run = HexFormat.of().formatHex(randomBytes(3));
  private final String clusterName = "ct-" + run;
  private final Path repo;
  private final Path kit;
  private final DockerClient docker;
  private final Map<String, GenericContainer<?>> nodes = new LinkedHashMap<>();
  /** Each HSM's address on the network, to give it back the same one on reconnect. */
  private final Map<String, String> addresses = new TreeMap<>();
  private final String adminPassword;
  private final String userPassword;
  /** Null for a new cluster; else the backup this cluster is restored from (docs/disaster-recovery.md). */
  private final FromBackup fromBackup;
  private Network network;
  private String networkId;
  private volatile String adminSession;
  private volatile String userSession;
  private BridgeClient control;
  private long activationSeq;
  private boolean closed;

  private ContainerCluster(FromBackup fromBackup) {
    this.fromBackup = fromBackup;
    this.adminPassword = fromBackup != null ? fromBackup.adminPassword()
        : "admin password " + HexFormat.of().formatHex(randomBytes(6));
    this.userPassword = fromBackup != null ? fromBackup.userPassword()
        : "alice password " + HexFormat.of().formatHex(randomBytes(6));
    repo = findRepo();
    try {
      docker = DockerClientFactory.instance().client();
    } catch (RuntimeException e) {
      throw new IllegalStateException("no container engine reachable (DOCKER_HOST=" + System.getenv("DOCKER_HOST")
          + "); CI=true needs one: .ci/run starts podman's API socket (README.md, 'Tests and CI')", e);
    }
    try {
      Path target = Files.createDirectories(Path.of("target").toAbsolutePath());
      kit = Files.createTempDirectory(target, "container-kit-");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * A cluster of containers restored from a backup, as {@code softhsm-docker/cluster up --restored} starts
   * one: {@code hsmbridge containers restore} gives hsm1's token the backup on the host; hsm1 starts alone
   * (a Raft group of one) with the bridge, makes the new cluster's first backup, and hsm2 and hsm3 then join
   * one by one, each restoring that backup. The users are the backup's: they log in with these passwords.
   */
  record FromBackup(Path backupFile, Path escrow, Path recoveryDir, String adminPassword, String userPassword) {}

  /** Builds the image if needed, starts hsm1..hsm3 and the bridge, activates the cluster and logs in. */
  static ContainerCluster start() {
    return start(null);
  }

  /** As {@link #start()}, or, with {@code fromBackup}, a cluster restored from it (no activation). */
  static ContainerCluster start(FromBackup fromBackup) {
    ContainerCluster c = new ContainerCluster(fromBackup);
    try {
      c.boot();
      return c;
    } catch (RuntimeException | Error e) {
      c.close();
      throw e;
    }
  }

  private void boot() {
    long t0 = System.nanoTime();
    String engine = engineName();
    Path jar = repo.resolve("cli/target/hsmbridge.jar");
    String image = ensureImage(engine, jar);
    long imageMs = ms(t0);
    writeKit(jar);
    if (fromBackup != null) {
      runCli(jar, "containers", "restore", "--kit", kit.toString(), fromBackup.backupFile().toString(), "--escrow",
          fromBackup.escrow().toString(), "--recovery-dir", fromBackup.recoveryDir().toString());
    }
    network = Network.builder()
        .createNetworkCmdModifier(cmd -> cmd.withName(NAME_PREFIX + run).withLabels(Map.of(LABEL, run)))
        .build();
    networkId = network.getId();
    for (String hsm : HSMS) {
      nodes.put(hsm, agent(hsm));
    }
    nodes.put(BRIDGE, bridge());
    // Joiners wait for the CA to certify their transport key: sign each request while the containers start.
    Map<String, GenericContainer<?>> hsmNodes = new LinkedHashMap<>();
    HSMS.forEach(h -> hsmNodes.put(h, nodes.get(h)));
    try (TransportCertifier certifier = new TransportCertifier(jar, kit, hsmNodes)) {
      long s0 = System.nanoTime();
      if (fromBackup != null) {
        bootRestored(t0, s0);
        return;
      }
      // All at once: an agent waits for its Raft peers, and hsm1 creates the cluster key the others fetch.
      // The first container that fails ends the wait (the others would wait out their timeout).
      ExecutorService pool = Executors.newFixedThreadPool(nodes.size(), r -> {
        Thread t = new Thread(r, "container-start");
        t.setDaemon(true);
        return t;
      });
      try {
        List<CompletableFuture<Void>> starts = nodes.values().stream()
            .map(c -> CompletableFuture.runAsync(c::start, pool)).toList();
        CompletableFuture<Void> firstFailure = new CompletableFuture<>();
        starts.forEach(f -> f.whenComplete((v, e) -> {
          if (e != null) {
            firstFailure.completeExceptionally(e);
          }
        }));
        CompletableFuture.anyOf(CompletableFuture.allOf(starts.toArray(CompletableFuture[]::new)), firstFailure)
            .get(START_TIMEOUT.toSeconds() + 30, TimeUnit.SECONDS);
      } catch (Exception e) {
        Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
        throw new IllegalStateException("the containers did not all get ready: " + cause + tails(), cause);
      } finally {
        pool.shutdown();
      }
      long startMs = ms(s0);
      for (String hsm : HSMS) {
        addresses.put(hsm, inspect(hsm).getNetworkSettings().getNetworks().values().iterator().next().getIpAddress());
      }
      control = connect();
      awaitServing(HSMS, Duration.ofSeconds(120));
      long a0 = System.nanoTime();
      activate();
      Report.note("engine " + engine + ", image " + image + " (" + seconds(imageMs) + " to check/build); network "
          + NAME_PREFIX + run + "; containers started and ready in " + seconds(startMs) + "; HSM addresses " + addresses
          + "; bridge on 127.0.0.1:" + bridgePort() + "; activated (sequence " + activationSeq + "), admin and crypto"
          + " user logged in in " + seconds(ms(a0)) + "; fixture " + seconds(ms(t0)));
    }
  }

  /**
   * hsm1 (on the restored token) and the bridge first; once hsm1 serves and its first backup of the new cluster
   * is READY in the shared store, hsm2 and then hsm3 join, each restoring it before it applies the log.
   */
  private void bootRestored(long t0, long s0) {
    startAll(List.of("hsm1", BRIDGE));
    control = connect();
    awaitServing(List.of("hsm1"), Duration.ofSeconds(120));
    await("the new cluster's first backup in the shared store", Duration.ofSeconds(120), 500, this::backupFiles,
        files -> !files.isEmpty());
    for (String hsm : List.of("hsm2", "hsm3")) {
      startAll(List.of(hsm));
      awaitServing(HSMS.subList(0, HSMS.indexOf(hsm) + 1), Duration.ofSeconds(120));
    }
    for (String hsm : HSMS) {
      addresses.put(hsm, inspect(hsm).getNetworkSettings().getNetworks().values().iterator().next().getIpAddress());
    }
    adminSession = login(ADMIN, adminPassword);
    userSession = login(CRYPTO_USER, userPassword);
    Report.note("restored cluster " + clusterName + ": hsm1 from " + fromBackup.backupFile().getFileName()
        + ", hsm2 and hsm3 joined from the new cluster's first backup; ready in " + seconds(ms(s0)) + "; fixture "
        + seconds(ms(t0)));
  }

  private java.util.List<Path> backupFiles() {
    try (Stream<Path> files = Files.list(backups())) {
      return files.filter(f -> f.getFileName().toString().endsWith(".hbk")).toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Starts these nodes at once and waits until each is ready; the first that fails ends the wait. */
  private void startAll(List<String> names) {
    ExecutorService pool = Executors.newFixedThreadPool(names.size(), r -> {
      Thread t = new Thread(r, "container-start");
      t.setDaemon(true);
      return t;
    });
    try {
      List<CompletableFuture<Void>> starts = names.stream().map(nodes::get)
          .map(c -> CompletableFuture.runAsync(c::start, pool)).toList();
      CompletableFuture.allOf(starts.toArray(CompletableFuture[]::new)).get(START_TIMEOUT.toSeconds() + 30, TimeUnit.SECONDS);
    } catch (Exception e) {
      Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
      throw new IllegalStateException(names + " did not get ready: " + cause + tails(), cause);
    } finally {
      pool.shutdown();
    }
  }

  // ------------------------------------------------------------------------------------------ image

  private String engineName() {
    try {
      String components = String.valueOf(docker.versionCmd().exec().getComponents());
      return components.contains("Podman") ? "podman" : "docker";
    } catch (RuntimeException e) {
      return "docker";
    }
  }

  /** Runs softhsm-docker/build when the image is missing or older than the jar, the Dockerfile or the entrypoint. */
  private String ensureImage(String engine, Path jar) {
    if (!Files.isRegularFile(jar)) {
      throw new IllegalStateException("no " + jar + ": build it first (mvn -B package -pl cli -am, or mvn -B verify)");
    }
    Instant newest = Stream.of(jar, repo.resolve("softhsm-docker/Dockerfile"), repo.resolve("softhsm-docker/entrypoint"))
        .filter(Files::exists).map(ContainerCluster::modified).max(Comparator.naturalOrder()).orElseThrow();
    Instant created = imageCreated();
    if (created != null && !created.isBefore(newest)) {
      return IMAGE + " (up to date, created " + created + ")";
    }
    String why = created == null ? "missing" : "older than " + newest;
    System.out.println("[containers] " + IMAGE + " is " + why + ": softhsm-docker/build --jar " + jar);
    long t0 = System.nanoTime();
    ProcessBuilder pb = new ProcessBuilder(repo.resolve("softhsm-docker/build").toString(), "--jar", jar.toString())
        .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.INHERIT);
    pb.environment().put("HSMBRIDGE_ENGINE", engine);
    try {
      Process p = pb.start();
      if (!p.waitFor(20, TimeUnit.MINUTES)) {
        p.destroyForcibly();
        throw new IllegalStateException("softhsm-docker/build did not finish within 20 minutes");
      }
      if (p.exitValue() != 0) {
        throw new IllegalStateException("softhsm-docker/build failed with exit code " + p.exitValue() + " (output above)");
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot run softhsm-docker/build", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while building the image", e);
    }
    if (imageCreated() == null) {
      throw new IllegalStateException("softhsm-docker/build succeeded but " + engine + " at DOCKER_HOST="
          + System.getenv("DOCKER_HOST") + " has no " + IMAGE);
    }
    return IMAGE + " (" + why + ": built in " + seconds(ms(t0)) + ")";
  }

  private Instant imageCreated() {
    try {
      return Instant.parse(docker.inspectImageCmd(IMAGE).exec().getCreated());
    } catch (NotFoundException e) {
      return null;
    }
  }

  private static Instant modified(Path p) {
    try {
      return Files.getLastModifiedTime(p).toInstant();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static Path findRepo() {
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.isExecutable(p.resolve("softhsm-docker/build"))) {
        return p;
      }
    }
    throw new IllegalStateException("no softhsm-docker/build above " + Path.of("").toAbsolutePath());
  }

  // ------------------------------------------------------------------------------------------ containers

  /**
   * The cluster CA, each member's certificate and key, each HSM's PINs: written by {@code hsmbridge containers
   * kit} (run from the shaded jar, as an operator would) into {@link #kit}, which must be empty.
   */
  private void writeKit(Path jar) {
    runCli(jar, "containers", "kit", "--hsms", String.valueOf(HSMS.size()), "--dir", kit.toString(), "--name", clusterName);
  }

  /** Runs the hsmbridge command line from the shaded jar, as an operator would; its output when it fails. */
  static String runCli(Path jar, String... args) {
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    List<String> cmd = new ArrayList<>(List.of(java.toString(), "-jar", jar.toString()));
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    try {
      Process p = pb.start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new IllegalStateException("hsmbridge " + String.join(" ", args) + " failed: " + out);
      }
      return out;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot run hsmbridge " + args[0], e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Where every HSM container mounts the shared backup store (the image's entrypoint makes it backup.dir). */
  static final String BACKUP_DIR = "/var/lib/hsmbridge-backups";

  /** The host directory behind {@link #BACKUP_DIR}: one for every HSM of this cluster. */
  Path backups() {
    try {
      return Files.createDirectories(kit.resolve("backups"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private GenericContainer<?> agent(String hsm) {
    // Restored: hsm1 starts as a group of one, and each later HSM joins the ones before it.
    List<String> peers = fromBackup == null ? HSMS : HSMS.subList(0, HSMS.indexOf(hsm) + 1);
    GenericContainer<?> c = node(hsm)
        .withEnv("HSMBRIDGE_ROLE", "agent")
        .withEnv("HSMBRIDGE_HSM_ID", hsm)
        .withEnv("HSMBRIDGE_RAFT_PEERS", String.join(",", peers.stream().map(h -> h + "@" + h + ":7800").toList()))
        .withCopyToContainer(secret(kit.resolve(hsm).resolve("secrets/user-pin")), "/run/secrets/hsmbridge-user-pin")
        .withCopyToContainer(secret(kit.resolve(hsm).resolve("secrets/so-pin")), "/run/secrets/hsmbridge-so-pin")
        .withEnv("HSMBRIDGE_DURABILITY", "2")
        // More of the agents' own logging while a problem is looked into, e.g. -Dhsmbridge.ratis.log=INFO.
        .withEnv("HSMBRIDGE_JAVA_OPTS", ("-Xmx384m " + System.getenv().getOrDefault("HSMBRIDGE_CT_AGENT_OPTS", "")).trim())
        // The backup store every HSM shares (the kit's compose file mounts one volume instead).
        .withFileSystemBind(backups().toString(), BACKUP_DIR, org.testcontainers.containers.BindMode.READ_WRITE)
        // Each HSM host is a front door too: its client endpoint, published on the host's loopback only.
        .withExposedPorts(BRIDGE_PORT)
        .withCreateContainerCmdModifier(cmd -> cmd.getHostConfig().withPortBindings(
            new PortBinding(Ports.Binding.bindIpAndPort("127.0.0.1", hostPort()), ExposedPort.tcp(BRIDGE_PORT))))
        .waitingFor(new ReadyLine("agent", hsm, START_TIMEOUT));
    if (fromBackup != null && hsm.equals("hsm1")) {
      // The token, Raft directory and audit log `containers restore` made on the host, in the volume before the first start.
      Path restored = kit.resolve("restore").resolve(hsm);
      c.withCopyFileToContainer(org.testcontainers.utility.MountableFile.forHostPath(restored.resolve("tokens"), 0700),
          "/var/lib/hsmbridge/tokens");
      c.withCopyFileToContainer(org.testcontainers.utility.MountableFile.forHostPath(restored.resolve("raft"), 0700),
          "/var/lib/hsmbridge/raft");
      // The audit log the restore began (its first line; the token's audit anchor counts it).
      c.withCopyFileToContainer(org.testcontainers.utility.MountableFile.forHostPath(restored.resolve("state"), 0700),
          "/var/lib/hsmbridge/state");
    } else if (fromBackup != null) {
      c.withEnv("HSMBRIDGE_RAFT_JOIN", "true");
    } else if (hsm.equals("hsm1")) {
      c.withEnv("HSMBRIDGE_CREATE_KEY", "true");
    }
    return c;
  }

  private GenericContainer<?> bridge() {
    return node(BRIDGE)
        .withEnv("HSMBRIDGE_ROLE", "bridge")
        .withEnv("HSMBRIDGE_DURABILITY", "2")
        .withExposedPorts(BRIDGE_PORT)
        // Published on the host's loopback only (Testcontainers would bind every interface).
        .withCreateContainerCmdModifier(cmd -> cmd.getHostConfig().withPortBindings(
            new PortBinding(Ports.Binding.bindIpAndPort("127.0.0.1", hostPort()), ExposedPort.tcp(BRIDGE_PORT))))
        .waitingFor(new ReadyLine("bridge", BRIDGE, START_TIMEOUT));
  }

  /**
   * A free port of the host's loopback below Linux's ephemeral range, for a published client port. Left to the
   * engine, podman picks one in the ephemeral range, checks it and binds it later; an outgoing connection was once
   * given it meanwhile, and the container did not start ("bind: address already in use").
   */
  private static int hostPort() {
    for (int i = 0; i < 200; i++) {
      int port = 20_000 + RANDOM.nextInt(12_000);
      try (java.net.ServerSocket s = new java.net.ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
        return port;
      } catch (IOException taken) {
        // another
      }
    }
    throw new IllegalStateException("no free port in 20000..31999 on the host's loopback");
  }

  /** What every node has: name, host name = network alias, label, cluster environment, TLS files. */
  @SuppressWarnings("resource") // closed in close()
  private GenericContainer<?> node(String name) {
    Path tls = kit.resolve(name).resolve("tls");
    return new GenericContainer<>(DockerImageName.parse(IMAGE))
        .withNetwork(network)
        .withNetworkAliases(name)
        .withLabel(LABEL, run)
        .withCreateContainerCmdModifier(cmd -> cmd.withName(NAME_PREFIX + run + "-" + name).withHostName(name))
        .withEnv("HSMBRIDGE_CLUSTER_NAME", clusterName)
        .withEnv("HSMBRIDGE_MEMBERS", String.join(",", nodes().stream().map(n -> n + ":5701").toList()))
        .withCopyToContainer(Transferable.of(read(tls.resolve("cert.pem")), 0644), "/etc/hsmbridge/tls/cert.pem")
        .withCopyToContainer(secret(tls.resolve("key.pem")), "/etc/hsmbridge/tls/key.pem")
        .withCopyToContainer(Transferable.of(read(tls.resolve("ca.pem")), 0644), "/etc/hsmbridge/tls/ca.pem");
  }

  private static List<String> nodes() {
    List<String> n = new ArrayList<>(HSMS);
    n.add(BRIDGE);
    return n;
  }

  // ------------------------------------------------------------------------------------------ users

  /**
   * PRECO admin/password → cluster.activate → the admin logs in, creates the crypto user, who logs in.
   *
   * <p>Each login waits until every HSM has applied the user change before it: the bridge acknowledges a
   * change once 2 of 3 HSMs applied it, and does not route a login by the user records' sequence (it does
   * for keys), so a login on the third HSM right after the change failed (LOGIN_FAILED, seen once in ten
   * starts: that HSM still had no users, only the PRECO).
   */
  private void activate() {
    String preco = login(ADMIN, "password");
    activationSeq = awaitApplied(control.request(new JsonObject().put("op", "cluster.activate").put("password", adminPassword)
        .put("session", preco)));
    adminSession = login(ADMIN, adminPassword);
    awaitApplied(control.request(new JsonObject().put("op", "user.create").put("name", CRYPTO_USER).put("role", "CU")
        .put("password", userPassword).put("session", adminSession)));
    userSession = login(CRYPTO_USER, userPassword);
  }

  /**
   * Waits until every HSM has applied an acknowledged change: up to its {@code seq}, or, for a reply without
   * one (cluster.activate), up to the highest sequence any HSM has applied now (the change is among them).
   */
  private long awaitApplied(JsonObject mutationReply) {
    long seq = mutationReply.containsKey("seq") ? mutationReply.getLong("seq")
        : hsmStatus().values().stream().mapToLong(st -> st.getLong("applied", 0L)).max().orElse(0L);
    await("every HSM applied sequence " + seq, Duration.ofSeconds(30), 100, this::hsmStatus,
        st -> HSMS.stream().allMatch(h -> st.containsKey(h) && st.get(h).getLong("applied", -1L) >= seq));
    return seq;
  }

  /**
   * After a restart of the bridge: a new connection, and the admin and the crypto user log in again (the
   * bridge keeps sessions in memory only, so a restarted bridge knows none of them: a client sees
   * NOT_AUTHENTICATED and logs in again).
   */
  void loginAgain() {
    synchronized (this) {
      if (control != null) {
        control.close(); // its connection went with the old bridge (noticed only by the next request)
      }
    }
    adminSession = login(ADMIN, adminPassword);
    userSession = login(CRYPTO_USER, userPassword);
  }

  private String login(String user, String password) {
    return control().request(new JsonObject().put("op", "auth.login").put("user", user).put("password", password))
        .getString("session");
  }

  /** The crypto user's login request (for a client that logs in on its own connection). */
  JsonObject userLogin() {
    return new JsonObject().put("op", "auth.login").put("user", CRYPTO_USER).put("password", userPassword);
  }

  /** Cluster administration (but the public status) runs as the admin; keys and crypto as the crypto user. */
  JsonObject withSession(JsonObject body) {
    String op = body.getString("op", "");
    boolean admin = op.startsWith("cluster.") && !op.equals("cluster.status") || op.startsWith("user.")
        || op.startsWith("backup.");
    return body.put("session", admin ? adminSession : userSession);
  }

  String userSession() {
    return userSession;
  }

  String adminPassword() {
    return adminPassword;
  }

  String userPassword() {
    return userPassword;
  }

  /** The shaded jar the image holds, for running the command line on the host. */
  Path jar() {
    return repo.resolve("cli/target/hsmbridge.jar");
  }

  // ------------------------------------------------------------------------------------------ the bridge

  /** A new connection to the bridge's published port, on the host's loopback. */
  BridgeClient connect() {
    // The bridge's endpoint runs TLS under the kit's CA (its certificate names 127.0.0.1).
    return BridgeClient.connect(loopback(), bridgePort(), CLIENT_TIMEOUT,
        io.hsmbridge.client.ClientTls.pinning(kit.resolve("ca").resolve("ca.pem")));
  }

  /** The fixture's own connection (reopened when lost); requests carry the session their op needs. */
  synchronized JsonObject request(JsonObject body) {
    return control().request(withSession(body));
  }

  private synchronized BridgeClient control() {
    if (control == null || !control.isOpen()) {
      control = connect();
    }
    return control;
  }

  /** The host port the bridge's 7701 is published on, read again each time (a restart may change it). */
  int bridgePort() {
    return publishedPort(BRIDGE);
  }

  /** The host port a node's client endpoint (7701: the bridge's, or an HSM host's front door) is published on. */
  int publishedPort(String node) {
    Ports.Binding[] b = inspect(node).getNetworkSettings().getPorts().getBindings().get(ExposedPort.tcp(BRIDGE_PORT));
    if (b == null || b.length == 0) {
      throw new IllegalStateException(node + "'s port " + BRIDGE_PORT + " is not published");
    }
    return Integer.parseInt(b[0].getHostPortSpec());
  }

  /** Every front door as the host reaches it: the bridge, then each HSM host. */
  List<io.hsmbridge.client.FailoverSender.Endpoint> frontDoors() {
    List<io.hsmbridge.client.FailoverSender.Endpoint> eps = new ArrayList<>();
    eps.add(new io.hsmbridge.client.FailoverSender.Endpoint(loopback(), bridgePort()));
    for (String h : HSMS) {
      eps.add(new io.hsmbridge.client.FailoverSender.Endpoint(loopback(), publishedPort(h)));
    }
    return eps;
  }

  /** TLS pinning the kit's CA, as every client of the container cluster. */
  io.hsmbridge.client.ClientTls clientTls() {
    return io.hsmbridge.client.ClientTls.pinning(kit.resolve("ca").resolve("ca.pem"));
  }

  /** Testcontainers' host, which must be this machine's loopback (TESTCONTAINERS_HOST_OVERRIDE=localhost). */
  private String loopback() {
    String host = nodes.get(BRIDGE).getHost();
    try {
      if (!InetAddress.getByName(host).isLoopbackAddress()) {
        throw new IllegalStateException("the container host is " + host + ", not loopback: set"
            + " TESTCONTAINERS_HOST_OVERRIDE=localhost (the tests talk to nothing but this machine)");
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return "127.0.0.1";
  }

  // ------------------------------------------------------------------------------------------ status

  Map<String, JsonObject> hsmStatus() {
    Map<String, JsonObject> m = new TreeMap<>();
    request(new JsonObject().put("op", "cluster.status")).getJsonArray("hsms")
        .forEach(o -> m.put(((JsonObject) o).getString("hsmId"), (JsonObject) o));
    return m;
  }

  static String state(Map<String, JsonObject> status, String hsm) {
    JsonObject s = status.get(hsm);
    return s == null ? "ABSENT" : s.getString("state");
  }

  void awaitServing(List<String> hsms, Duration limit) {
    await("all of " + hsms + " SERVING", limit, 200, this::hsmStatus,
        st -> hsms.stream().allMatch(h -> "SERVING".equals(state(st, h))));
  }

  /** Polls {@code probe} until {@code done} holds (errors of the probe count as "not yet"); fails with the last value. */
  <T> T await(String what, Duration limit, long pollMs, Supplier<T> probe, Predicate<T> done) {
    long deadline = System.nanoTime() + limit.toNanos();
    Object last = null;
    while (true) {
      try {
        T v = probe.get();
        if (done.test(v)) {
          return v;
        }
        last = v;
      } catch (HsmBridgeException e) {
        last = e;
      }
      if (System.nanoTime() > deadline) {
        String status;
        try {
          status = "; cluster.status " + hsmStatus().values();
        } catch (RuntimeException e) {
          status = "; no cluster.status: " + e.getMessage();
        }
        throw new AssertionError("not within " + limit + ": " + what + "; last seen " + last + status + tails());
      }
      sleep(pollMs);
    }
  }

  // ------------------------------------------------------------------------------------------ faults

  String containerId(String node) {
    return nodes.get(node).getContainerId();
  }

  InspectContainerResponse inspect(String node) {
    return docker.inspectContainerCmd(containerId(node)).exec();
  }

  /** SIGKILL of the container's processes; the container (and its volume) stays, stopped. */
  void kill(String node) {
    docker.killContainerCmd(containerId(node)).exec();
    await(node + " stopped after kill", Duration.ofSeconds(20), 100, () -> inspect(node).getState().getRunning(),
        running -> !Boolean.TRUE.equals(running));
  }

  /** Stops (SIGTERM, then SIGKILL after {@code graceSeconds}). */
  void stop(String node, int graceSeconds) {
    docker.stopContainerCmd(containerId(node)).withTimeout(graceSeconds).exec();
  }

  /** Starts the same container again (same filesystem and volume) and waits for one more ready line. */
  void startAgain(String node, Duration limit) {
    int before = readyLines(node);
    docker.startContainerCmd(containerId(node)).exec();
    await(node + " ready again", limit, 250, () -> readyLines(node), n -> n > before);
  }

  int readyLines(String node) {
    Matcher m = Pattern.compile(Pattern.quote(READY) + "\\w+ " + Pattern.quote(node) + "\\b").matcher(logs(node));
    int n = 0;
    while (m.find()) {
      n++;
    }
    return n;
  }

  void pause(String node) {
    docker.pauseContainerCmd(containerId(node)).exec();
  }

  void unpause(String node) {
    docker.unpauseContainerCmd(containerId(node)).exec();
  }

  boolean paused(String node) {
    return Boolean.TRUE.equals(inspect(node).getState().getPaused());
  }

  /** Cuts {@code hsm} off the cluster's network: no route to any other member (or to anything). */
  void disconnect(String hsm) {
    docker.disconnectFromNetworkCmd().withNetworkId(networkId).withContainerId(containerId(hsm)).exec();
  }

  /** Puts {@code hsm} back on the network with its address and alias of before. */
  void reconnect(String hsm) {
    docker.connectToNetworkCmd().withNetworkId(networkId).withContainerId(containerId(hsm))
        .withContainerNetwork(new ContainerNetwork()
            .withIpamConfig(new ContainerNetwork.Ipam().withIpv4Address(addresses.get(hsm)))
            .withAliases(hsm))
        .exec();
  }

  /** The address {@code hsm} has on the network now, or null when it has none. */
  String address(String hsm) {
    Map<String, ContainerNetwork> n = inspect(hsm).getNetworkSettings().getNetworks();
    String ip = n == null || n.isEmpty() ? null : n.values().iterator().next().getIpAddress();
    return ip == null || ip.isBlank() ? null : ip;
  }

  String addressAtStart(String hsm) {
    return addresses.get(hsm);
  }

  /** Runs a command in the container (through the engine, not the network). */
  Container.ExecResult exec(String node, String... command) {
    try {
      return nodes.get(node).execInContainer(command);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** The container's whole log (every run of it). */
  String logs(String node) {
    return nodes.get(node).getLogs();
  }

  /** The last lines of every container's log, for failure messages. */
  String tails() {
    StringBuilder b = new StringBuilder();
    for (String node : nodes.keySet()) {
      try {
        List<String> lines = logs(node).lines().toList();
        b.append("\n--- ").append(node).append('\n')
            .append(String.join("\n", lines.subList(Math.max(0, lines.size() - 15), lines.size())));
      } catch (RuntimeException e) {
        b.append("\n--- ").append(node).append(": no log (").append(e.getMessage()).append(')');
      }
    }
    return b.toString();
  }

  // ------------------------------------------------------------------------------------------ close

  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    if (control != null) {
      control.close();
    }
    Path logs = Path.of("target", "container-logs");
    for (Map.Entry<String, GenericContainer<?>> e : nodes.entrySet()) {
      GenericContainer<?> c = e.getValue();
      try {
        if (c.getContainerId() != null) {
          Files.createDirectories(logs);
          Files.writeString(logs.resolve(e.getKey() + ".log"), c.getLogs());
          if (Boolean.TRUE.equals(docker.inspectContainerCmd(c.getContainerId()).exec().getState().getPaused())) {
            docker.unpauseContainerCmd(c.getContainerId()).exec();
          }
        }
      } catch (IOException | RuntimeException ex) {
        System.out.println("[containers] cannot save the log of " + e.getKey() + ": " + ex);
      }
      try {
        c.stop(); // kills and removes the container and its anonymous volume
      } catch (RuntimeException ex) {
        System.out.println("[containers] cannot remove " + e.getKey() + ": " + ex);
      }
    }
    if (network != null) {
      try {
        network.close();
      } catch (RuntimeException ex) {
        System.out.println("[containers] cannot remove the network: " + ex);
      }
    }
    deleteTree(kit);
    Report.write();
  }

  // ------------------------------------------------------------------------------------------ helpers

  private static Transferable secret(Path file) {
    return Transferable.of(read(file), 0600);
  }

  private static byte[] read(Path p) {
    try {
      return Files.readAllBytes(p);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static byte[] randomBytes(int n) {
    byte[] b = new byte[n];
    RANDOM.nextBytes(b);
    return b;
  }

  private static void deleteTree(Path dir) {
    if (dir == null || !Files.exists(dir)) {
      return;
    }
    try (Stream<Path> all = Files.walk(dir)) {
      for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      System.out.println("[containers] cannot delete " + dir + ": " + e);
    }
  }

  static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }
}
