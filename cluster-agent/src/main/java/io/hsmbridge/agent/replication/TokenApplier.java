package io.hsmbridge.agent.replication;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.protocol.ErrorCode;
import java.util.function.LongConsumer;

/**
 * The production {@link Applier}: installs replicas with {@code ClusterKeys.installReplica} (idempotent),
 * deletes keys with {@code KeyManager.delete} and relabels them with {@code KeyManager.setLabel} (a
 * missing key is already deleted / has nothing to relabel).
 *
 * <p>The applied index lives in the token ({@code HsmToken.appliedIndex()}): it is read once here, then
 * kept in memory and written through on every {@link #applied}, so a restarted agent (or a token that
 * travelled as a backup) resumes after the last entry it applied instead of re-applying the whole log.
 * PKCS#11 cannot write it atomically with the mutation's objects: a crash between the two re-applies
 * one entry, which every mutation tolerates.
 */
public final class TokenApplier implements Applier {
  private static final System.Logger LOG = System.getLogger(TokenApplier.class.getName());

  private final HsmToken token;
  private final LongConsumer progress;
  /** Written only from the state machine's single updater thread; read from any thread. */
  private volatile long lastApplied;

  public TokenApplier(HsmToken token) {
    this(token, index -> { });
  }

  /**
   * @param progress called with each index after it was recorded in the token (on Ratis's state-machine
   *     thread: it must be quick; an exception is logged and ignored), e.g. to publish this HSM's progress
   */
  public TokenApplier(HsmToken token, LongConsumer progress) {
    this.token = token;
    this.progress = progress;
    this.lastApplied = token.appliedIndex().read();
  }

  @Override
  public void apply(long index, Mutation mutation) {
    try {
      if (mutation instanceof Mutation.InstallReplica r) {
        token.clusterKeys().installReplica(r.toBlob());
      } else if (mutation instanceof Mutation.DeleteKey d) {
        token.keys().delete(d.keyId());
      } else if (mutation instanceof Mutation.SetLabel l) {
        token.keys().setLabel(l.keyId(), l.label());
      }
    } catch (HsmException e) {
      // A delete or relabel of a key this token does not hold: deleted earlier in the log, nothing to do.
      if (e.code() != ErrorCode.UNKNOWN_KEY || mutation instanceof Mutation.InstallReplica) {
        throw e;
      }
    }
  }

  @Override
  public long lastApplied() {
    return lastApplied;
  }

  @Override
  public void applied(long index) {
    token.appliedIndex().write(index);
    lastApplied = index;
    try {
      progress.accept(index);
    } catch (RuntimeException e) {
      // A broken listener must not stop this peer: the entry is applied and recorded.
      LOG.log(System.Logger.Level.WARNING, "progress listener failed at index " + index, e);
    }
  }
}
