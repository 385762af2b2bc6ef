package io.hsmbridge.agent.replication;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.ratis.proto.RaftProtos.LogEntryProto;
import org.apache.ratis.proto.RaftProtos.RaftConfigurationProto;
import org.apache.ratis.proto.RaftProtos.RaftPeerProto;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.protocol.RaftClientRequest;
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
 * <p>Ratis replays the log from its start when a peer restarts (there are no snapshots yet): entries at
 * or below the applier's {@link Applier#lastApplied()} are skipped, so re-applying is a no-op.
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

  public TokenStateMachine(Applier applier) {
    this(applier, LogEvents.NONE);
  }

  public TokenStateMachine(Applier applier, LogEvents events) {
    this.applier = applier;
    this.events = events;
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
