package io.hsmbridge.agent.replication;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.ratis.proto.RaftProtos;
import org.apache.ratis.proto.RaftProtos.LogEntryProto;
import org.apache.ratis.proto.RaftProtos.RaftConfigurationProto;
import org.apache.ratis.proto.RaftProtos.RaftPeerProto;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.protocol.RaftClientRequest;
import org.apache.ratis.protocol.RaftGroupId;
import org.apache.ratis.server.RaftServer;
import org.apache.ratis.server.protocol.TermIndex;
import org.apache.ratis.server.storage.RaftStorage;
import org.apache.ratis.statemachine.SnapshotInfo;
import org.apache.ratis.statemachine.TransactionContext;
import org.apache.ratis.statemachine.impl.BaseStateMachine;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;

/**
 * The Raft state machine of one HSM: applies committed {@link Mutation}s, in log order, to an
 * {@link Applier}. Holds no PKCS#11 type.
 *
 * <p>On the leader, {@link #startTransaction} decodes every submitted entry and refuses, before it is
 * logged, anything {@link Mutation#fromBytes} refuses (unknown version or kind, truncated, trailing
 * bytes, fields the records refuse) and anything the applier's {@link Applier#admit} refuses (for the
 * token applier: no principal, or no valid seal of a cluster HSM): the submitter gets a
 * {@code StateMachineException} naming why.
 *
 * <p>On every peer, an entry that is committed all the same and cannot be applied anywhere — it does not
 * decode (logged by an older build, or by a leader that did not check), or the applier refuses it with a
 * {@link RefusedEntryException} — is skipped the same way on every HSM: the applied index moves past it,
 * the refusal is logged (kind, index, reason; never the entry's bytes), counted ({@link #refusedEntries})
 * and reported to {@link LogEvents} (the node audits it). Any other exception of the applier (a token
 * error, an HSM that died mid-call) is never skipped: it stops this peer (Ratis closes a server whose
 * state machine updater fails), and the entry is retried when the peer is started again.
 *
 * <p>Ratis replays the log from its start (or from the claimed snapshot) when a peer restarts: entries at
 * or below the applier's {@link Applier#lastApplied()} are skipped, so re-applying is a no-op.
 *
 * <p><b>Snapshots are backups</b> (docs/replication.md, "Compaction"). The token itself holds the state,
 * so a snapshot here is only a claim: "my token includes the state at the index of backup B", made when
 * Raft asks ({@link #takeSnapshot}) and a newer backup at or before the applied index is in the store.
 * Raft then purges the log up to it (and up to what every peer committed). A peer whose next entry was
 * purged is told so by the leader ({@link #notifyInstallSnapshotFromLeader}) and restores the newest
 * backup over its token, then applies the entries after it. The claim is kept in a file
 * ({@link SnapshotClaim}); a token found below its claim at start (wiped, or reset by an integrity
 * repair) is restored from a backup before the log starts.
 */
public final class TokenStateMachine extends BaseStateMachine {
  private static final System.Logger LOG = System.getLogger(TokenStateMachine.class.getName());
  /** A refusal's reason is cut to this many characters in logs, heartbeats and the audit log. */
  static final int MAX_REASON = 200;

  /** The kind reported for an entry that does not decode. */
  public static final String UNDECODED = "unknown";

  /** The read-only request for the applied index (see {@link #query}). */
  static final byte[] APPLIED_INDEX_QUERY = "hsmbridge.applied-index?".getBytes(StandardCharsets.US_ASCII);

  /** A refused entry, as reported: its index, mutation kind (or "unknown") and reason. */
  public record Refusal(long index, String kind, String reason) {
    @Override
    public String toString() {
      return "entry " + index + " (" + kind + ") refused: " + reason;
    }
  }

  private final Applier applier;
  private final LogEvents events;
  private final AtomicReference<Throwable> failure = new AtomicReference<>();
  private final AtomicLong refused = new AtomicLong();
  private final AtomicReference<Refusal> lastRefusal = new AtomicReference<>();
  /** The reasons of the latest refusals by index, so that a submitter can tell its client (bounded). */
  private final java.util.Map<Long, String> refusals = new java.util.LinkedHashMap<>() {
    @Override
    protected boolean removeEldestEntry(java.util.Map.Entry<Long, String> eldest) {
      return size() > 1024;
    }
  };
  /** The membership last seen applied (also from replayed entries), to report only real changes. */
  private String lastConfiguration;
  private final Snapshots snapshots;
  private final SnapshotClaim claim;
  /** The snapshot claimed (see the class comment), or null. */
  private volatile TermIndex snapshot;
  /** How long after a catch-up found no backup the store is looked at again. */
  private static final long INSTALL_RETRY_NANOS = 5_000_000_000L;
  private volatile long lastUnavailable = System.nanoTime() - INSTALL_RETRY_NANOS;
  /** Restores run here: off Ratis's threads, one at a time. */
  private final java.util.concurrent.ExecutorService installer = java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "snapshot-install");
    t.setDaemon(true);
    return t;
  });

  public TokenStateMachine(Applier applier) {
    this(applier, LogEvents.NONE);
  }

  public TokenStateMachine(Applier applier, LogEvents events) {
    this(applier, events, Snapshots.NONE, null);
  }

  /**
   * @param snapshots where backups come from ({@link Snapshots#NONE}: no snapshot is ever claimed)
   * @param claimFile where the claimed snapshot is kept across restarts (null: nowhere, for tests)
   */
  public TokenStateMachine(Applier applier, LogEvents events, Snapshots snapshots, java.nio.file.Path claimFile) {
    this.applier = applier;
    this.events = events;
    this.snapshots = snapshots;
    this.claim = new SnapshotClaim(claimFile);
  }

  /**
   * Before Raft opens the log: reads the claimed snapshot, and when the token is below it (its entries
   * may be purged from the log), restores a backup at or after it first. Without one the peer does not
   * start: the error says what is missing.
   */
  @Override
  public void initialize(RaftServer server, RaftGroupId groupId, RaftStorage storage) throws IOException {
    getLifeCycle().startAndTransition(() -> {
      super.initialize(server, groupId, storage);
      Snapshots.Point claimed = claim.read();
      if (claimed != null && applier.lastApplied() < claimed.index()) {
        long tokenAt = applier.lastApplied();
        LOG.log(System.Logger.Level.WARNING, getId() + ": the token is at index " + tokenAt + ", below the snapshot at "
            + claimed.index() + " this HSM claimed (the log before it may be purged): restoring a backup first");
        Snapshots.Point restored = snapshots.restoreAtLeast(claimed.index());
        if (restored == null) {
          throw new IOException("this HSM's token is at log index " + tokenAt + " but its log may be purged up to "
              + claimed.index() + ", and the backup store holds no backup of this cluster at or after that index:"
              + " put the newest backup back into backup.dir, or remove this HSM and add it again (hsm remove, hsm add)");
        }
        claimed = restored;
        claim.write(restored);
      }
      if (claimed != null) {
        snapshot = TermIndex.valueOf(claimed.term(), claimed.index());
        updateLastAppliedTermIndex(snapshot);
      }
    });
  }

  @Override
  public SnapshotInfo getLatestSnapshot() {
    TermIndex s = snapshot;
    return s == null ? null : new ClaimedSnapshot(s);
  }

  /** A snapshot without files: the state is in the token, its transferable form is a backup in the store. */
  private record ClaimedSnapshot(TermIndex termIndex) implements SnapshotInfo {
    @Override
    public TermIndex getTermIndex() {
      return termIndex;
    }

    @Override
    public List<org.apache.ratis.server.storage.FileInfo> getFiles() {
      return List.of();
    }
  }

  /**
   * Raft asks every {@code raft.compaction.entries} applied entries: claims the newest backup at or before
   * the applied index when it is newer than the current claim (its term read from this log), so that Raft
   * may purge up to it. Returns the claimed index (unchanged when there is no newer backup).
   */
  @Override
  public long takeSnapshot() {
    TermIndex current = snapshot;
    long claimed = current == null ? -1 : current.getIndex();
    TermIndex last = getLastAppliedTermIndex();
    long bound = Math.min(last == null ? -1 : last.getIndex(), applier.lastApplied());
    long newest = snapshots.newestAtOrBefore(bound);
    if (newest <= claimed) {
      return claimed;
    }
    TermIndex inLog = termIndexInLog(newest);
    if (inLog == null) {
      return claimed;
    }
    claim.write(new Snapshots.Point(inLog.getTerm(), inLog.getIndex()));
    snapshot = inLog;
    LOG.log(System.Logger.Level.INFO, getId() + ": the log may be purged up to index " + newest
        + ", the newest backup this HSM's token includes");
    return newest;
  }

  private TermIndex termIndexInLog(long index) {
    try {
      return getServer().get().getDivision(getGroupId()).getRaftLog().getTermIndex(index);
    } catch (IOException | RuntimeException | InterruptedException | java.util.concurrent.ExecutionException e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      LOG.log(System.Logger.Level.WARNING, getId() + ": cannot read the term of log entry " + index + ": " + e);
      return null;
    }
  }

  /**
   * The leader purged the entries this peer needs next: restore the newest backup at or after the one
   * before the leader's first entry, then Raft sends the entries after it. Completes with null (Raft
   * tells the leader SNAPSHOT_UNAVAILABLE and asks again later) when the store holds none.
   */
  @Override
  public CompletableFuture<TermIndex> notifyInstallSnapshotFromLeader(RaftProtos.RoleInfoProto roleInfo,
      TermIndex firstTermIndexInLog) {
    long needed = Math.max(0, firstTermIndexInLog.getIndex() - 1);
    long now = System.nanoTime();
    if (now - lastUnavailable < INSTALL_RETRY_NANOS) {
      // The leader asks again at once after "unavailable": look at the store again only every few seconds.
      return CompletableFuture.completedFuture(null);
    }
    return CompletableFuture.supplyAsync(() -> {
      LOG.log(System.Logger.Level.WARNING, getId() + ": the leader's log starts at entry " + firstTermIndexInLog.getIndex()
          + " and this HSM's log lacks entries before it (its token is at " + applier.lastApplied()
          + "): catching up from a backup at or after " + needed);
      Snapshots.Point restored = snapshots.restoreAtLeast(needed);
      if (restored == null) {
        lastUnavailable = System.nanoTime();
        LOG.log(System.Logger.Level.ERROR, getId() + ": the backup store holds no backup of this cluster at or after index "
            + needed + ": this HSM cannot catch up until one is made (hsmbridge backup create); asking again in "
            + INSTALL_RETRY_NANOS / 1_000_000_000 + " s");
        return null;
      }
      claim.write(restored);
      TermIndex ti = TermIndex.valueOf(restored.term(), restored.index());
      snapshot = ti;
      return ti;
    }, installer);
  }

  @Override
  public void pause() {
    getLifeCycle().transition(org.apache.ratis.util.LifeCycle.State.PAUSING);
    getLifeCycle().transition(org.apache.ratis.util.LifeCycle.State.PAUSED);
  }

  /** After a restored backup: applying resumes after its index. */
  @Override
  public void reinitialize() {
    TermIndex s = snapshot;
    if (s != null) {
      updateLastAppliedTermIndex(s);
    }
    if (getLifeCycleState() == org.apache.ratis.util.LifeCycle.State.PAUSED) {
      getLifeCycle().transition(org.apache.ratis.util.LifeCycle.State.STARTING);
      getLifeCycle().transition(org.apache.ratis.util.LifeCycle.State.RUNNING);
    }
  }

  @Override
  public void close() {
    installer.shutdownNow();
  }

  /**
   * Runs on the leader before an entry is logged: an entry that does not decode is refused, so that it is
   * never committed. The reason goes back to the submitter; the entry's bytes go nowhere.
   */
  @Override
  public TransactionContext startTransaction(RaftClientRequest request) throws IOException {
    TransactionContext trx = super.startTransaction(request);
    try {
      applier.admit(Entry.fromBytes(request.getMessage().getContent().toByteArray()));
    } catch (RuntimeException e) {
      trx.setException(new IllegalArgumentException("mutation refused before it was logged: " + reason(e)));
    }
    return trx;
  }

  @Override
  public CompletableFuture<Message> applyTransaction(TransactionContext trx) {
    LogEntryProto entry = trx.getLogEntry();
    long index = entry.getIndex();
    apply(entry.getTerm(), index, entry.getStateMachineLogEntry().getLogData().toByteArray());
    return CompletableFuture.completedFuture(Message.valueOf(Long.toString(index)));
  }

  /**
   * Applies the entry at {@code index} unless the applier already has it, then records it as applied.
   * An entry that cannot be applied anywhere is recorded as applied too, and reported (see the class
   * comment). Runs on Ratis's single state-machine updater thread.
   */
  void apply(long term, long index, byte[] data) {
    if (index > applier.lastApplied()) {
      applier.step(() -> applyAndRecord(index, data));
    }
    updateLastAppliedTermIndex(term, index);
  }

  private void applyAndRecord(long index, byte[] data) {
    Mutation mutation = null;
    try {
      Entry entry = Entry.fromBytes(data);
      mutation = entry.mutation();
      applier.apply(index, entry);
    } catch (RefusedEntryException e) {
      refuse(index, mutation == null ? UNDECODED : mutation.kind().name(), reason(e));
    } catch (RuntimeException e) {
      if (mutation == null) {
        // Decoding is a pure function of the entry: every HSM fails it alike.
        refuse(index, UNDECODED, reason(e));
      } else {
        failure.compareAndSet(null, e);
        LOG.log(System.Logger.Level.ERROR, getId() + ": cannot apply log entry " + index
            + "; stopping this peer so that no later entry is applied before it", e);
        throw e;
      }
    }
    applier.applied(index);
  }

  private void refuse(long index, String kind, String reason) {
    Refusal r = new Refusal(index, kind, reason);
    refused.incrementAndGet();
    lastRefusal.set(r);
    synchronized (refusals) {
      refusals.put(index, reason);
    }
    LOG.log(System.Logger.Level.WARNING, getId() + ": skipped log entry " + index + " (" + kind
        + ") on this HSM, as on every HSM: " + reason);
    try {
      events.refused(index, kind, reason);
    } catch (RuntimeException e) {
      LOG.log(System.Logger.Level.ERROR, getId() + ": cannot report the refused log entry " + index, e);
    }
  }

  /** The exception's message, cut to {@link #MAX_REASON} characters, on one line. */
  static String reason(Throwable e) {
    String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    m = m.replaceAll("[\\r\\n\\t]+", " ");
    return m.length() <= MAX_REASON ? m : m.substring(0, MAX_REASON) + "...";
  }

  /**
   * A configuration entry was applied (Ratis calls this on the updater thread, in log order, on every
   * peer). A change of membership not yet seen by this HSM's applier is reported, and its index recorded
   * as applied so that a restart does not report it again. Leader elections log the unchanged membership
   * again: those are not reported.
   */
  @Override
  public void notifyConfigurationChanged(long term, long index, RaftConfigurationProto conf) {
    List<String> peers = ids(conf.getPeersList());
    List<String> oldPeers = ids(conf.getOldPeersList());
    String now = peers + " " + oldPeers;
    boolean changed = lastConfiguration != null && !lastConfiguration.equals(now);
    lastConfiguration = now;
    if (!changed || index <= applier.lastApplied()) {
      return;
    }
    LOG.log(System.Logger.Level.INFO, getId() + ": group membership at log entry " + index + " is " + peers
        + (oldPeers.isEmpty() ? "" : " (changing from " + oldPeers + ")"));
    try {
      events.configurationChanged(index, peers, oldPeers);
      applier.applied(index);
    } catch (RuntimeException e) {
      LOG.log(System.Logger.Level.ERROR, getId() + ": cannot record the membership change at log entry " + index, e);
    }
  }

  private static List<String> ids(List<RaftPeerProto> peers) {
    return peers.stream().map(p -> p.getId().toStringUtf8()).sorted().toList();
  }

  /**
   * Read-only requests ({@code RaftClient.io().sendReadOnly}, answered by the leader's state machine):
   * {@link #APPLIED_INDEX_QUERY} returns this state machine's applied index (the applier's, the same
   * number {@link #appliedIndex()} gives) as 8 bytes big-endian. Anything else fails.
   */
  @Override
  public CompletableFuture<Message> query(Message request) {
    if (!Arrays.equals(APPLIED_INDEX_QUERY, request.getContent().toByteArray())) {
      return CompletableFuture.failedFuture(new IllegalArgumentException("unknown read-only request"));
    }
    byte[] index = ByteBuffer.allocate(Long.BYTES).putLong(appliedIndex()).array();
    return CompletableFuture.completedFuture(Message.valueOf(ByteString.copyFrom(index)));
  }

  /** Why this state machine stopped applying, or null. */
  public Throwable failure() {
    return failure.get();
  }

  /** How many committed entries this state machine skipped as refused since it started. */
  public long refusedEntries() {
    return refused.get();
  }

  /** Why the entry at {@code index} was refused here (one of the latest 1024 refusals), or null. */
  public String refusal(long index) {
    synchronized (refusals) {
      return refusals.get(index);
    }
  }

  /** The last entry it refused since it started, or null. */
  public Refusal lastRefusal() {
    return lastRefusal.get();
  }

  /** The applier's last applied index (the durable one, once it lives in the token). */
  public long appliedIndex() {
    return applier.lastApplied();
  }
}
