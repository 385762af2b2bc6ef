package io.hsmbridge.agent.replication;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.ratis.RaftConfigKeys;
import org.apache.ratis.client.RaftClient;
import org.apache.ratis.client.RaftClientConfigKeys;
import org.apache.ratis.client.impl.ClientProtoUtils;
import org.apache.ratis.conf.Parameters;
import org.apache.ratis.conf.RaftProperties;
import org.apache.ratis.grpc.GrpcConfigKeys;
import org.apache.ratis.grpc.GrpcTlsConfig;
import org.apache.ratis.proto.RaftProtos.StartLeaderElectionRequestProto;
import org.apache.ratis.protocol.ClientId;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.protocol.RaftClientReply;
import org.apache.ratis.protocol.RaftGroup;
import org.apache.ratis.protocol.RaftGroupMemberId;
import org.apache.ratis.protocol.RaftGroupId;
import org.apache.ratis.protocol.RaftPeer;
import org.apache.ratis.protocol.RaftPeerId;
import org.apache.ratis.retry.RetryPolicies;
import org.apache.ratis.rpc.SupportedRpcType;
import org.apache.ratis.server.DivisionInfo;
import org.apache.ratis.server.RaftServer;
import org.apache.ratis.server.RaftServerConfigKeys;
import org.apache.ratis.server.protocol.TermIndex;
import org.apache.ratis.server.storage.RaftStorage;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;
import org.apache.ratis.util.TimeDuration;

/**
 * The cluster's ordered, durable mutation log on one agent: an Apache Ratis peer (id = the HSM's id) in
 * the Raft group of all HSMs, whose state machine ({@link TokenStateMachine}) applies committed entries
 * to this HSM's token through an {@link Applier}, plus a client that submits mutations to the group's
 * leader. A mutation is committed once a majority of the group has it in its log; a minority (for
 * example the losing side of a partition) cannot commit, so {@link #submit} then does not complete.
 *
 * <p>Transport is Ratis's gRPC RPC on ONE port per peer (peer-to-peer, client and admin services
 * together), mutual TLS on every connection, made and accepted, with the {@link RaftTls} given at start:
 * a connection whose other side shows a certificate the trust manager refuses (in a cluster: anything but
 * an agent certificate of the cluster CA) is closed during the handshake, before any Raft request is
 * read, so such a caller can neither list groups, nor submit, nor change the membership. See
 * docs/replication.md.
 */
public final class MutationLog implements AutoCloseable {
  /**
   * Ratis logs through SLF4J, which slf4j-jdk14 sends to java.util.logging and so to node.log. Its INFO is a
   * line per election, segment and configuration step: warnings only, unless {@code -Dhsmbridge.ratis.log=INFO}
   * (or FINE) asks for more while a problem is being looked into. A static reference keeps the level set.
   */
  private static final java.util.logging.Logger RATIS_LOG = ratisLog();

  private static java.util.logging.Logger ratisLog() {
    java.util.logging.Logger l = java.util.logging.Logger.getLogger("org.apache.ratis");
    try {
      l.setLevel(java.util.logging.Level.parse(System.getProperty("hsmbridge.ratis.log", "WARNING")));
    } catch (IllegalArgumentException e) {
      l.setLevel(java.util.logging.Level.WARNING);
    }
    return l;
  }

  /**
   * How long the leader waits between attempts to reach a follower that failed (Ratis's wait policy: pairs
   * of wait and attempts). Ratis's default waits 5 s once a follower has failed some 30 times, so a host
   * restarted after a few seconds down was reached 5-6 s after its Raft server listened (seen in
   * FrontDoorsTest: "Follower failed" until the first INCONSISTENCY reply ~6 s after the restart) and
   * served that much later. An attempt at a dead peer is one refused connection: every 250 ms (randomised
   * by Ratis between half and one and a half of it) costs nothing on a cluster of a few HSMs.
   */
  static final String APPENDER_RETRY_POLICY = "1ms,10, 250ms,1000000000";
  /** Election timeouts: above Ratis's 150-300 ms default so a busy 2-core host does not churn leaders. */
  static final TimeDuration ELECTION_TIMEOUT_MIN = TimeDuration.valueOf(500, TimeUnit.MILLISECONDS);
  static final TimeDuration ELECTION_TIMEOUT_MAX = TimeDuration.valueOf(1000, TimeUnit.MILLISECONDS);
  static final TimeDuration REQUEST_TIMEOUT = TimeDuration.valueOf(3, TimeUnit.SECONDS);
  /** The claimed snapshot's file in the data directory (see TokenStateMachine). */
  static final String SNAPSHOT_CLAIM = "raft-snapshot";
  static final TimeDuration RETRY_SLEEP = TimeDuration.valueOf(100, TimeUnit.MILLISECONDS);
  /**
   * How long this HSM's client waits for one reply to a submitted entry before it sends it again (same call
   * id; the entries are idempotent). The leader replies once it has applied the entry: when the leader dies
   * after committing but before replying, nothing tells the client, and with Ratis's 3 s it waited 3 s before
   * asking the new leader (FrontDoorsTest: a creation's commit took 2,985 ms after the leader's SIGKILL).
   */
  static final TimeDuration SUBMIT_REQUEST_TIMEOUT = TimeDuration.valueOf(1, TimeUnit.SECONDS);

  /** One HSM of the group: its id and the address of its Raft endpoint. */
  public record Peer(String id, String host, int port) {
    public Peer {
      Objects.requireNonNull(id, "id");
      Objects.requireNonNull(host, "host");
      if (id.isBlank()) {
        throw new IllegalArgumentException("peer id is blank");
      }
      if (port <= 0 || port > 65535) {
        throw new IllegalArgumentException("bad port " + port + " for peer " + id);
      }
    }

    /** A peer on 127.0.0.1, the default. */
    public static Peer loopback(String id, int port) {
      return new Peer(id, "127.0.0.1", port);
    }

    public String address() {
      return host + ":" + port;
    }

    RaftPeer toRaft() {
      return RaftPeer.newBuilder().setId(RaftPeerId.valueOf(id)).setAddress(address()).build();
    }

    static Peer fromRaft(RaftPeer p) {
      String address = p.getAddress();
      int colon = address.lastIndexOf(':');
      return new Peer(p.getId().toString(), address.substring(0, colon), Integer.parseInt(address.substring(colon + 1)));
    }
  }

  private final Peer self;
  private final RaftGroup group;
  private final RaftProperties properties;
  private final Parameters parameters;
  private final TokenStateMachine stateMachine;
  private final RaftServer server;
  private final RaftClient client;
  private final ExecutorService submitters;

  private MutationLog(Peer self, RaftGroup group, RaftProperties properties, Parameters parameters,
      TokenStateMachine stateMachine, RaftServer server, RaftClient client) {
    this.self = self;
    this.group = group;
    this.properties = properties;
    this.parameters = parameters;
    this.stateMachine = stateMachine;
    this.server = server;
    this.client = client;
    this.submitters = Executors.newCachedThreadPool(r -> {
      Thread t = new Thread(r, "mutation-log-submit-" + self.id());
      t.setDaemon(true);
      return t;
    });
  }

  /** The Raft group id of a cluster, derived from its name so every agent computes the same one. */
  public static UUID groupIdFor(String clusterName) {
    return UUID.nameUUIDFromBytes(("hsmbridge-mutation-log:" + clusterName).getBytes(StandardCharsets.UTF_8));
  }

  /**
   * Starts this HSM's Raft peer and its client. The Raft log lives under {@code dataDir/raft}; starting
   * again over an existing directory recovers the log and catches up from the leader.
   *
   * <p>{@code peers} is only the initial configuration of a NEW storage directory. Over an existing one, the
   * group's membership is the last configuration entry in the recovered log (measured, see
   * docs/replication.md): changes made with {@link #setPeers} survive restarts whatever list is passed here.
   *
   * <p>A new HSM joins a running group by starting over an empty directory with the target membership
   * (the current peers plus itself) and then calling {@link #setPeers} with the same list: the leader
   * first brings the new peer's log up to date, then commits the new configuration; the new peer's
   * state machine applies every earlier entry in order.
   *
   * @param selfId this HSM's id; must be one of {@code peers}
   * @param peers every HSM of the group (the same list on every agent), including this one
   * @param groupId the group's id, e.g. {@link #groupIdFor(String)}
   * @param dataDir the agent's data directory
   * @param applier where committed mutations are applied
   * @param tls this peer's certificate and which certificates it accepts, on every connection
   * @param events where refused entries and membership changes are reported (e.g. the HSM's audit log)
   */
  public static MutationLog start(String selfId, List<Peer> peers, UUID groupId, Path dataDir, Applier applier,
      RaftTls tls, LogEvents events) {
    return start(selfId, peers, groupId, dataDir, applier, tls, events, Compaction.OFF);
  }

  /**
   * {@link #start(String, List, UUID, Path, Applier, RaftTls, LogEvents)} with log compaction through
   * backups ({@link Compaction}; docs/replication.md): the claimed snapshot is kept in
   * {@code dataDir/raft-snapshot}.
   */
  public static MutationLog start(String selfId, List<Peer> peers, UUID groupId, Path dataDir, Applier applier,
      RaftTls tls, LogEvents events, Compaction compaction) {
    return start(selfId, peers, groupId, dataDir, applier, tls, events, compaction, false);
  }

  /**
   * As above; {@code joining}: this HSM is being added to a running group ({@link #setPeers} follows). Its
   * peer then starts over a new storage directory with an empty group, so that it waits for the leader
   * ("initializing", no election timer) until the leader's configuration holds it. Started with itself in the group it ran for election when
   * the leader had not reached it within an election timeout (0.5-1 s: the join request first went to the
   * joiner itself), got SHUTDOWN from the leader, whose configuration did not hold it yet, and closed for
   * good: the join then timed out (seen in a container restore every time, locally now and then).
   */
  public static MutationLog start(String selfId, List<Peer> peers, UUID groupId, Path dataDir, Applier applier,
      RaftTls tls, LogEvents events, Compaction compaction, boolean joining) {
    Objects.requireNonNull(tls, "tls: the mutation log never runs without mutual TLS");
    Peer self = peers.stream().filter(p -> p.id().equals(selfId)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("peer " + selfId + " is not in the group " + peers));
    if (peers.stream().map(Peer::id).distinct().count() != peers.size()) {
      throw new IllegalArgumentException("duplicate peer ids in " + peers);
    }
    RaftGroup group = RaftGroup.valueOf(RaftGroupId.valueOf(groupId), peers.stream().map(Peer::toRaft).toList());
    List<Peer> others = peers.stream().filter(p -> !p.id().equals(selfId)).toList();
    boolean waitForLeader = joining && !others.isEmpty();
    // An empty group: Ratis refuses a server that is not in the peers it is given, and starts one with none as
    // "initializing", which waits for the leader's first request.
    RaftGroup startGroup = waitForLeader ? RaftGroup.valueOf(group.getGroupId()) : group;

    RaftProperties props = new RaftProperties();
    RaftConfigKeys.Rpc.setType(props, SupportedRpcType.GRPC);
    GrpcConfigKeys.Server.setHost(props, self.host());
    GrpcConfigKeys.Server.setPort(props, self.port());
    // Client and admin services on the server's own port (gRPC would open a separate, separately
    // configured server for either if given another port): one port, one TLS policy.
    GrpcConfigKeys.Client.setHost(props, self.host());
    GrpcConfigKeys.Client.setPort(props, self.port());
    GrpcConfigKeys.Admin.setHost(props, self.host());
    GrpcConfigKeys.Admin.setPort(props, self.port());
    RaftServerConfigKeys.setStorageDir(props, List.of(dataDir.resolve("raft").toFile()));
    RaftServerConfigKeys.Rpc.setTimeoutMin(props, ELECTION_TIMEOUT_MIN);
    RaftServerConfigKeys.Rpc.setTimeoutMax(props, ELECTION_TIMEOUT_MAX);
    RaftClientConfigKeys.Rpc.setRequestTimeout(props, REQUEST_TIMEOUT);
    RaftServerConfigKeys.Log.Appender.setRetryPolicy(props, APPENDER_RETRY_POLICY);
    compact(props, compaction);

    Parameters parameters = tlsParameters(tls);

    TokenStateMachine sm = new TokenStateMachine(applier, events, compaction.snapshots(),
        dataDir.resolve(SNAPSHOT_CLAIM));
    neverExitTheJvm();
    RaftServer server = null;
    try {
      server = RaftServer.newBuilder()
          .setServerId(RaftPeerId.valueOf(selfId))
          .setGroup(startGroup)
          .setStateMachine(sm)
          .setProperties(props)
          .setParameters(parameters)
          .setOption(RaftStorage.StartupOption.RECOVER)
          .build();
      server.start();
      RaftProperties clientProps = new RaftProperties(props);
      RaftClientConfigKeys.Rpc.setRequestTimeout(clientProps, SUBMIT_REQUEST_TIMEOUT);
      RaftClient.Builder clientBuilder = RaftClient.newBuilder()
          .setProperties(clientProps)
          .setParameters(parameters)
          .setRaftGroup(group)
          .setClientId(ClientId.randomId())
          .setRetryPolicy(RetryPolicies.retryForeverWithSleep(RETRY_SLEEP));
      if (waitForLeader) {
        clientBuilder.setLeaderId(RaftPeerId.valueOf(others.get(0).id())); // a member, never the joiner itself
      }
      RaftClient client = clientBuilder.build();
      return new MutationLog(self, group, props, parameters, sm, server, client);
    } catch (IOException e) {
      closeQuietly(server);
      throw new UncheckedIOException("cannot start the mutation log peer " + selfId + " at " + self.address(), e);
    } catch (org.apache.ratis.util.ExitUtils.ExitException e) {
      // Ratis's "terminate" with System.exit disabled: its gRPC server could not listen (the port is taken).
      closeQuietly(server);
      Throwable why = e.getCause() != null ? e.getCause() : e;
      throw new UncheckedIOException("cannot start the mutation log peer " + selfId + ": cannot listen on "
          + self.address() + " (" + why.getMessage() + ")",
          why instanceof IOException io ? io : new IOException(why.getMessage(), why));
    } catch (RuntimeException e) {
      closeQuietly(server);
      throw e;
    }
  }

  /**
   * Ratis ends the whole JVM (System.exit) when its gRPC server cannot listen, the Raft port being taken: the
   * agent then vanished with no error of its own, and a test JVM running peers in-process died with it. With
   * exits disabled, Ratis throws instead and {@link #start} reports the port. Initialising Ratis's exit
   * state also installs its default uncaught-exception handler (exit on any uncaught exception, or log it
   * as "Terminating" when exits are disabled); the JVM's own handler is put back.
   */
  private static synchronized void neverExitTheJvm() {
    Thread.UncaughtExceptionHandler before = Thread.getDefaultUncaughtExceptionHandler();
    org.apache.ratis.util.ExitUtils.disableSystemExit();
    Thread.setDefaultUncaughtExceptionHandler(before);
  }

  /**
   * Snapshots are backups (TokenStateMachine): Raft asks for one every {@code everyEntries} applied
   * entries, and purges closed segments up to it and to what every peer committed (never further: a peer
   * that is down keeps the entries it lacks, until a backup covers them). A peer behind the purged part
   * gets a notification and restores a backup itself; the leader never streams snapshot files (there are
   * none).
   */
  private static void compact(RaftProperties props, Compaction compaction) {
    org.apache.ratis.util.SizeInBytes segment = org.apache.ratis.util.SizeInBytes.valueOf(compaction.segmentBytes());
    RaftServerConfigKeys.Log.setSegmentSizeMax(props, segment);
    RaftServerConfigKeys.Log.setPreallocatedSize(props,
        org.apache.ratis.util.SizeInBytes.valueOf(Math.min(compaction.segmentBytes(), 4L * 1024 * 1024)));
    RaftServerConfigKeys.Log.Appender.setInstallSnapshotEnabled(props, false);
    if (compaction.enabled()) {
      RaftServerConfigKeys.Snapshot.setAutoTriggerEnabled(props, true);
      RaftServerConfigKeys.Snapshot.setAutoTriggerThreshold(props, compaction.everyEntries());
      RaftServerConfigKeys.Log.setPurgeGap(props, 1);
      RaftServerConfigKeys.Log.setPurgeUptoSnapshotIndex(props, false);
    }
  }

  /**
   * Before the peer starts over a fresh log directory: its token was restored from a backup at
   * {@code term}/{@code index}, so its log begins after that entry (the earlier ones may be purged).
   */
  public static void recordSnapshot(Path dataDir, long term, long index) {
    new SnapshotClaim(dataDir.resolve(SNAPSHOT_CLAIM)).write(new Snapshots.Point(term, index));
  }

  /** The index of the first entry this peer's log still holds (above 0 once compaction purged some). */
  public long firstIndex() {
    try {
      return server.getDivision(group.getGroupId()).getRaftLog().getStartIndex();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * The term of the entry at {@code index} in this peer's log (or of its claimed snapshot, when that is at
   * {@code index}: the log after a purge, or a log started from a backup, does not hold it), else -1.
   */
  public long termAt(long index) {
    try {
      TermIndex ti = server.getDivision(group.getGroupId()).getRaftLog().getTermIndex(index);
      if (ti == null) {
        org.apache.ratis.statemachine.SnapshotInfo s = stateMachine.getLatestSnapshot();
        return s != null && s.getIndex() == index ? s.getTerm() : -1;
      }
      return ti.getTerm();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * The same TLS material, mutual authentication on, for each of gRPC's three services: server (peer to
   * peer), client (submit, read-only queries, group list/info) and admin (setConfiguration, leadership),
   * on the accepting and on the connecting side.
   */
  static Parameters tlsParameters(RaftTls tls) {
    GrpcTlsConfig config = new GrpcTlsConfig(tls.keyManager(), tls.trustManager(), true);
    Parameters parameters = new Parameters();
    GrpcConfigKeys.Server.setTlsConf(parameters, config);
    GrpcConfigKeys.Client.setTlsConf(parameters, config);
    GrpcConfigKeys.Admin.setTlsConf(parameters, config);
    return parameters;
  }

  /**
   * Submits an entry to the group. Completes with the entry's log index once a majority has committed
   * it (and the leader has applied it); it is then applied, in log order, by every peer's state machine,
   * at once on the peers that are up and on catch-up on the others — or refused by every peer alike when
   * its actor may not make it ({@link TokenApplier}; the future still completes with the index: callers
   * read the outcome from the token). Does not complete while no majority is reachable (the client keeps
   * retrying until {@link #close()}); callers bound the wait.
   */
  public CompletableFuture<Long> submit(Entry entry) {
    return submitEntry(entry.toBytes());
  }

  /**
   * Submits a mutation alone, as a format-1 entry without principal: {@link TokenApplier} refuses it.
   * For appliers that take every mutation (tests of the log itself).
   */
  public CompletableFuture<Long> submit(Mutation mutation) {
    return submitEntry(mutation.toBytes());
  }

  /** Submits an entry's bytes as they are (tests submit entries no {@link Mutation} would encode). */
  CompletableFuture<Long> submitEntry(byte[] entry) {
    Message message = Message.valueOf(ByteString.copyFrom(entry));
    // Ratis's blocking client follows NotLeaderException to the new leader and retries under the retry
    // policy with the same call id (the leader's retry cache then dedupes); with the Netty transport the
    // 3.1.3 async client hands a NotLeaderException raised during an election straight to the caller (seen
    // with the Netty transport this log used before gRPC; the blocking client is kept).
    return CompletableFuture.supplyAsync(() -> {
      try {
        return committedIndex(client.io().send(message));
      } catch (IOException e) {
        throw new CompletionException(e);
      }
    }, submitters);
  }

  private static long committedIndex(RaftClientReply reply) {
    if (!reply.isSuccess()) {
      Exception e = reply.getException();
      throw new CompletionException(e != null ? e : new IllegalStateException("mutation not committed: " + reply));
    }
    return reply.getLogIndex();
  }

  /**
   * The leader's applied index: the index of the last entry its applier applied (the same measure as
   * {@link #appliedIndex()}, so {@code appliedIndex() >= leaderAppliedIndex(t)} means this peer has caught
   * up with what the leader had applied when it answered). Asked through Ratis's read-only request
   * path, which only the current leader answers.
   *
   * @throws IllegalStateException when no leader answered within {@code timeout} (no leader elected, no
   *     majority reachable) or this thread was interrupted (its flag is then set again)
   */
  public long leaderAppliedIndex(Duration timeout) {
    RaftClientReply reply;
    try {
      reply = bounded(timeout,
          c -> c.io().sendReadOnly(Message.valueOf(ByteString.copyFrom(TokenStateMachine.APPLIED_INDEX_QUERY))));
    } catch (IOException | TimeoutException e) {
      throw new IllegalStateException("no mutation-log leader answered within " + timeout, e);
    }
    if (!reply.isSuccess()) {
      throw new IllegalStateException("the mutation-log leader did not answer the applied-index query", reply.getException());
    }
    byte[] index = reply.getMessage().getContent().toByteArray();
    if (index.length != Long.BYTES) {
      throw new IllegalStateException("the leader answered the applied-index query with " + index.length + " bytes");
    }
    return ByteBuffer.wrap(index).getLong();
  }

  /**
   * Changes the group's membership to exactly {@code peers} (add and/or remove HSMs) and returns once the
   * new configuration is committed. Ratis first catches up any new peer, then commits a joint and a new
   * configuration; a majority of both the old and the new membership must be reachable. Setting the
   * membership the group already has succeeds at once (so a retry is harmless). May be called on any
   * peer, including a new one (see {@link #start}) or one being removed.
   *
   * @throws IllegalStateException when the change is refused (e.g. another change is in progress) or not
   *     committed within {@code timeout}; the change may still complete later: read {@link #peers()}
   */
  public void setPeers(List<Peer> peers, Duration timeout) {
    if (peers.isEmpty() || peers.stream().map(Peer::id).distinct().count() != peers.size()) {
      throw new IllegalArgumentException("membership must be non-empty, without duplicate ids: " + peers);
    }
    List<RaftPeer> target = peers.stream().map(Peer::toRaft).toList();
    RaftClientReply reply;
    try {
      reply = bounded(timeout, c -> c.admin().setConfiguration(target));
    } catch (IOException | TimeoutException e) {
      throw new IllegalStateException("membership change to " + ids(peers) + " not committed within " + timeout
          + ": is a majority of the old and the new membership reachable?", e);
    }
    if (!reply.isSuccess()) {
      throw new IllegalStateException("membership change to " + ids(peers) + " refused", reply.getException());
    }
  }

  /**
   * The group's current membership as this peer sees it (its latest configuration entry, committed or
   * not), sorted by id. A peer that is behind may not know of a recent change yet.
   *
   * @throws IllegalStateException when this peer's division is not running
   */
  public List<Peer> peers() {
    Collection<RaftPeer> conf;
    try {
      conf = server.getDivision(group.getGroupId()).getRaftConf().getCurrentPeers();
    } catch (IOException e) {
      throw new IllegalStateException("this peer's Raft division is not running", e);
    }
    return conf.stream().map(Peer::fromRaft).sorted(Comparator.comparing(Peer::id)).toList();
  }

  private static List<String> ids(List<Peer> peers) {
    return peers.stream().map(Peer::id).toList();
  }

  private RaftClientReply bounded(Duration timeout, BoundedCall.ClientCall call) throws IOException, TimeoutException {
    return BoundedCall.run(properties, parameters, currentGroup(), timeout, submitters, call);
  }

  /**
   * The group with its current membership (for a new client to find the leader), or the configured one while
   * this peer knows none (a joiner waiting for the leader); this peer last, so that a client tries the others
   * first (a joiner's own server cannot answer for the group).
   */
  private RaftGroup currentGroup() {
    Collection<RaftPeer> peers;
    try {
      peers = server.getDivision(group.getGroupId()).getRaftConf().getCurrentPeers();
    } catch (IOException e) {
      peers = List.of();
    }
    if (peers.isEmpty()) {
      peers = group.getPeers();
    }
    List<RaftPeer> ordered = new java.util.ArrayList<>(peers);
    ordered.sort(Comparator.comparing((RaftPeer p) -> p.getId().toString().equals(self.id())));
    return RaftGroup.valueOf(group.getGroupId(), ordered);
  }

  /**
   * Every address this peer's gRPC RPC listens on: the server, client and admin services (gRPC opens a
   * separate server for a service given a port of its own; {@link #start} gives all three the same port).
   */
  List<java.net.InetSocketAddress> listeningAddresses() {
    org.apache.ratis.grpc.server.GrpcService rpc = (org.apache.ratis.grpc.server.GrpcService) server.getServerRpc();
    return List.of(rpc.getInetSocketAddress(), rpc.getClientServerAddress(), rpc.getAdminServerAddress());
  }

  /** This peer's id and address. */
  public Peer self() {
    return self;
  }

  /** The log index of the last entry this peer's applier applied (0 when none). */
  public long appliedIndex() {
    return stateMachine.appliedIndex();
  }

  /** How many committed entries this peer refused and skipped since it started (see {@link RefusedEntryException}). */
  public long refusedEntries() {
    return stateMachine.refusedEntries();
  }

  /** Why this peer refused the entry at {@code index} (kept for its latest 1024 refusals), or null. */
  public String refusal(long index) {
    return stateMachine.refusal(index);
  }

  /** Why this peer's state machine stopped applying entries, or null while it is healthy. */
  public Throwable failure() {
    return stateMachine.failure();
  }

  /** The last entry this peer refused since it started, or null. */
  public TokenStateMachine.Refusal lastRefusal() {
    return stateMachine.lastRefusal();
  }

  /** How {@link #leaderProcessLeft}'s answer begins when the HSM that left was not this peer's leader. */
  public static final String NOT_THE_LEADER = "not this peer's leader";

  /**
   * Called when the process of HSM {@code hsmId} has left the cluster's membership (its link closed: a
   * killed process's socket closes at once). If it was this peer's leader, one survivor, the peer whose id
   * sorts first among the others, starts an election at once instead of waiting for its follower timeout
   * (0.5-1 s drawn, late on a loaded host, and a second one when the two survivors' timers fire together
   * and split the vote: docs/cluster.md measured elections of 1.2-2.5 s after a leader's SIGKILL).
   *
   * <p>How: Ratis's leadership transfer, in which a leader asks a caught-up follower to stand now, is asked
   * of this peer's own server in the dead leader's name, with this peer's last entry as the leader's. The
   * election is an ordinary one at the next term: the other peers vote only if this peer's log is at least
   * as complete as theirs, so a survivor that lacks an entry cannot win and the others' timeouts elect one
   * as before. Only one survivor stands, or two at once would split the vote again.
   *
   * @return what was done, for the log; never throws
   */
  public String leaderProcessLeft(String hsmId) {
    try {
      RaftServer.Division division = server.getDivision(group.getGroupId());
      DivisionInfo info = division.getInfo();
      RaftPeerId leader = info.getLeaderId();
      if (!info.isFollower() || leader == null || !leader.toString().equals(hsmId)) {
        return NOT_THE_LEADER + " (" + info.getCurrentRole() + ", leader " + leader + ")";
      }
      String standing = division.getRaftConf().getCurrentPeers().stream().map(p -> p.getId().toString())
          .filter(id -> !id.equals(hsmId)).sorted().findFirst().orElse(null);
      if (!self.id().equals(standing)) {
        return standing + " stands";
      }
      TermIndex last = division.getRaftLog().getLastEntryTermIndex();
      if (last == null || last.getTerm() != info.getCurrentTerm()) {
        return "no entry of the current term here: left to the timeouts";
      }
      StartLeaderElectionRequestProto request = StartLeaderElectionRequestProto.newBuilder()
              .setServerRequest(ClientProtoUtils.toRaftRpcRequestProtoBuilder(
                  RaftGroupMemberId.valueOf(leader, group.getGroupId()),
                  RaftPeerId.valueOf(self.id())))
              .setLeaderLastEntry(last.toProto())
              .build();
      boolean started = server.startLeaderElection(request).getServerReply().getSuccess();
      return started ? "election started at " + last : "Ratis refused to start an election";
    } catch (IOException | RuntimeException e) {
      return "no election started: " + e;
    }
  }

  /** The leader this peer knows of, if any (for log lines). */
  public java.util.Optional<String> leaderId() {
    try {
      RaftPeerId id = server.getDivision(group.getGroupId()).getInfo().getLeaderId();
      return java.util.Optional.ofNullable(id).map(RaftPeerId::toString);
    } catch (IOException | RuntimeException e) {
      return java.util.Optional.empty();
    }
  }

  /**
   * Whether this peer's Raft division is alive. False once its state machine failed to apply an entry
   * (Ratis then closes the division; the peer must be restarted to retry the entry).
   */
  public boolean isAlive() {
    try {
      return server.getDivision(group.getGroupId()).getInfo().isAlive();
    } catch (IOException e) {
      return false;
    }
  }

  /** Whether this peer is currently the group's leader. */
  public boolean isLeader() {
    try {
      return server.getDivision(group.getGroupId()).getInfo().isLeader();
    } catch (IOException e) {
      return false;
    }
  }

  /** Stops the client and the peer; its log stays on disk for the next {@link #start}. */
  @Override
  public void close() {
    try {
      client.close();
    } catch (IOException e) {
      // the server must be closed all the same
    } finally {
      submitters.shutdownNow();
      closeQuietly(server);
    }
  }

  private static void closeQuietly(RaftServer server) {
    if (server != null) {
      try {
        server.close();
      } catch (IOException ignored) {
        // nothing more to release
      }
    }
  }

  @Override
  public String toString() {
    return "MutationLog[" + self.id() + "@" + self.address() + ", group " + group.getGroupId() + "]";
  }
}
