package io.hsmbridge.cli;

import io.hsmbridge.agent.membership.ClusterCa;
import io.hsmbridge.agent.membership.TransportCertificates;
import io.hsmbridge.client.HsmBridgeException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.TreeSet;

/**
 * The processes of one local cluster: an agent per HSM ({@code HOME/hsmK}) and the bridge
 * ({@code HOME/bridge}). Starts what is not running, waits until the bridge reports every HSM
 * {@code SERVING}, stops everything, adds and removes HSMs. The files come from {@link ClusterLayout};
 * the cluster's state from the bridge ({@link BridgeAdmin}).
 */
final class LocalCluster {
  /** Returns as soon as every HSM serves; a joining HSM may retry its Raft membership change up to 3 x 60 s. */
  static final Duration READY_TIMEOUT = Duration.ofSeconds(200);
  /** A local cluster's HSMs: every one is a JVM on this machine. */
  static final int MAX_HSMS = 9;
  private static final long POLL_MS = 300;
  private static final int LOG_TAIL_LINES = 15;
  private static final DateTimeFormatter REMOVED_STAMP = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'");

  private final Home home;
  private final String mainClass;
  private final Duration readyTimeout;
  private final BridgeAdmin.Connector connector;

  LocalCluster(Home home) {
    this(home, LocalNode.NODE_MAIN, READY_TIMEOUT, BridgeAdmin.TCP);
  }

  /** For tests: another node main class, timeout and bridge connection. */
  LocalCluster(Home home, String mainClass, Duration readyTimeout, BridgeAdmin.Connector connector) {
    this.home = home;
    this.mainClass = mainClass;
    this.readyTimeout = readyTimeout;
    this.connector = connector;
  }

  /** The bridge's endpoint and the status that showed the cluster ready. */
  record Ready(Endpoint bridge, ClusterStatus status) {}

  /** The HSM {@link #add} started, and the status that showed it serving. */
  record Added(String hsmId, Ready ready) {}

  /** What {@link #remove} did. */
  record Removal(String hsmId, OptionalLong pid, Path movedTo, List<String> peers) {}

  Home home() {
    return home;
  }

  LocalNode node(String name) {
    return new LocalNode(home.node(name), mainClass, readyTimeout);
  }

  LocalNode bridge() {
    return node(Home.BRIDGE);
  }

  /** The record, or empty when the data directory holds no cluster (yet). */
  Optional<ClusterRecord> record() {
    return ClusterRecord.exists(home) ? Optional.of(ClusterRecord.load(home.clusterProperties())) : Optional.empty();
  }

  /**
   * The pid of every running node of this data directory, by name: the HSMs in id order (also those
   * only present as a directory, e.g. a node of an earlier version), then the bridge.
   */
  Map<String, Long> running() {
    Map<String, Long> pids = new LinkedHashMap<>();
    for (String name : nodeNames()) {
      node(name).runningPid().ifPresent(pid -> pids.put(name, pid));
    }
    return pids;
  }

  /** The bridge's view of the cluster. */
  ClusterStatus status(Endpoint bridge) {
    try (BridgeAdmin admin = connector.connect(bridge, BridgeAdmin.POLL_TIMEOUT)) {
      return admin.status();
    }
  }

  /** Starts, all at once, every node of the record that is not running; returns those started. */
  List<LocalNode.Spawned> startMissing(ClusterRecord rec) throws IOException {
    List<LocalNode.Spawned> spawned = new ArrayList<>();
    List<String> names = new ArrayList<>(rec.hsmIds());
    names.add(Home.BRIDGE);
    for (String name : names) {
      LocalNode n = node(name);
      if (n.runningPid().isEmpty()) {
        spawned.add(n.spawn());
      }
    }
    return spawned;
  }

  /**
   * Waits until the bridge has written its endpoint and reports every HSM of {@code mustServe}
   * {@code SERVING}.
   *
   * @param spawned the processes just started: one that exits fails the wait with its own error
   * @throws NodeFailure naming the node that exited, or (timeout) the nodes not serving, with the tail
   *     of the log that shows why
   */
  /**
   * Every HSM just spawned serves as the new process (not the old one's last heartbeat) and has written its
   * endpoint.json: an agent reports SERVING before its front door listens and the file is written (seen in
   * CI: AuditTamperTest read hsm2's endpoint.json right after `up` returned, and it was not there yet).
   */
  private boolean servingAsSpawned(ClusterStatus status, List<LocalNode.Spawned> spawned) {
    return spawned.stream().filter(s -> !s.name().equals(Home.BRIDGE))
        .allMatch(s -> status.isServingAs(s.name(), s.process().pid())
            && Endpoint.readPid(node(s.name()).dir().endpointJson()) == s.process().pid());
  }

  Ready awaitServing(List<LocalNode.Spawned> spawned, Collection<String> mustServe) {
    long deadline = System.nanoTime() + readyTimeout.toNanos();
    List<String> watched = new ArrayList<>(mustServe);
    watched.add(Home.BRIDGE);
    BridgeAdmin admin = null;
    ClusterStatus last = null;
    String bridgeError = null;
    try {
      while (true) {
        checkAlive(watched, spawned);
        certifyTransportKeys(spawned);
        Optional<Endpoint> ep = bridge().runningEndpoint();
        if (ep.isPresent()) {
          try {
            if (admin == null) {
              admin = connector.connect(ep.get(), BridgeAdmin.POLL_TIMEOUT);
            }
            last = admin.status();
            bridgeError = null;
            if (last.allServing(mustServe) && servingAsSpawned(last, spawned)) {
              return new Ready(ep.get(), last);
            }
          } catch (HsmBridgeException e) {
            bridgeError = e.getMessage();
            if (admin != null) {
              admin.close();
              admin = null;
            }
          }
        }
        if (System.nanoTime() - deadline > 0) {
          throw notReady(ep.isPresent(), last, bridgeError, mustServe, spawned);
        }
        LocalNode.sleep(POLL_MS);
      }
    } finally {
      if (admin != null) {
        admin.close();
      }
    }
  }

  /**
   * A joining HSM waits for the cluster CA to certify the transport key its token made (it wrote the request in
   * its directory: ClusterKeyJoin). The CA is this home's, and the request is the node's own, in a directory this
   * CLI made: certify it, as {@code cluster transport-cert} would by hand.
   */
  private void certifyTransportKeys(List<LocalNode.Spawned> spawned) {
    for (LocalNode.Spawned s : spawned) {
      Path dir = node(s.name()).dir().dir();
      Path request = dir.resolve(TransportCertificates.REQUEST_FILE);
      Path certificate = dir.resolve(TransportCertificates.CERTIFICATE_FILE);
      if (s.name().equals(Home.BRIDGE) || !Files.isRegularFile(request)) {
        continue;
      }
      try {
        if (TransportCertificates.certificateFor(certificate, TransportCertificates.readRequest(request)) != null) {
          continue; // certified at an earlier poll; the agent is fetching the cluster key
        }
        byte[] check = clusterKeyCheck();
        // No HSM holds the cluster key yet (hsm1 makes it as it starts): certify at a later poll.
        if (check != null) {
          TransportCertificates.sign(ClusterCa.load(home.caDir()), s.name(), request, check, certificate);
        }
      } catch (IOException | RuntimeException e) {
        throw new CliException("cannot certify the transport key of " + s.name() + " (" + request + "): " + e.getMessage());
      }
    }
  }

  /** The cluster key's check value as an HSM of this home that holds the key wrote it, or null when none has yet. */
  private byte[] clusterKeyCheck() {
    for (String name : nodeNames()) {
      Path file = node(name).dir().dir().resolve(TransportCertificates.CHECK_VALUE_FILE);
      if (!name.equals(Home.BRIDGE) && Files.isRegularFile(file)) {
        try {
          return TransportCertificates.parseCheckValue(Files.readString(file));
        } catch (IOException | RuntimeException e) {
          // being written: the next poll reads it
        }
      }
    }
    return null;
  }

  /**
   * Stops the bridge (no new client requests), then every agent at once.
   *
   * @return the pid of each node that ran, by name: the HSMs, then the bridge
   */
  Map<String, Long> stop() throws IOException {
    Map<String, Long> bridgePid = LocalNode.stopAll(List.of(bridge()));
    List<LocalNode> agents = new ArrayList<>();
    for (String name : nodeNames()) {
      if (!name.equals(Home.BRIDGE)) {
        agents.add(node(name));
      }
    }
    Map<String, Long> stopped = new LinkedHashMap<>(LocalNode.stopAll(agents));
    stopped.putAll(bridgePid);
    return stopped;
  }

  /**
   * Adds the next HSM to the running cluster: records it (its id is never given again), creates its
   * token, certificate and configuration ({@code raft.join=true}), starts it and waits until it serves.
   */
  Added add(ClusterRecord rec, Path library) throws IOException {
    if (rec.hsms().size() >= MAX_HSMS) {
      throw new CliException("a local cluster holds at most " + MAX_HSMS + " HSMs; remove one first");
    }
    requireBridge("add an HSM");
    String id = rec.nextHsmId();
    if (Files.exists(home.hsm(id).dir())) {
      throw new CliException(home.hsm(id).dir() + " already exists but is no member of the cluster; move it away first");
    }
    List<Integer> ports = PortPicker.pick(3, rec.ports());
    ClusterRecord added = rec.withNewHsm(ports.get(0), ports.get(1), ports.get(2));
    ClusterLayout.write(home, added, library);
    LocalNode.Spawned s = node(id).spawn();
    Ready ready = awaitServing(List.of(s), List.of(id));
    ClusterLayout.write(home, added.joined(id), library);
    return new Added(id, ready);
  }

  /**
   * Removes an HSM: the bridge drains it and takes it out of the Raft group, then its process is stopped
   * and its directory (token included: the operator decides about it) moved to {@code HOME/removed/}.
   * The other nodes' configuration follows for their next start; running nodes are not restarted.
   *
   * @param session a CO's session token (removing an HSM is an admin operation), or null
   */
  Removal remove(ClusterRecord rec, String hsmId, Path library, String session) throws IOException {
    ClusterRecord.Member m = rec.member(hsmId).orElseThrow(() -> new CliException(
        "no HSM " + hsmId + " in this cluster (members: " + String.join(", ", rec.hsmIds()) + ")"));
    if (rec.hsms().size() == 1) {
      throw new CliException("refusing to remove " + hsmId + ": it is the cluster's only HSM"
          + " (./hsmbridge down stops the cluster)");
    }
    Endpoint ep = requireBridge("remove an HSM");
    List<String> peers;
    try (BridgeAdmin admin = connector.connect(ep, BridgeAdmin.LONG_TIMEOUT).useSession(session)) {
      // An HSM whose 'hsm add' never got it into the group is unknown to the bridge: nothing to drain.
      boolean neverJoined = m.joining() && admin.status().hsm(hsmId).isEmpty();
      peers = neverJoined ? List.of() : admin.removeHsm(hsmId);
    }
    OptionalLong pid = node(hsmId).stop();
    Path removed = home.removedDir();
    NodeLayout.privateDir(removed);
    Path target = removed.resolve(hsmId + "-" + ZonedDateTime.now(ZoneOffset.UTC).format(REMOVED_STAMP));
    Files.move(home.hsm(hsmId).dir(), target);
    ClusterLayout.write(home, rec.without(hsmId), library);
    return new Removal(hsmId, pid, target, peers);
  }

  private Endpoint requireBridge(String what) {
    return bridge().runningEndpoint().orElseThrow(() -> new CliException(
        "the cluster must run to " + what + "; start it with ./hsmbridge up"));
  }

  /** The HSMs of the record and any other hsmK directory, in id order, then the bridge. */
  private List<String> nodeNames() {
    TreeSet<String> hsms = new TreeSet<>(Home::compareHsmIds);
    hsms.addAll(home.hsmDirs());
    record().ifPresent(r -> hsms.addAll(r.hsmIds()));
    List<String> names = new ArrayList<>(hsms);
    names.add(Home.BRIDGE);
    return names;
  }

  private void checkAlive(List<String> watched, List<LocalNode.Spawned> spawned) {
    for (LocalNode.Spawned s : spawned) {
      if (!s.process().isAlive()) {
        throw new NodeFailure(s.name() + ": " + s.exitMessage(), s.node().dir().nodeLog(),
            s.node().logTail(s.logOffset(), LOG_TAIL_LINES));
      }
    }
    for (String name : watched) {
      LocalNode n = node(name);
      if (spawned.stream().noneMatch(s -> s.name().equals(name)) && n.runningPid().isEmpty()) {
        throw new NodeFailure(name + " is not running (node log: " + n.dir().nodeLog() + ")", n.dir().nodeLog(),
            n.logTail(0, LOG_TAIL_LINES));
      }
    }
  }

  private NodeFailure notReady(boolean bridgeUp, ClusterStatus last, String bridgeError,
      Collection<String> mustServe, List<LocalNode.Spawned> spawned) {
    String culprit;
    String what;
    if (!bridgeUp) {
      culprit = Home.BRIDGE;
      what = "the bridge is not ready";
    } else if (last == null || bridgeError != null) {
      culprit = Home.BRIDGE;
      what = "the bridge does not answer" + (bridgeError == null ? "" : " (" + bridgeError + ")");
    } else {
      List<String> waiting = mustServe.stream().filter(id -> !last.isServing(id)).toList();
      culprit = waiting.get(0);
      what = "not serving: " + String.join(", ", waiting.stream().map(id -> id + " " + last.stateOf(id)).toList());
    }
    LocalNode n = node(culprit);
    long offset = spawned.stream().filter(s -> s.name().equals(culprit))
        .mapToLong(LocalNode.Spawned::logOffset).findFirst().orElse(0);
    return new NodeFailure("the cluster was not ready within " + readyTimeout.toSeconds() + " s: " + what
        + " (node log: " + n.dir().nodeLog() + ")", n.dir().nodeLog(), n.logTail(offset, LOG_TAIL_LINES));
  }
}
