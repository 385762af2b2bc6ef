package io.hsmbridge.agent.membership;

import io.vertx.core.Completable;
import io.vertx.core.Vertx;
import io.vertx.core.VertxException;
import io.vertx.core.shareddata.AsyncMap;
import io.vertx.core.shareddata.Counter;
import io.vertx.core.shareddata.Lock;
import io.vertx.core.spi.cluster.ClusterManager;
import io.vertx.core.spi.cluster.NodeInfo;
import io.vertx.core.spi.cluster.NodeListener;
import io.vertx.core.spi.cluster.RegistrationInfo;
import io.vertx.core.spi.cluster.RegistrationListener;
import io.vertx.core.spi.cluster.RegistrationUpdateEvent;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Logger;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;

/**
 * The cluster's membership and event-bus routing table, carried over mutual TLS between the members
 * themselves: no Hazelcast, no shared data structure another process could write.
 *
 * <p>Every member listens on its membership port and dials every other member it knows (the configured
 * {@code cluster.members}, plus what the others announce). Only a certificate of the cluster CA of a member
 * kind (agent or front door) completes a handshake, in either direction. Over its own outbound links a
 * member sends its whole {@link MemberState} (node id, event-bus address, the addresses it consumes) at
 * once, at every change and every {@link #HEARTBEAT_MS}; the receiver replaces what it held for that node.
 * So a member is the only source of its own registrations: no other member can remove or add one, and a
 * lost update is re-asserted by the next copy. A node leaves the view when its link closes (a SIGKILLed
 * process's sockets close at once), says goodbye, or is silent for {@link #SILENCE_MS}.
 *
 * <p>A write ({@link #addRegistration}, {@link #setNodeInfo}) completes once every member this one is
 * connected to acknowledged it, or after {@link #WRITE_WAIT_MS}: a consumer is routable cluster-wide when
 * Vert.x says it is registered, as it was with Hazelcast.
 *
 * <p>Threads: one acceptor, one reader per inbound link, one writer (+ an acknowledgement reader) per
 * outbound link, and one event thread that applies every change and calls Vert.x's listeners in order.
 * Shared data (maps, locks, counters) and Vert.x HA are not offered: hsmbridge uses neither.
 */
public final class CertifiedClusterManager implements ClusterManager {
  private static final Logger LOG = Logger.getLogger(CertifiedClusterManager.class.getName());
  static final String[] TLS_PROTOCOLS = {"TLSv1.3"};
  static final int HEARTBEAT_MS = 1_000;
  /** A member not heard from for this long has left (5 missed heartbeats). */
  static final int SILENCE_MS = 5_000;
  static final int HANDSHAKE_MS = 5_000;
  static final int CONNECT_MS = 2_000;
  /** Unauthenticated connections at once; a new one beyond this closes the oldest (a flood cannot starve members). */
  static final int MAX_HANDSHAKING = 32;
  /** Authenticated inbound links at once (a member has one to every other member). */
  static final int MAX_LINKS = 128;
  /** Membership addresses dialled at most (the configured members and the announced ones). */
  static final int MAX_DIALLED = MemberState.MAX_PEERS;
  static final long WRITE_WAIT_MS = 3_000;
  static final long REFUSAL_LOG_INTERVAL_MS = 10_000;
  static final long JOIN_WAIT_MS = 5_000;

  private final String cluster;
  private final String host;
  private final int port;
  private final String self;
  private final List<String> seeds;
  private final SSLContext tls;
  private final String nodeId = UUID.randomUUID().toString();

  private volatile boolean active;
  private volatile NodeListener nodeListener;
  /** Told the addresses a member consumed when it leaves (see {@link #onMemberLeft}). */
  private final List<java.util.function.Consumer<Set<String>>> leftListeners = new java.util.concurrent.CopyOnWriteArrayList<>();
  private final List<java.util.function.Consumer<String>> agentLeftListeners = new java.util.concurrent.CopyOnWriteArrayList<>();
  private volatile RegistrationListener registrationListener;
  private SSLServerSocket server;
  private ExecutorService events;
  private ScheduledExecutorService timer;

  // This member's own state; written on the event thread only.
  private final Map<String, List<RegistrationInfo>> own = new ConcurrentHashMap<>();
  private volatile NodeInfo ownInfo;
  private long version;
  private volatile MemberState published;

  /** Other members, by node id; written on the event thread only. */
  private final Map<String, Remote> remotes = new ConcurrentHashMap<>();
  private final Map<String, OutboundLink> outbound = new ConcurrentHashMap<>();
  private final Map<InetSocketAddress, OutboundLink> dialledTargets = new ConcurrentHashMap<>();
  private final Set<InboundLink> inbound = ConcurrentHashMap.newKeySet();
  private final ConcurrentLinkedDeque<InboundLink> handshaking = new ConcurrentLinkedDeque<>();
  private final List<PendingWrite> pending = new ArrayList<>();
  private final java.util.concurrent.atomic.AtomicLong lastRefusalLog =
      new java.util.concurrent.atomic.AtomicLong(System.nanoTime() - TimeUnit.DAYS.toNanos(1));
  private final AtomicInteger refusedSinceLog = new AtomicInteger();

  private record Remote(MemberState state, InboundLink link) {}

  private record PendingWrite(long version, Completable<Void> promise, long deadlineNanos) {}

  /**
   * @param cluster the cluster's name ({@code cluster.name}): members of another cluster are refused
   * @param host the IP this member binds its membership port to and announces
   * @param port the membership port
   * @param seeds members to dial when joining ({@code host:port}); this member's own address may be among them
   * @param tls the mutual-TLS context: this member's certificate, the cluster CA as the only anchor, member
   *     kinds only ({@link MembershipTls})
   */
  public CertifiedClusterManager(String cluster, String host, int port, List<String> seeds, SSLContext tls) {
    this.cluster = Objects.requireNonNull(cluster, "cluster");
    this.host = Objects.requireNonNull(host, "host");
    this.port = port;
    this.self = ClusterConfig.hostPort(host, port);
    this.seeds = List.copyOf(seeds);
    this.tls = Objects.requireNonNull(tls, "tls");
    this.published = new MemberState(cluster, nodeId, self, 0, null, Map.of(), this.seeds);
  }

  @Override
  public void init(Vertx vertx) {
    // Nothing of Vert.x is needed: links run on their own threads.
  }

  @Override
  public void join(Completable<Void> promise) {
    try {
      server = (SSLServerSocket) tls.getServerSocketFactory()
          .createServerSocket(port, 64, InetAddress.getByName(host));
      server.setEnabledProtocols(TLS_PROTOCOLS);
      server.setNeedClientAuth(true);
    } catch (IOException e) {
      promise.fail(new VertxException("cannot listen for members on " + self + ": " + e.getMessage(), e));
      return;
    }
    active = true;
    events = Executors.newSingleThreadExecutor(daemon("membership-events"));
    timer = Executors.newSingleThreadScheduledExecutor(daemon("membership-timer"));
    timer.scheduleWithFixedDelay(() -> onEvents(this::completeWrites), 100, 100, TimeUnit.MILLISECONDS);
    daemon("membership-accept").newThread(this::accept).start();
    events.execute(() -> seeds.forEach(this::dial));
    LOG.info("membership: node " + nodeId + " listening on " + self + " (mutual TLS), members " + seeds);
    daemon("membership-join").newThread(() -> awaitJoin(promise)).start();
  }

  /** Joined once every configured member answered with its state or could not be reached, bounded by JOIN_WAIT_MS. */
  private void awaitJoin(Completable<Void> promise) {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(JOIN_WAIT_MS);
    while (System.nanoTime() < deadline && active) {
      boolean settled = true;
      for (String seed : seeds) {
        OutboundLink link = outbound.get(seed);
        boolean heard = remotes.values().stream().anyMatch(r -> r.state().memberAddress().equals(seed));
        if (link != null && !link.failedOnce() && !heard) {
          settled = false;
        }
      }
      if (settled) {
        break;
      }
      sleepQuietly(50);
    }
    logView();
    promise.succeed();
  }

  private void accept() {
    while (active) {
      SSLSocket socket;
      try {
        socket = (SSLSocket) server.accept();
      } catch (IOException e) {
        if (active) {
          LOG.warning("membership: accept failed: " + e.getMessage());
          sleepQuietly(100);
        }
        continue;
      }
      if (inbound.size() >= MAX_LINKS) {
        LOG.warning("membership: " + MAX_LINKS + " links open; refused " + socket.getRemoteSocketAddress());
        closeQuietly(socket);
        continue;
      }
      InboundLink link = new InboundLink(this, socket);
      handshaking.addLast(link);
      while (handshaking.size() > MAX_HANDSHAKING) {
        InboundLink oldest = handshaking.pollFirst();
        if (oldest != null) {
          oldest.close();
        }
      }
      inbound.add(link);
      daemon("membership-in").newThread(link).start();
    }
  }

  /**
   * Logs a refused handshake: the first at once, then at most one line per {@link #REFUSAL_LOG_INTERVAL_MS}
   * with the number refused since (a flood of rogue handshakes must not flood the log).
   */
  void reportRefusal(String remote, String reason) {
    long now = System.nanoTime();
    long last = lastRefusalLog.get();
    if (now - last >= TimeUnit.MILLISECONDS.toNanos(REFUSAL_LOG_INTERVAL_MS) && lastRefusalLog.compareAndSet(last, now)) {
      int more = refusedSinceLog.getAndSet(0);
      LOG.warning("membership: refused a connection from " + remote + ": " + reason
          + (more > 0 ? " (" + more + " more refused since the last such line)" : ""));
    } else {
      refusedSinceLog.incrementAndGet();
    }
  }

  void handshakeDone(InboundLink link) {
    handshaking.remove(link);
  }

  void linkClosed(InboundLink link) {
    handshaking.remove(link);
    inbound.remove(link);
    onEvents(() -> drop(link));
  }

  /**
   * Applies a state received on {@code link} (called on the link's thread, runs on the event thread).
   *
   * @return null when applied, else why the state is refused (the link is then closed)
   */
  String apply(InboundLink link, MemberState state) {
    if (!active) {
      return "this member is leaving";
    }
    try {
      return events.submit(() -> applyNow(link, state)).get(SILENCE_MS, TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "interrupted";
    } catch (ExecutionException | TimeoutException | java.util.concurrent.RejectedExecutionException e) {
      return "not applied: " + e;
    }
  }

  /** Why {@code link}'s member may not consume one of the addresses in {@code state} ({@link AddressPolicy}), or null. */
  private static String forbiddenRegistration(InboundLink link, MemberState state) {
    for (String address : state.registrations().keySet()) {
      String why = AddressPolicy.mayConsume(link.kind(), address);
      if (why != null) {
        return why;
      }
    }
    return null;
  }

  private String applyNow(InboundLink link, MemberState state) {
    if (!state.cluster().equals(cluster)) {
      return "it belongs to cluster '" + state.cluster() + "', not '" + cluster + "'";
    }
    if (state.nodeId().equals(nodeId)) {
      return "it claims this member's own node id";
    }
    if (link.nodeId() != null && !link.nodeId().equals(state.nodeId())) {
      return "a link speaks for one node (" + link.nodeId() + "), not for " + state.nodeId();
    }
    Remote before = remotes.get(state.nodeId());
    if (before != null && before.link() != link && !Objects.equals(before.link().subject(), link.subject())) {
      return "node " + state.nodeId() + " is already held by another member certificate";
    }
    String forbidden = forbiddenRegistration(link, state);
    if (forbidden != null) {
      return forbidden;
    }
    if (link.nodeId() == null && before == null && remotes.size() >= MAX_LINKS) {
      return "too many members";
    }
    link.bind(state.nodeId());
    if (before != null && before.link() == link && before.state().version() == state.version()) {
      return null; // a heartbeat: nothing changed
    }
    remotes.put(state.nodeId(), new Remote(state, link));
    if (before == null) {
      LOG.info("membership: member joined: node " + state.nodeId() + " at " + state.memberAddress()
          + " (" + link.subject() + ")");
      OutboundLink back = outbound.get(state.memberAddress());
      if (back != null) {
        back.dialNow(); // a restarted member joins once this one has dialled it back
      }
      logView();
      NodeListener l = nodeListener;
      if (l != null) {
        l.nodeAdded(state.nodeId());
      }
    }
    Set<String> changed = new HashSet<>(state.registrations().keySet());
    if (before != null) {
      changed.addAll(before.state().registrations().keySet());
      changed.removeIf(a -> Objects.equals(before.state().registrations().get(a), state.registrations().get(a)));
    }
    changed.forEach(this::fireRegistrations);
    dial(state.memberAddress());
    state.peers().forEach(this::dial);
    return null;
  }

  private void drop(InboundLink link) {
    String id = link.nodeId();
    if (id == null) {
      return;
    }
    Remote r = remotes.get(id);
    if (r == null || r.link() != link) {
      return; // already replaced by a newer link of the same node
    }
    remotes.remove(id);
    LOG.info("membership: member left: node " + id + " at " + r.state().memberAddress());
    logView();
    NodeListener l = nodeListener;
    if (l != null) {
      l.nodeLeft(id);
    }
    r.state().registrations().keySet().forEach(this::fireRegistrations);
    Set<String> gone = Set.copyOf(r.state().registrations().keySet());
    for (java.util.function.Consumer<Set<String>> listener : leftListeners) {
      try {
        listener.accept(gone);
      } catch (RuntimeException e) {
        LOG.log(java.util.logging.Level.WARNING, "a member-left listener failed", e);
      }
    }
    String agent = link.agentName();
    if (agent != null) {
      for (java.util.function.Consumer<String> listener : agentLeftListeners) {
        try {
          listener.accept(agent);
        } catch (RuntimeException e) {
          LOG.log(java.util.logging.Level.WARNING, "an agent-left listener failed", e);
        }
      }
    }
  }

  /**
   * Calls {@code listener} (on the membership's event thread: hand the work to your own) with the event-bus
   * addresses a member consumed, when the member leaves: its link closed (a killed process's socket closes at
   * once), it said goodbye, or it was silent for {@link #SILENCE_MS}. Vert.x fails no request in flight to a
   * departed member: it waits for the reply timeout. A front door uses this to move such requests to another
   * HSM at once instead of after the HSM's missed heartbeats (issue #11 item 3, the longest stall).
   *
   * @return removes the listener
   */
  public Runnable onMemberLeft(java.util.function.Consumer<Set<String>> listener) {
    leftListeners.add(listener);
    return () -> leftListeners.remove(listener);
  }

  /**
   * Calls {@code listener} (on the membership's event thread: hand the work to your own) with the HSM id of
   * an HSM host's process when it leaves, as {@link #onMemberLeft} tells of any member. The id is the
   * name in the member's agent certificate ({@code OU=agent}), not anything the member said: a front door
   * or an application member cannot pass for an HSM host here.
   *
   * @return removes the listener
   */
  public Runnable onAgentLeft(java.util.function.Consumer<String> listener) {
    agentLeftListeners.add(listener);
    return () -> agentLeftListeners.remove(listener);
  }

  /** The view as one line; tests and operators read it ("cluster membership: N members [...]"). */
  private void logView() {
    List<String> view = new ArrayList<>();
    view.add(self + " (this node)");
    remotes.values().forEach(r -> view.add(r.state().memberAddress()));
    LOG.info("cluster membership: " + view.size() + " members " + view);
  }

  /** Starts dialling a membership address once (on the event thread). */
  private void dial(String address) {
    if (!active || address.equals(self) || outbound.containsKey(address) || !MemberState.isMemberAddress(address)) {
      return;
    }
    if (outbound.size() >= MAX_DIALLED) {
      LOG.warning("membership: " + MAX_DIALLED + " member addresses known; not dialling " + address);
      return;
    }
    OutboundLink link = new OutboundLink(this, address);
    outbound.put(address, link);
    republish(); // the newcomer is announced to everyone
    daemon("membership-out").newThread(link).start();
  }

  /**
   * One outbound link per member even when it is listed under two names (a host name in
   * {@code cluster.members}, its IP in its own announcement): the first link to reach a resolved address
   * holds it while it is connected, and another link to the same address retires.
   */
  boolean claimTarget(InetSocketAddress target, OutboundLink link) {
    OutboundLink holder = dialledTargets.putIfAbsent(target, link);
    return holder == null || holder == link;
  }

  void releaseTarget(InetSocketAddress target, OutboundLink link) {
    dialledTargets.remove(target, link);
  }

  boolean isOwnAddress(InetSocketAddress target) {
    return target.getPort() == port && target.getAddress() != null
        && target.getAddress().getHostAddress().equals(host);
  }

  SSLContext tls() {
    return tls;
  }

  MemberState published() {
    return published;
  }

  void acknowledged() {
    onEvents(this::completeWrites);
  }

  /** Runs {@code task} on the event thread; false when the membership has stopped. */
  private boolean onEvents(Runnable task) {
    try {
      if (active) {
        events.execute(task);
        return true;
      }
    } catch (java.util.concurrent.RejectedExecutionException e) {
      // leaving
    }
    return false;
  }

  // ----- this member's own state (Vert.x calls these on its threads) -----

  @Override
  public void setNodeInfo(NodeInfo nodeInfo, Completable<Void> promise) {
    change(() -> ownInfo = nodeInfo, promise);
  }

  @Override
  public NodeInfo getNodeInfo() {
    return ownInfo;
  }

  @Override
  public void addRegistration(String address, RegistrationInfo info, Completable<Void> promise) {
    change(() -> {
      own.compute(address, (a, list) -> {
        List<RegistrationInfo> next = list == null ? new ArrayList<>() : new ArrayList<>(list);
        next.add(info);
        return List.copyOf(next);
      });
      fireRegistrations(address);
    }, info.localOnly() ? null : promise);
    if (info.localOnly()) {
      promise.succeed();
    }
  }

  @Override
  public void removeRegistration(String address, RegistrationInfo info, Completable<Void> promise) {
    change(() -> {
      own.computeIfPresent(address, (a, list) -> {
        List<RegistrationInfo> next = new ArrayList<>(list);
        next.remove(info);
        return next.isEmpty() ? null : List.copyOf(next);
      });
      fireRegistrations(address);
    }, promise);
  }

  /** Runs an own-state change on the event thread, publishes it, and completes {@code promise} when acknowledged. */
  private void change(Runnable mutation, Completable<Void> promise) {
    boolean queued = onEvents(() -> {
      mutation.run();
      republish();
      if (promise != null) {
        pending.add(new PendingWrite(version, promise,
            System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WRITE_WAIT_MS)));
        completeWrites();
      }
    });
    if (!queued && promise != null) {
      promise.fail(new VertxException("the membership is not running"));
    }
  }

  private void republish() {
    Map<String, List<RegistrationInfo>> shared = new LinkedHashMap<>();
    own.forEach((address, list) -> {
      List<RegistrationInfo> clusterWide = list.stream().filter(r -> !r.localOnly()).toList();
      if (!clusterWide.isEmpty()) {
        shared.put(address, clusterWide);
      }
    });
    Set<String> peers = new LinkedHashSet<>(seeds);
    peers.addAll(outbound.keySet());
    published = new MemberState(cluster, nodeId, self, ++version, ownInfo, shared,
        peers.stream().limit(MemberState.MAX_PEERS).toList());
    outbound.values().forEach(OutboundLink::wake);
  }

  /** Completes the writes every connected member acknowledged, and those past their wait. */
  private void completeWrites() {
    long now = System.nanoTime();
    for (Iterator<PendingWrite> it = pending.iterator(); it.hasNext();) {
      PendingWrite w = it.next();
      boolean everywhere = outbound.values().stream().noneMatch(l -> l.established() && l.acked() < w.version());
      if (everywhere || now - w.deadlineNanos() > 0) {
        it.remove();
        w.promise().succeed();
      }
    }
  }

  private void fireRegistrations(String address) {
    RegistrationListener l = registrationListener;
    if (l != null && l.wantsUpdatesFor(address)) {
      l.registrationsUpdated(new RegistrationUpdateEvent(address, registrationsOf(address)));
    }
  }

  List<RegistrationInfo> registrationsOf(String address) {
    List<RegistrationInfo> all = new ArrayList<>(own.getOrDefault(address, List.of()));
    for (Remote r : remotes.values()) {
      all.addAll(r.state().registrations().getOrDefault(address, List.of()));
    }
    return all;
  }

  // ----- reads -----

  @Override
  public String getNodeId() {
    return nodeId;
  }

  @Override
  public List<String> getNodes() {
    List<String> nodes = new ArrayList<>();
    nodes.add(nodeId);
    nodes.addAll(remotes.keySet());
    return nodes;
  }

  @Override
  public void getNodeInfo(String id, Completable<NodeInfo> promise) {
    NodeInfo info = id.equals(nodeId) ? ownInfo : remotes.containsKey(id) ? remotes.get(id).state().nodeInfo() : null;
    if (info == null) {
      promise.fail(new VertxException("no member with node id " + id + " (it left, or its event bus is not up)", true));
    } else {
      promise.succeed(info);
    }
  }

  @Override
  public void getRegistrations(String address, Completable<List<RegistrationInfo>> promise) {
    promise.succeed(registrationsOf(address));
  }

  @Override
  public void nodeListener(NodeListener listener) {
    this.nodeListener = listener;
  }

  @Override
  public void registrationListener(RegistrationListener listener) {
    this.registrationListener = listener;
  }

  @Override
  public boolean isActive() {
    return active;
  }

  @Override
  public String clusterHost() {
    return host;
  }

  @Override
  public String clusterPublicHost() {
    return host;
  }

  @Override
  public void leave(Completable<Void> promise) {
    if (!active) {
      promise.succeed();
      return;
    }
    active = false;
    outbound.values().forEach(OutboundLink::leave);
    closeQuietly(server);
    inbound.forEach(InboundLink::close);
    timer.shutdownNow();
    events.shutdown();
    try {
      events.awaitTermination(2, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    pending.forEach(w -> w.promise().succeed()); // the event thread has stopped
    pending.clear();
    LOG.info("membership: node " + nodeId + " left");
    promise.succeed();
  }

  // ----- shared data: not offered -----

  @Override
  public <K, V> void getAsyncMap(String name, Completable<AsyncMap<K, V>> promise) {
    promise.fail(unsupported());
  }

  @Override
  public <K, V> Map<K, V> getSyncMap(String name) {
    throw unsupported();
  }

  @Override
  public void getLockWithTimeout(String name, long timeout, Completable<Lock> promise) {
    promise.fail(unsupported());
  }

  @Override
  public void getCounter(String name, Completable<Counter> promise) {
    promise.fail(unsupported());
  }

  private static UnsupportedOperationException unsupported() {
    return new UnsupportedOperationException("hsmbridge's membership carries no shared data (maps, locks, counters)"
        + " and no Vert.x HA");
  }

  private static java.util.concurrent.ThreadFactory daemon(String name) {
    return r -> {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      return t;
    };
  }

  private static void sleepQuietly(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static void closeQuietly(java.io.Closeable c) {
    try {
      if (c != null) {
        c.close();
      }
    } catch (IOException ignored) {
      // closing
    }
  }

  @Override
  public String toString() {
    return "CertifiedClusterManager[" + nodeId + " at " + self + ", " + remotes.size() + " other member(s)]";
  }
}
