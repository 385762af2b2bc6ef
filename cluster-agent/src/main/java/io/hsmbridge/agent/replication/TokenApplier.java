package io.hsmbridge.agent.replication;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyAcl;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.ErrorCode;
import java.util.function.LongConsumer;

/**
 * The production {@link Applier}: installs replicas with {@code ClusterKeys.installReplica} (idempotent),
 * deletes keys with {@code KeyManager.delete} (and their ACL) and relabels them with
 * {@code KeyManager.setLabel} (a missing key is already deleted / has nothing to relabel); writes and
 * deletes users and key ACLs in the token ({@code HsmToken.users()}, {@code HsmToken.keyAcls()}).
 * Every kind is idempotent: re-applying an entry leaves the token as the first application did.
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
  private final LoginLedger logins;
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
    this.logins = new LoginLedger(token);
    this.lastApplied = token.appliedIndex().read();
  }

  /** The login bookkeeping this applier applies; the agent's logins learn their attempts' results from it. */
  public LoginLedger logins() {
    return logins;
  }

  @Override
  public void apply(long index, Mutation mutation) {
    if (mutation instanceof Mutation.DeleteKey d) {
      ignoringUnknownKey(() -> token.keys().delete(d.keyId()));
      // After the key: a crash in between leaves an ACL without key, which the re-apply removes.
      if (KeyAcl.isKeyId(d.keyId())) {
        token.keyAcls().delete(d.keyId());
        for (String setting : Settings.ofKey(d.keyId())) {
          token.settings().delete(setting);
        }
      }
    } else if (mutation instanceof Mutation.SetLabel l) {
      ignoringUnknownKey(() -> token.keys().setLabel(l.keyId(), l.label()));
    } else if (mutation instanceof Mutation.InstallReplica r) {
      token.clusterKeys().installReplica(r.toBlob());
    } else if (mutation instanceof Mutation.InstallOwnedReplica o) {
      // The ACL first, so the token never holds the new key without its owner; a key already here (an
      // earlier creation with this id, or the re-apply after a crash) keeps its key and its ACL.
      if (!holdsKey(o.acl().keyId())) {
        token.keyAcls().put(o.acl());
      }
      token.clusterKeys().installReplica(o.replica().toBlob());
    } else if (mutation instanceof Mutation.PutUser p) {
      // The login bookkeeping (failed count, lock) is the log's own: a record read before a lock (a password
      // change in flight) must not unlock the user; unlocks are UNLOCK_USER entries.
      UserRecord stored = token.users().get(p.user().name()).orElse(null);
      token.users().put(stored == null ? p.user()
          : p.user().withFailedLogins(stored.failedLogins()).withLocked(stored.locked()));
    } else if (mutation instanceof Mutation.Activate a) {
      if (token.users().list().isEmpty()) {
        token.users().put(a.admin());
      }
    } else if (LoginLedger.handles(mutation)) {
      logins.apply(mutation);
    } else if (mutation instanceof Mutation.PutSetting p) {
      token.settings().put(p.name(), p.value());
    } else if (mutation instanceof Mutation.DeleteUser d) {
      token.users().delete(d.name());
      token.settings().delete(Settings.mfa(d.name()));
      logins.userDeleted(d.name());
      // After the user: a user later created with the same name must not inherit the old one's shares.
      for (KeyAcl acl : token.keyAcls().list()) {
        if (acl.shares().contains(d.name())) {
          token.keyAcls().put(acl.withoutShare(d.name()));
        }
      }
    } else if (mutation instanceof Mutation.PutAcl a) {
      // Only beside the key: an ACL submitted for a key deleted meanwhile must not outlive it.
      if (holdsKey(a.acl().keyId())) {
        token.keyAcls().put(a.acl());
      }
    } else if (mutation instanceof Mutation.DeleteAcl d) {
      token.keyAcls().delete(d.keyId());
    }
  }

  private boolean holdsKey(String keyId) {
    try {
      token.keys().describe(keyId);
      return true;
    } catch (HsmException e) {
      if (e.code() == ErrorCode.UNKNOWN_KEY) {
        return false;
      }
      throw e;
    }
  }

  /** A delete or relabel of a key this token does not hold: deleted earlier in the log, nothing to do. */
  private static void ignoringUnknownKey(Runnable work) {
    try {
      work.run();
    } catch (HsmException e) {
      if (e.code() != ErrorCode.UNKNOWN_KEY) {
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
