package io.hsmbridge.agent.node;

import io.hsmbridge.agent.AgentVerticle;
import io.hsmbridge.agent.ClusterOperations;
import io.hsmbridge.agent.backup.BackupOperations;
import io.hsmbridge.agent.backup.BackupRestorer;
import io.hsmbridge.agent.backup.BackupSnapshots;
import io.hsmbridge.agent.backup.store.BackupCatalog;
import io.hsmbridge.agent.replication.Compaction;
import io.hsmbridge.agent.replication.Snapshots;
import io.hsmbridge.agent.backup.BackupSchedule;
import io.hsmbridge.agent.backup.BackupScheduler;
import io.hsmbridge.agent.cluster.AgentState;
import io.hsmbridge.agent.cluster.AppliedWatch;
import io.hsmbridge.agent.membership.ClusterConfig;
import io.hsmbridge.agent.membership.RaftTrust;
import io.hsmbridge.agent.membership.ClusterCa;
import io.hsmbridge.agent.replication.Applier;
import io.hsmbridge.agent.replication.Entry;
import io.hsmbridge.agent.replication.Mutation;
import io.hsmbridge.agent.replication.MutationLog;
import io.hsmbridge.agent.replication.RefusedEntryException;
import io.hsmbridge.agent.replication.TokenApplier;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Logger;

/**
 * An agent process ({@code node.role=agent}): one HSM as a member of the cluster. Start-up order matters
 * and each step waits for the previous one:
 * <ol>
 *   <li>open the token (integrity scan, profile probe) and join the clustered event bus;</li>
 *   <li>make sure the token holds the cluster key: create it (first HSM of a new cluster) or fetch it
 *       from a member, wrapped to a transport key made inside this token ({@link ClusterKeyJoin});</li>
 *   <li>start this HSM's peer of the Raft mutation log, mutual TLS with its agent certificate, agents
 *       only ({@link RaftTrust}) (and, for an added HSM, ask the group to take it in); committed entries
 *       are applied to the token from here on, starting after the applied index stored in the token;
 *       refused entries and membership changes go to the audit log, opened before;</li>
 *   <li>catch up: wait until this token has applied everything the leader had applied when we asked;</li>
 *   <li>serve requests, and heartbeat (state, applied index, objects, load) so bridges can route.</li>
 * </ol>
 * Heartbeats start at step 1, so {@code hsmbridge status} shows an HSM that is still catching up.
 *
 * <p>With {@code frontDoor.enabled} the host serves clients too: once its HSM has caught up, and before it
 * says SERVING (the reason is where it is started), it starts the front door it was given
 * ({@link FrontDoorStarter}, from the process entry point in the bridge module: the front door's code and
 * settings live there, and this module does not depend on it).
 */
public final class AgentNode {
  private static final Logger LOG = Logger.getLogger(AgentNode.class.getName());
  private static final Duration CATCH_UP_LIMIT = Duration.ofMinutes(5);
  private static final Duration LEADER_WAIT = Duration.ofSeconds(60);
  /** How far behind the leader an HSM may start serving: a fraction of a second of applies. */
  private static final long CLOSE_ENOUGH = 10;
  /** Questions to the leader at most before serving: a cluster that commits faster than this HSM applies never lets it close the gap. */
  private static final int CATCH_UP_ROUNDS = 5;
  private static final int JOIN_ATTEMPTS = 3;

  private final NodeSettings config;
  /** Starts this host's front door ({@code frontDoor.enabled}), else null. */
  private final FrontDoorStarter frontDoorStarter;
  private final HsmToken hsm;
  private final Vertx vertx;
  private final AtomicReference<AgentState> state;
  /** When the backup schedule is first looked at after serving. */
  private static final java.time.Duration FIRST_BACKUP_CHECK = java.time.Duration.ofSeconds(3);
  private volatile MutationLog log;
  private volatile BackupOperations backups;
  private volatile AgentVerticle agent;
  /** This run's own event-bus address (see Addresses.agentIncarnation), announced in every heartbeat. */
  private final String address;
  private volatile io.hsmbridge.agent.audit.AuditWriter audit;
  /** Where this HSM's audit log keeps its last sequence and chain MAC: a private object in the token. */
  private io.hsmbridge.agent.audit.AuditLog.AnchorStore auditAnchor;
  private boolean stopped;

  /** {@code host:port} of this host's client endpoint when it is a front door, else null. */
  private volatile String frontDoor;

  private AgentNode(NodeSettings config, FrontDoorStarter frontDoorStarter, HsmToken hsm, Vertx vertx,
      AtomicReference<AgentState> state) {
    this.config = config;
    this.frontDoorStarter = frontDoorStarter;
    this.hsm = hsm;
    this.vertx = vertx;
    this.state = state;
    this.address = Addresses.agentIncarnation(config.agent().hsmId(), java.util.UUID.randomUUID().toString());
  }

  /**
   * Starts the agent process and blocks until it serves; throws HsmException on any failure.
   *
   * @param frontDoor starts this host's front door once its HSM serves; required when
   *     {@code frontDoor.enabled} ({@link NodeSettings#frontDoor()}), else ignored (may be null)
   */
  public static AgentNode start(NodeSettings config, FrontDoorStarter frontDoor) {
    if (config.frontDoor() && frontDoor == null) {
      throw new IllegalArgumentException("frontDoor.enabled needs a front door to start");
    }
    if (config.stateDir() != null) {
      NodeProcess.deleteEndpoint(config.stateDir());
    }
    // An agent SIGKILLed while its token wrote an object leaves a 0-byte object file, and the integrity scan
    // refuses such a token unless told to quarantine it (integrity.repair). Every node is an HSM of a cluster
    // (one of one too), whose keys are in the mutation log: it quarantines the file itself and re-applies the
    // log (replayAfterQuarantine: from its applied index, or all of it when a key was being rewritten in place),
    // which redoes whatever the cut-short write belonged to (NodeCrashTest).
    // Without this, `hsmbridge up` could not restart an agent killed mid-write (ClusterScenarioTest).
    HsmToken hsm = NodeProcess.openToken(config.agent().token().withRepair(true));
    Vertx vertx;
    try {
      vertx = NodeProcess.startVertx(config);
    } catch (RuntimeException e) {
      hsm.close();
      throw e;
    }
    AgentNode node = new AgentNode(config, config.frontDoor() ? frontDoor : null, hsm, vertx,
        new AtomicReference<>(AgentState.STARTING));
    try {
      node.run();
      return node;
    } catch (RuntimeException e) {
      node.stop();
      throw e;
    }
  }

  /** This HSM's place among {@code peers} in id order: its turn for a due backup (BackupSchedule). */
  private static int rank(String hsmId, List<MutationLog.Peer> peers) {
    return (int) peers.stream().map(MutationLog.Peer::id).filter(id -> id.compareTo(hsmId) < 0).count();
  }

  /** {@code backup.dir}, or null when this HSM keeps no backups. */
  private java.nio.file.Path backupDir() {
    String dir = config.agent().properties().getProperty("backup.dir");
    return dir == null || dir.isBlank() ? null : java.nio.file.Path.of(dir.trim());
  }

  /**
   * A new HSM joining the cluster (issue #12, "sync through backups"): when its token is fresh (no entry
   * applied, no user) and the cluster's newest READY backup is in {@code backup.dir}, it restores that
   * backup (authenticated inside the token under the PBK it just received with the cluster key) and then
   * applies only the log entries after the backup's index, instead of the whole log. Any problem with the
   * backup (none yet, unreadable, altered) falls back to the whole log: a backup only saves time here.
   */
  private void restoreNewestBackup(String hsmId, BackupCatalog catalog, java.nio.file.Path raftDir) {
    if (catalog == null || hsm.appliedIndex().read() != 0 || !hsm.users().list().isEmpty()) {
      return;
    }
    try {
      var newest = catalog.newestReady(config.cluster().name());
      if (newest.isEmpty()) {
        LOG.info(hsmId + " found no backup of cluster " + config.cluster().name() + " in " + backupDir() + ": it applies the whole log");
        return;
      }
      long started = System.nanoTime();
      var restored = BackupRestorer.restore(hsm, catalog.backupFile(newest.get().backupId()), config.cluster().name(), n -> { });
      LOG.info(hsmId + " restored backup " + restored.backupId() + " (" + restored.keys() + " keys, " + restored.users()
          + " users) in " + (System.nanoTime() - started) / 1_000_000 + " ms; it applies the log after index "
          + restored.appliedIndex() + (restored.appliedTerm() >= 0 ? " (term " + restored.appliedTerm() + ")"
          : " (the backup does not say its entry's term: the log before it must still exist)"));
      if (restored.appliedTerm() >= 0) {
        // Its Raft log starts after the backup: the entries before it need not exist anywhere any more.
        MutationLog.recordSnapshot(raftDir, restored.appliedTerm(), restored.appliedIndex());
      }
    } catch (RuntimeException e) {
      LOG.warning(hsmId + " could not restore the newest backup (" + BackupRestorer.reason(e) + "): it applies the whole log");
    }
  }

  /**
   * A backup is being restored over the token (it fell behind the purged log): it serves nothing until the
   * restore ends, then catches up as after a start.
   */
  private void restoring(boolean now) {
    if (now) {
      state.compareAndSet(AgentState.SERVING, AgentState.CATCHING_UP);
    } else if (agent != null) {
      state.compareAndSet(AgentState.CATCHING_UP, AgentState.SERVING);
    }
    publishHeartbeat();
  }

  private void run() {
    String hsmId = config.agent().hsmId();
    RaftSettings raft = config.raft();
    // First: a certificate the other agents would refuse fails the start here, with a clear error.
    io.hsmbridge.agent.replication.RaftTls raftTls = RaftTrust.forAgent(config.cluster());
    vertx.setPeriodic(1, raft.heartbeat().toMillis(), t -> publishHeartbeat());
    new ClusterKeyJoin(vertx, hsm, hsmId, stateDir()).ensure(raft.createKey());
    ClusterKeyJoin.serve(vertx, hsm, ClusterCa.trustAnchor(config.cluster()));

    replayAfterQuarantine(hsmId);
    BackupCatalog catalog = BackupOperations.catalogAt(backupDir());
    if (catalog != null) {
      for (var id : catalog.failInterruptedBy(hsmId)) {
        LOG.warning(hsmId + " stopped while making backup " + id.value() + ": it is FAILED now");
      }
    }
    if (raft.join()) {
      restoreNewestBackup(hsmId, catalog, raft.dir());
    }
    AppliedWatch applied = new AppliedWatch(0);
    // Before the log starts: every entry this HSM applies or refuses, replayed ones included, is audited.
    openAudit();
    TokenApplier applier = new TokenApplier(hsm, index -> {
      applied.advance(index);
      vertx.eventBus().publish(Addresses.HEARTBEAT, new JsonObject().put("hsmId", hsmId).put("applied", index));
    }, audit::append);
    applied.advance(applier.lastApplied());
    BackupOperations backups = new BackupOperations(hsmId, config.cluster().name(), hsm, applier, catalog,
        index -> log == null ? -1 : log.termAt(index), BackupOperations.otherStores(config.agent().properties()),
        busy -> publishHeartbeat());
    this.backups = backups;
    Compaction compaction;
    try {
      compaction = Compaction.from(config.agent().properties(), catalog == null ? Snapshots.NONE
          : new BackupSnapshots(hsmId, config.cluster().name(), hsm, applier, catalog, this::restoring));
    } catch (IllegalArgumentException e) {
      throw io.hsmbridge.agent.AgentConfig.invalid(e.getMessage());
    }
    BackupScheduler scheduler = new BackupScheduler(backups, hsm, config.cluster().name(),
        BackupSchedule.interval(config.agent().properties()), rank(hsmId, raft.peers()), java.time.Clock.systemUTC());
    io.hsmbridge.agent.audit.LogEventAudit logAudit = new io.hsmbridge.agent.audit.LogEventAudit(audit);
    log = MutationLog.start(hsmId, raft.peers(), MutationLog.groupIdFor(config.cluster().name()), raft.dir(),
        new RetryingApplier(hsmId, applier), raftTls, new io.hsmbridge.agent.replication.LogEvents() {
          @Override
          public void refused(long index, String kind, String reason) {
            logAudit.refused(index, kind, reason);
          }

          @Override
          public void configurationChanged(long index, List<String> peers, List<String> oldPeers) {
            logAudit.configurationChanged(index, peers, oldPeers);
            scheduler.membershipChanged(index); // an HSM added or removed: a lifecycle backup is due
          }
        }, compaction, raft.join());
    if (raft.join() && log.peers().stream().anyMatch(p -> p.id().equals(hsmId))) {
      // Restarted after it joined (raft.join still set, as in a container's environment): asking again for
      // exactly raft.peers would drop any HSM added since.
      LOG.info(hsmId + " is a member of the mutation log group already " + log.peers() + ": it does not ask to join again");
    } else if (raft.join()) {
      joinGroup(raft.peers());
      LOG.info(hsmId + " joined the mutation log group " + raft.peers());
    }
    electOnLeaderLoss(hsmId);
    state.set(AgentState.CATCHING_UP);
    catchUp(applied);

    ClusterOperations operations = new ClusterOperations(hsmId, hsm, log, applied, state::get, raft.commitTimeout(),
        applier, backups);
    agent = new AgentVerticle(hsmId, address, hsm, audited(operations), config.workerSpinMicros(), config.workerThreads());
    await(vertx.deployVerticle(agent).toCompletionStage().toCompletableFuture(), "deploy the agent");
    JsonObject written = new JsonObject();
    if (frontDoorStarter != null) {
      // This HSM host is a front door too: clients reach the cluster through it as through the bridge. Started
      // before this HSM says SERVING: the start keeps this JVM's CPU busy for 1-2 s (deploying, TLS warm-up,
      // first compilations), and other front doors that sent it requests meanwhile waited for their hedge
      // (FrontDoorsTest: 1.5 s stalls of signatures and reads each time a restarted host came back). Until
      // then this front door sends its requests to the other HSMs.
      FrontDoorEndpoint endpoint = frontDoorStarter.start(vertx);
      written = endpoint.toJson();
      frontDoor = ClusterConfig.hostPort(endpoint.host(), endpoint.port());
    }
    state.set(AgentState.SERVING);
    publishHeartbeat();
    if (backups.catalog() != null) {
      // The first look soon after serving: a cluster restored from a backup, or just grown, has no backup
      // of its own yet, and HSMs joining it wait for one (the log before it is not there).
      vertx.setPeriodic(FIRST_BACKUP_CHECK.toMillis(), BackupScheduler.CHECK_EVERY.toMillis(), t -> {
        if (state.get() == AgentState.SERVING) {
          vertx.executeBlocking(() -> {
            scheduler.tick();
            return null;
          }, false);
        }
      });
    }
    NodeProcess.writeEndpoint(config.stateDir(), written.put("role", "agent").put("hsmId", hsmId)
        .put("pid", ProcessHandle.current().pid()));
    LOG.info("hsmbridge agent " + hsmId + " serving token '" + hsm.label() + "' (applied " + applied.applied()
        + ", " + hsm.keys().count() + " keys)");
  }

  /**
   * When the process of this HSM's Raft leader leaves the membership, one survivor stands for election at
   * once ({@link MutationLog#leaderProcessLeft}): a SIGKILLed process's membership link closes within tens
   * of milliseconds, the Raft follower timeout only after 0.5-1 s (more under load, twice on a split vote).
   */
  private void electOnLeaderLoss(String hsmId) {
    if (!(vertx instanceof io.vertx.core.internal.VertxInternal vi)
        || !(vi.clusterManager() instanceof io.hsmbridge.agent.membership.CertifiedClusterManager membership)) {
      return;
    }
    membership.onAgentLeft(left -> {
      if (left.equals(hsmId)) {
        return; // an earlier run of this HSM's own process, whose link closed late
      }
      vertx.executeBlocking(() -> {
        MutationLog current = log;
        String outcome = current == null ? null : current.leaderProcessLeft(left);
        if (outcome != null && !outcome.startsWith(MutationLog.NOT_THE_LEADER)) {
          LOG.info(hsmId + ": the process of " + left + ", the Raft leader, left the membership: " + outcome);
        }
        return null;
      }, false);
    });
  }

  /**
   * Asks the running group to take this HSM in. The leader commits the new membership only once this
   * peer has caught up with the log, which on a loaded 2-core host took over a minute once (measured in
   * CI with two cluster suites running at once); the same request is repeated, it is idempotent.
   */
  private void joinGroup(java.util.List<MutationLog.Peer> peers) {
    IllegalStateException last = null;
    for (int attempt = 1; attempt <= JOIN_ATTEMPTS; attempt++) {
      try {
        log.setPeers(peers, LEADER_WAIT);
        return;
      } catch (IllegalStateException e) {
        last = e;
        LOG.warning("joining the mutation log group, attempt " + attempt + " of " + JOIN_ATTEMPTS + ": " + e.getMessage());
      }
    }
    throw last;
  }

  /**
   * This HSM's hash-chained audit log ({@code <state.dir>/audit.log}, or next to the Raft log), chained
   * with an HMAC key inside this token. Opened before the mutation log starts: what the log reports while
   * this HSM catches up (refused entries, membership changes) is audited too.
   */
  private void openAudit() {
    auditAnchor = io.hsmbridge.agent.audit.AuditLog.AnchorStore.in(hsm.auditAnchor());
    io.hsmbridge.agent.audit.AuditLog log;
    try {
      log = io.hsmbridge.agent.audit.AuditLog.open(auditFile(), hsm.auditKey()::mac, java.time.Clock.systemUTC(),
          auditAnchor, config.agent().hsmId());
    } catch (java.io.UncheckedIOException e) {
      // e.g. a state.dir that does not exist: say which setting, not only which file
      throw io.hsmbridge.agent.AgentConfig.invalid("cannot open the audit log " + auditFile() + " (state.dir, or"
          + " the Raft directory without it, must be a writable directory): " + e.getCause());
    }
    audit = new io.hsmbridge.agent.audit.AuditWriter(log, "hsmbridge-audit-" + config.agent().hsmId());
  }

  private java.nio.file.Path auditFile() {
    return stateDir().resolve("audit.log");
  }

  /**
   * Decides how much of the log a quarantined object file costs, then lets the token announce its in-place
   * rewrites to this process's marker. An empty file is an object whose write a kill cut short. A new object
   * (a key an entry installs, a record's next generation) belongs to an entry not yet recorded as applied,
   * or to nothing acknowledged: re-applying from the token's applied index redoes it. An applied-index slot
   * rewritten in place leaves the other slot, one entry lower: that entry is applied again (idempotent). Only
   * a key rewritten in place (its label) can lose an object an applied entry made; then, and only then, the
   * whole log is re-applied, every entry idempotent, and this HSM serves once it has caught up again.
   */
  private void replayAfterQuarantine(String hsmId) {
    RewriteMarker rewrites = new RewriteMarker(stateDir());
    String open = rewrites.leftOpen();
    if (!hsm.integrity().clean()) {
      if (open != null) {
        hsm.appliedIndex().write(0);
        LOG.warning(hsmId + " re-applies the whole mutation log: the integrity scan quarantined "
            + hsm.integrity().broken().size() + " object(s) while an in-place rewrite was under way (" + open + ")");
      } else {
        LOG.warning(hsmId + " re-applies the mutation log from its applied index " + hsm.appliedIndex().read()
            + ": the " + hsm.integrity().broken().size() + " quarantined object(s) were new or an applied-index slot"
            + " (no in-place rewrite was under way)");
      }
    }
    try {
      rewrites.clear();
    } catch (java.io.UncheckedIOException e) {
      throw io.hsmbridge.agent.AgentConfig.invalid("cannot use the state directory " + stateDir() + " (state.dir, or"
          + " the Raft directory without it, must be a writable directory): " + e.getCause());
    }
    hsm.keys().rewriteJournal(rewrites);
  }

  /** This HSM's own files (audit log, transport key request and certificate): state.dir, else the Raft directory. */
  private java.nio.file.Path stateDir() {
    return config.stateDir() != null ? config.stateDir() : config.raft().dir();
  }

  /** Every request this HSM serves goes to its audit log (see {@link #openAudit()}). */
  private io.hsmbridge.agent.RequestHandler audited(io.hsmbridge.agent.RequestHandler handler) {
    return new io.hsmbridge.agent.audit.AuditingHandler(handler, audit, auditFile(), hsm.auditKey()::mac, auditAnchor);
  }

  /**
   * Waits until this token has applied what the leader had applied when asked, then asks again while the
   * leader has moved on by more than {@link #CLOSE_ENOUGH} entries meanwhile (at most
   * {@link #CATCH_UP_ROUNDS} times): under a creation load the leader's index of the first question lay
   * ~100 entries (~3 s of applies) behind the cluster by the time this token reached it, so the HSM served
   * while still behind, and when another HSM died right after, every mutation's durability wait hung on it
   * (FrontDoorsTest in CI: a 2.9 s creation, "waiting until 2 HSMs applied it" on an HSM 108 entries
   * behind). Without a leader (no majority reachable) it serves what it has after {@link #LEADER_WAIT}: a
   * minority serves reads and crypto on the keys it holds, and never acknowledges a mutation.
   */
  private void catchUp(AppliedWatch applied) {
    long deadline = System.nanoTime() + CATCH_UP_LIMIT.toNanos();
    int rounds = 0;
    long target;
    try {
      target = log.leaderAppliedIndex(LEADER_WAIT);
    } catch (RuntimeException e) {
      LOG.warning("no mutation-log leader answered within " + LEADER_WAIT.toSeconds() + " s (" + e.getMessage()
          + "); serving the " + hsm.keys().count() + " keys this HSM holds (applied " + applied.applied() + ")");
      return;
    }
    while (true) {
      rounds++;
      awaitApplied(applied, target, deadline);
      if (rounds == CATCH_UP_ROUNDS) {
        break;
      }
      long leaderNow;
      try {
        leaderNow = log.leaderAppliedIndex(LEADER_WAIT);
      } catch (RuntimeException e) {
        break; // it reached what the leader had: serve, as after the first round
      }
      if (leaderNow - applied.applied() <= CLOSE_ENOUGH) {
        break;
      }
      target = leaderNow;
    }
    LOG.info(config.agent().hsmId() + " caught up with the cluster at sequence " + applied.applied()
        + (rounds > 1 ? " (" + rounds + " rounds: the cluster moved on while it applied)" : ""));
  }

  private void awaitApplied(AppliedWatch applied, long target, long deadline) {
    try {
      if (!applied.await(target, java.time.Duration.ofNanos(Math.max(0, deadline - System.nanoTime())))) {
        throw new HsmException(ErrorCode.HSM_NOT_READY, "could not catch up with the cluster within "
            + CATCH_UP_LIMIT.toMinutes() + " min (applied " + applied.applied() + " of " + target + ")"
            + (log.failure() != null ? ": " + log.failure().getMessage() : ""));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new HsmException(ErrorCode.INTERNAL, "interrupted while catching up");
    }
  }

  private void publishHeartbeat() {
    MutationLog l = log;
    AgentVerticle a = agent;
    JsonObject hb = new JsonObject()
        .put("hsmId", config.agent().hsmId())
        .put("applied", l == null ? 0 : l.appliedIndex())
        .put("objects", hsm.keys().count())
        .put("outstanding", a == null ? 0 : a.outstanding())
        .put("capacity", a == null ? 1 : a.workerThreads())
        .put("token", hsm.label())
        .put("pid", ProcessHandle.current().pid());
    BackupOperations b = backups;
    if (b != null && b.inProgress()) {
      hb.put("backingUp", true);
      BackupOperations.Progress p = b.progress();
      if (p != null) {
        hb.put("backup", p.toJson()); // `backup create` shows it as a progress bar (cluster status)
      }
    }
    String door = frontDoor;
    if (door != null) {
      hb.put("frontDoor", door); // where clients reach this host's front door (cluster.status lists them)
    }
    io.hsmbridge.agent.audit.AuditWriter w = audit;
    if (w != null && w.startProblem() != null) {
      // Shown by `status` until the operator has dealt with it (audit verify names the same problem).
      hb.put("lastError", "audit log: " + w.startProblem());
    }
    if (l != null) {
      hb.put("peers", ClusterOperations.peersJson(l.peers())).put("leader", l.isLeader());
      io.hsmbridge.agent.replication.TokenStateMachine.Refusal refusal = l.lastRefusal();
      hb.put("refusedEntries", l.refusedEntries()).put("lastRefusal", refusal == null ? null : refusal.toString());
      if (refusal != null) {
        // Not a failure (every HSM skipped the entry alike and goes on), but an operator must see it.
        hb.put("lastError", "refused " + l.refusedEntries() + " log entr" + (l.refusedEntries() == 1 ? "y" : "ies")
            + " since start; last: " + refusal);
      }
      if (l.peers().stream().noneMatch(p -> p.id().equals(config.agent().hsmId()))) {
        // Removed from the group (hsm remove, or an agent's setConfiguration): this token gets no mutation
        // from now on and would serve a stale key set. Out of routing; the change is in the audit log.
        hb.put("lastError", "not a member of the Raft group any more; it receives no mutations");
        if (state.compareAndSet(AgentState.SERVING, AgentState.STOPPING)) {
          LOG.severe(config.agent().hsmId() + " stopped serving: it is no longer a member of the Raft group "
              + ClusterOperations.peersJson(l.peers()).encode());
        }
      }
      if (l.failure() != null) {
        hb.put("lastError", "stopped applying mutations: " + l.failure().getMessage());
        // Its token no longer follows the log: it would serve keys deleted since (the bridge retries an
        // UNKNOWN_KEY on another HSM) and old labels. Out of routing until restarted, which retries the entry.
        if (state.compareAndSet(AgentState.SERVING, AgentState.STOPPING)) {
          LOG.severe(config.agent().hsmId() + " stopped serving: its token stopped applying the mutation log ("
              + l.failure().getMessage() + "); restart it to retry the entry");
        }
      }
    }
    hb.put("state", state.get().name()).put("address", address);
    vertx.eventBus().publish(Addresses.HEARTBEAT, hb);
  }

  /**
   * Retries a failed apply a few times before the state machine stops this peer. SoftHSM2 2.6.1 fails
   * now and then under concurrent sessions (ClusterScenarioTest saw the unwrap of a replica fail with
   * CKR_GENERAL_ERROR, another time with CKR_TEMPLATE_INCONSISTENT, on one HSM while it also served
   * creations; the same entry applied fine on a second try), and a stopped peer stays behind until
   * someone restarts it. Every entry is idempotent, so applying it again is safe; a failure that persists
   * (about 3 s of retries) still stops the peer. A {@link RefusedEntryException} is deterministic (every
   * HSM refuses the entry alike): it is passed on at once, and the state machine skips the entry.
   */
  static final class RetryingApplier implements Applier {
    private static final long[] BACKOFF_MS = {100, 200, 400, 800, 1600};

    private final String hsmId;
    private final Applier inner;

    RetryingApplier(String hsmId, Applier inner) {
      this.hsmId = hsmId;
      this.inner = inner;
    }

    @Override
    public void admit(Entry entry) {
      inner.admit(entry);
    }

    @Override
    public void apply(long index, Mutation mutation) {
      inner.apply(index, mutation);
    }

    @Override
    public void apply(long index, Entry entry) {
      for (int attempt = 0; ; attempt++) {
        try {
          inner.apply(index, entry);
          return;
        } catch (RefusedEntryException e) {
          throw e; // decided from the entry and the token's state: the same on every try
        } catch (RuntimeException e) {
          if (attempt >= BACKOFF_MS.length) {
            throw e;
          }
          LOG.warning(hsmId + ": applying log entry " + index + " failed (" + e.getMessage() + "); retry "
              + (attempt + 1) + " of " + BACKOFF_MS.length + " in " + BACKOFF_MS[attempt] + " ms");
          try {
            Thread.sleep(BACKOFF_MS[attempt]);
          } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
            throw e;
          }
        }
      }
    }

    @Override
    public long lastApplied() {
      return inner.lastApplied();
    }

    @Override
    public void applied(long index) {
      inner.applied(index);
    }

    @Override
    public void step(Runnable step) {
      inner.step(step);
    }
  }

  static <T> T await(java.util.concurrent.CompletableFuture<T> f, String what) {
    try {
      return f.get(60, TimeUnit.SECONDS);
    } catch (Exception e) {
      Throwable cause = e.getCause() != null ? e.getCause() : e;
      if (cause instanceof HsmException) {
        throw (HsmException) cause;
      }
      throw new HsmException(ErrorCode.INTERNAL, "cannot " + what + ": " + cause.getMessage());
    }
  }

  public synchronized void stop() {
    if (stopped) {
      return;
    }
    stopped = true;
    state.set(AgentState.STOPPING);
    if (config.stateDir() != null) {
      NodeProcess.deleteEndpoint(config.stateDir());
    }
    NodeProcess.closeVertx(vertx);
    if (log != null) {
      log.close();
    }
    if (audit != null) {
      audit.close();
    }
    hsm.close();
  }
}
