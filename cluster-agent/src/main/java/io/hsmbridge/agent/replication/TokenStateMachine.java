package io.hsmbridge.agent.replication;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.ratis.proto.RaftProtos.LogEntryProto;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.statemachine.TransactionContext;
import org.apache.ratis.statemachine.impl.BaseStateMachine;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;

/**
 * The Raft state machine of one HSM: applies committed {@link Mutation}s, in log order, to an
 * {@link Applier}. Holds no PKCS#11 type.
 *
 * <p>Ratis replays the log from its start when a peer restarts (there are no snapshots yet): entries at
 * or below the applier's {@link Applier#lastApplied()} are skipped, so re-applying is a no-op. An entry
 * the applier cannot apply is never skipped: the exception stops this peer (Ratis closes a server whose
 * state machine updater fails), and the entry is retried when the peer is started again.
 */
public final class TokenStateMachine extends BaseStateMachine {
  private static final System.Logger LOG = System.getLogger(TokenStateMachine.class.getName());

  /** The read-only request for the applied index (see {@link #query}). */
  static final byte[] APPLIED_INDEX_QUERY = "hsmbridge.applied-index?".getBytes(StandardCharsets.US_ASCII);

  private final Applier applier;
  private final AtomicReference<Throwable> failure = new AtomicReference<>();
  private final java.util.concurrent.atomic.AtomicLong refused = new java.util.concurrent.atomic.AtomicLong();
  /** The reasons of the latest refusals by index, so that a submitter can tell its client (bounded). */
  private final java.util.Map<Long, String> refusals = new java.util.LinkedHashMap<>() {
    @Override
    protected boolean removeEldestEntry(java.util.Map.Entry<Long, String> eldest) {
      return size() > 1024;
    }
  };

  public TokenStateMachine(Applier applier) {
    this.applier = applier;
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
   * Runs on Ratis's single state-machine updater thread.
   */
  void apply(long term, long index, byte[] data) {
    if (index > applier.lastApplied()) {
      try {
        applier.apply(index, Entry.fromBytes(data));
      } catch (RefusedEntryException e) {
        // Every HSM refuses it alike (the applier decides from the entry and the token's state only):
        // skipped and reported, never a reason to stop.
        refused.incrementAndGet();
        synchronized (refusals) {
          refusals.put(index, e.getMessage());
        }
        LOG.log(System.Logger.Level.WARNING, getId() + ": refused log entry " + index + ": " + e.getMessage());
      } catch (RuntimeException e) {
        failure.compareAndSet(null, e);
        LOG.log(System.Logger.Level.ERROR, getId() + ": cannot apply log entry " + index
            + "; stopping this peer so that no later entry is applied before it", e);
        throw e;
      }
      applier.applied(index);
    }
    updateLastAppliedTermIndex(term, index);
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

  /** How many committed entries this peer refused (and skipped) since it started. */
  public long refusedEntries() {
    return refused.get();
  }

  /** Why the entry at {@code index} was refused here (one of the latest 1024 refusals), or null. */
  public String refusal(long index) {
    synchronized (refusals) {
      return refusals.get(index);
    }
  }

  /** Why this state machine stopped applying, or null. */
  public Throwable failure() {
    return failure.get();
  }

  /** The applier's last applied index (the durable one, once it lives in the token). */
  public long appliedIndex() {
    return applier.lastApplied();
  }
}
