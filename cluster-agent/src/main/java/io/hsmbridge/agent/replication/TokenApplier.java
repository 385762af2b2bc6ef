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
 * deletes users, key ACLs and key certificate chains in the token ({@code HsmToken.users()},
 * {@code HsmToken.keyAcls()}, {@code HsmToken.keyCertificates()}).
 * Every kind is idempotent: re-applying an entry leaves the token as the first application did.
 *
 * <p>Before it applies an entry it checks, from the entry and this token's state only (so every HSM
 * decides alike), that the entry is sealed by a cluster HSM and that its principal may make it
 * ({@link EntryAuthorization}); a refused entry changes nothing and throws {@link RefusedEntryException}.
 * Every entry applied or refused goes to the {@link EntryAudit} (this HSM's audit log).
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
  private final EntryAudit audit;
  /** Null only for {@link #unchecked}: tests of the apply mechanics. */
  private final EntryAuthorization authorization;
  /** Opens the password hashes that user entries carry sealed (HashSeal). */
  private final HashSeal hashSeal;
  /**
   * The log's clock: the latest sealed timestamp applied, written to the token (setting
   * {@value #LOG_CLOCK}) whenever it advances by more than {@link EntryAuthorization#CLOCK_STEP}, so it is
   * the same function of the log on every HSM, also after a restart or a replay.
   */
  static final String LOG_CLOCK = "log.clock";
  private long logClock;
  private final LoginLedger logins;
  /** Written only from the state machine's single updater thread; read from any thread. */
  private volatile long lastApplied;
  /** Held while one entry is applied and its index recorded (see {@link #atOneIndex}). */
  private final java.util.concurrent.locks.ReentrantLock stepLock = new java.util.concurrent.locks.ReentrantLock();

  public TokenApplier(HsmToken token) {
    this(token, index -> { }, EntryAudit.NONE);
  }

  /**
   * @param progress called with each index after it was recorded in the token (on Ratis's state-machine
   *     thread: it must be quick; an exception is logged and ignored), e.g. to publish this HSM's progress
   * @param audit receives every entry applied or refused, in log order (this HSM's audit log)
   */
  public TokenApplier(HsmToken token, LongConsumer progress, EntryAudit audit) {
    this(token, progress, audit, true);
  }

  private TokenApplier(HsmToken token, LongConsumer progress, EntryAudit audit, boolean authorize) {
    this.token = token;
    this.progress = progress;
    this.audit = audit;
    this.logins = new LoginLedger(token);
    this.authorization = authorize ? new EntryAuthorization(token, new EntryProofs(token)) : null;
    this.hashSeal = new HashSeal(token);
    this.lastApplied = token.appliedIndex().read();
    if (authorize && lastApplied == 0) {
      forgetLaterState();
    }
    // At applied index 0 (a new token, or one whose index was reset to replay the whole log) the clock
    // starts again at 0, as it did when the log began: the stored value belongs to a later index.
    this.logClock = authorize && lastApplied > 0 ? token.settings().get(LOG_CLOCK, 0) : 0;
  }

  /**
   * At applied index 0 the token's user model starts empty, as it did when the log began: users, key ACLs
   * and settings on a token whose index was reset (an integrity repair re-applies the whole log) belong to
   * a later index, and applying the log over them does not end where the first apply ended (a failed login
   * would count twice, an ACTIVATE would meet users). They come only from the log, so the replay rebuilds
   * them. Keys stay: installs and deletes converge over later state, and they are what must not be lost.
   * Idempotent, so a crash part-way through it repeats it at the next start (the index is still 0).
   */
  private void forgetLaterState() {
    int forgotten = forgetUserModel(token);
    if (forgotten > 0) {
      LOG.log(System.Logger.Level.WARNING, "applied index 0 over a later user model: forgot " + forgotten
          + " users, key ACLs and settings; the log's replay rebuilds them");
    }
  }

  /**
   * Deletes the token's users, key ACLs, certificate chains and settings (the state only the log makes), keys aside: before a
   * whole-log replay, or before a backup's user model replaces this one. Idempotent.
   *
   * @return how many records it deleted
   */
  public static int forgetUserModel(HsmToken token) {
    int n = 0;
    for (UserRecord u : token.users().rescan()) {
      token.users().delete(u.name());
      n++;
    }
    for (KeyAcl acl : token.keyAcls().rescan()) {
      token.keyAcls().delete(acl.keyId());
      n++;
    }
    for (io.hsmbridge.pkcs11.CertificateChain c : token.keyCertificates().rescan()) {
      token.keyCertificates().delete(c.keyId());
      n++;
    }
    for (io.hsmbridge.pkcs11.ClusterSettings.Setting s : token.settings().rescan()) {
      token.settings().delete(s.name());
      n++;
    }
    return n;
  }

  /**
   * Runs {@code restore} (a backup written over the token) while no entry is applied, then takes the
   * token's index and log clock as they now are: the next entry applied is the one after the backup.
   */
  public <T> T replaceState(java.util.function.Supplier<T> restore) {
    stepLock.lock();
    try {
      T result = restore.get();
      lastApplied = token.appliedIndex().read();
      logClock = lastApplied > 0 ? token.settings().get(LOG_CLOCK, 0) : 0;
      return result;
    } finally {
      stepLock.unlock();
    }
  }

  /**
   * An applier that applies every entry without asking who made it, format-1 entries included: only for
   * tests of the apply mechanics (idempotence, crashes, replay) and of the log's transport. A node never
   * uses it (AgentNode builds the checking applier).
   */
  public static TokenApplier unchecked(HsmToken token) {
    return unchecked(token, index -> { });
  }

  /** {@link #unchecked(HsmToken)} with a progress listener. */
  public static TokenApplier unchecked(HsmToken token, LongConsumer progress) {
    return new TokenApplier(token, progress, EntryAudit.NONE, false);
  }

  @Override
  public void step(Runnable step) {
    stepLock.lock();
    try {
      step.run();
    } finally {
      stepLock.unlock();
    }
  }

  /**
   * Runs {@code read} while no entry is being applied: what it reads of the token (keys, users, ACLs,
   * settings) is the state at exactly {@link #lastApplied()}, never an entry's half. Applies wait for it,
   * so it must be short (a digest of the token: tens of milliseconds).
   */
  public <T> T atOneIndex(java.util.function.Supplier<T> read) {
    stepLock.lock();
    try {
      return read.get();
    } finally {
      stepLock.unlock();
    }
  }

  /** The login bookkeeping this applier applies; the agent's logins learn their attempts' results from it. */
  public LoginLedger logins() {
    return logins;
  }

  /**
   * Refuses on the leader, before it is logged, an entry that no HSM would apply whatever its state: one
   * without a principal (format 1), or one not sealed by a cluster HSM (anyone with Raft access but no
   * token: an agent's stolen TLS key). The session-proof key's installation is the one unsealed entry
   * (nothing can seal before it exists). Checks of the principal's rights wait for the apply, against the
   * state at the entry's index.
   */
  @Override
  public void admit(Entry entry) {
    if (authorization == null) {
      return;
    }
    if (entry.actor() == null) {
      throw new RefusedEntryException("a format-1 entry carries no principal");
    }
    if (!EntryAuthorization.isProofKeyBootstrap(entry) && !authorization.sealValid(entry)) {
      throw new RefusedEntryException("the entry is not sealed by a cluster HSM");
    }
  }

  /** A format-1 entry (the mutation alone, no principal): refused, unless {@link #unchecked}. */
  @Override
  public void apply(long index, Mutation mutation) {
    apply(index, Entry.legacy(mutation));
  }

  /**
   * Applies the entry if its actor may make its mutation at this index ({@link EntryAuthorization}),
   * and records the outcome in the audit.
   *
   * @throws RefusedEntryException when it may not (nothing changed on the token; the refusal is audited)
   */
  @Override
  public void apply(long index, Entry entry) {
    Mutation m = entry.mutation();
    Actor a = entry.actor();
    String user = a == null ? "-" : a.user();
    String role = a == null ? "-" : a.role().name();
    String op = "log." + (m instanceof Mutation.Once o ? o.inner().kind() : m.kind());
    // The log's clock follows every entry a cluster HSM sealed, applied or refused: whether an entry is
    // refused may depend on the token's state (an ACTIVATE replayed over a token that already has users),
    // and the clock must be the same function of the log on every HSM, also on one that re-applies the
    // whole log over its later state (after an integrity repair).
    boolean sealed = authorization != null && entry.seal() != null && authorization.sealValid(entry);
    boolean bootstrap = authorization != null && entry.seal() == null && EntryAuthorization.isProofKeyBootstrap(entry);
    try {
      if (authorization != null) {
        authorization.check(entry, logClock);
      }
      if (!bootstrap) {
        // Also refused by the state it meets (a one-time credential used already): the same on every HSM.
        applyMutation(m, entry);
      }
    } catch (RefusedEntryException e) {
      audit.record(user, role, op, target(m), "REFUSED@" + index + ": " + e.getMessage());
      advanceClock(sealed, entry);
      throw e;
    }
    if (bootstrap) {
      // Unsealed, so anyone could have sent it: a blob that does not unwrap is refused, not retried until the peer stops.
      try {
        applyMutation(m, entry);
      } catch (RuntimeException e) {
        audit.record(user, role, op, target(m), "REFUSED@" + index + ": the session-proof key does not unwrap");
        throw new RefusedEntryException("the session-proof key does not unwrap under this HSM's cluster key");
      }
    }
    advanceClock(sealed, entry);
    audit.record(user, role, op, target(m), "OK@" + index);
  }

  private void advanceClock(boolean sealed, Entry entry) {
    if (sealed && entry.timestamp() > logClock + EntryAuthorization.CLOCK_STEP.toMillis()) {
      token.settings().put(LOG_CLOCK, entry.timestamp());
      logClock = entry.timestamp();
    }
  }

  /**
   * Installs the next backup or cluster key generation. A generation another rotation installed first, or a blob that
   * does not unwrap under the carrier, is refused: decided by what every HSM's token holds alike (the same
   * log applied, the same carrier), so every HSM refuses alike and none is left behind.
   */
  private void rotateKey(Mutation.RotateKey r) {
    try {
      if (r.target() == Mutation.RotateKey.Target.CLUSTER_KEY) {
        token.clusterKeys().installClusterKeyGeneration(r.generation(), r.label(), r.wrapped());
      } else {
        token.backupKeys().installGeneration(r.generation(), r.label(), r.wrapped());
      }
    } catch (HsmException e) {
      if (e.code() == ErrorCode.NOT_ALLOWED_BY_POLICY || e.code() == ErrorCode.CRYPTO_FAILURE
          || e.code() == ErrorCode.INVALID_PARAMETER) {
        throw new RefusedEntryException(e.getMessage());
      }
      throw e; // the token failed (not the entry): the state machine retries, as for any other entry
    }
  }

  /** The key id, user name or setting name an entry touches (for the audit; never a secret). */
  static String target(Mutation m) {
    if (m instanceof Mutation.Once o) {
      return target(o.inner());
    } else if (m instanceof Mutation.Consume c) {
      return c.user();
    } else if (m instanceof Mutation.InstallReplica r) {
      return r.keyId();
    } else if (m instanceof Mutation.InstallOwnedReplica o) {
      return o.acl().keyId();
    } else if (m instanceof Mutation.DeleteKey d) {
      return d.keyId();
    } else if (m instanceof Mutation.SetLabel l) {
      return l.keyId();
    } else if (m instanceof Mutation.SetCertificates c) {
      return c.keyId();
    } else if (m instanceof Mutation.RestoreCertificates r) {
      return r.keyId();
    } else if (m instanceof Mutation.PutAcl p) {
      return p.acl().keyId();
    } else if (m instanceof Mutation.DeleteAcl d) {
      return d.keyId();
    } else if (m instanceof Mutation.PutUser p) {
      return p.user().name();
    } else if (m instanceof Mutation.DeleteUser d) {
      return d.name();
    } else if (m instanceof Mutation.Activate a) {
      return a.admin().name();
    } else if (m instanceof Mutation.RecordLogin l) {
      return l.name();
    } else if (m instanceof Mutation.LoginAttempt l) {
      return l.name();
    } else if (m instanceof Mutation.LoginOutcome l) {
      return l.name();
    } else if (m instanceof Mutation.UnlockUser u) {
      return u.name();
    } else if (m instanceof Mutation.PutSetting p) {
      return p.name();
    } else if (m instanceof Mutation.RotateKey r) {
      return r.target().name().toLowerCase(java.util.Locale.ROOT).replace('_', '-') + "-generation-" + r.generation();
    }
    return null;
  }

  /**
   * Drops the records of logged-out sessions that have expired since: their proofs are refused for their
   * age anyway. Measured against the log's clock, so that every HSM drops the same ones at the same entry.
   */
  private void pruneRevokedSessions() {
    prune(Settings.REVOKED_SESSION_PREFIX, logClock - EntryAuthorization.CLOCK_STEP.toMillis());
  }

  /** Deletes the settings named {@code prefix}... whose value (a time, epoch millis) is before {@code before}. */
  private void prune(String prefix, long before) {
    for (io.hsmbridge.pkcs11.ClusterSettings.Setting s : token.settings().list()) {
      if (s.name().startsWith(prefix) && s.value() < before) {
        token.settings().delete(s.name());
      }
    }
  }

  /**
   * A one-time credential used: refused when the log holds its use already, else recorded until it
   * expires. A crash after the record re-applies the entry as refused on this HSM: the state is the same.
   */
  private void consume(Mutation.Consume c) {
    // Pruned first, at every CONSUME entry, refused or not: see applyOnce (a re-apply over later state).
    prune(Settings.CONSUMED_PREFIX, logClock - EntryAuthorization.CLOCK_STEP.toMillis());
    String used = Settings.consumed(c.user(), c.id());
    if (token.settings().get(used, 0) != 0) {
      throw new RefusedEntryException("this one-time credential was used already");
    }
    token.settings().put(used, c.expiresAt());
  }

  /**
   * A request's change at most once: applied, and its outcome recorded, unless an earlier entry of the
   * same user's request id was applied already (then this entry changes nothing). The record comes after
   * the change: a crash in between re-applies both, and every inner mutation is idempotent at apply.
   */
  private void applyOnce(Mutation.Once once, Entry entry) {
    // Pruned first, at every ONCE entry, applied or not: an HSM that re-applies the whole log over its later
    // state (after an integrity repair) meets records already there, and must still prune what the others
    // pruned at this entry. Older than OUTCOME_KEPT by the log's clock: no client retries that long.
    prune(Settings.OUTCOME_PREFIX, logClock - Settings.OUTCOME_KEPT.toMillis());
    String outcome = Settings.outcome(entry.actor() == null ? "-" : entry.actor().user(), once.requestId());
    if (token.settings().get(outcome, 0) != 0) {
      return;
    }
    applyMutation(once.inner(), entry);
    token.settings().put(outcome, Math.max(1, entry.timestamp()));
  }

  private void applyMutation(Mutation mutation, Entry entry) {
    if (mutation instanceof Mutation.Once o) {
      applyOnce(o, entry);
    } else if (mutation instanceof Mutation.Consume c) {
      consume(c);
    } else if (mutation instanceof Mutation.DeleteKey d) {
      ignoringUnknownKey(() -> token.keys().delete(d.keyId()));
      // After the key: a crash in between leaves an ACL (or chain) without key, which the re-apply removes.
      if (KeyAcl.isKeyId(d.keyId())) {
        token.keyAcls().delete(d.keyId());
        token.keyCertificates().delete(d.keyId());
        for (String setting : Settings.ofKey(d.keyId())) {
          token.settings().delete(setting);
        }
      }
    } else if (mutation instanceof Mutation.SetLabel l) {
      ignoringUnknownKey(() -> token.keys().setLabel(l.keyId(), l.label()));
    } else if (mutation instanceof Mutation.SetCertificates c) {
      setCertificates(c);
    } else if (mutation instanceof Mutation.RestoreCertificates r) {
      // A repair's: only where the key is and its chain is not (drift took it); never over an owner's chain.
      if (holdsKey(r.keyId()) && token.keyCertificates().get(r.keyId()).isEmpty()) {
        setCertificates(r.chain());
      }
    } else if (mutation instanceof Mutation.RotateKey r) {
      rotateKey(r);
    } else if (mutation instanceof Mutation.InstallReplica r) {
      token.clusterKeys().installReplica(r.toBlob());
    } else if (mutation instanceof Mutation.InstallOwnedReplica o) {
      // The ACL first, so the token never holds the new key without its owner. A key already here with its
      // ACL (an earlier creation with this id, or the re-apply after a crash) keeps both: the ACL may hold
      // later shares. A stale ACL without key is replaced; a key without ACL (a whole-log replay, see
      // forgetLaterState) gets its owner back.
      if (!holdsKey(o.acl().keyId()) || token.keyAcls().get(o.acl().keyId()).isEmpty()) {
        token.keyAcls().put(o.acl());
      }
      if (o.exportable()) {
        token.clusterKeys().installExportableReplica(o.replica().toBlob());
      } else {
        token.clusterKeys().installReplica(o.replica().toBlob());
      }
    } else if (mutation instanceof Mutation.PutUser p) {
      // The login bookkeeping (failed count, lock) is the log's own: a record read before a lock (a password
      // change in flight) must not unlock the user; unlocks are UNLOCK_USER entries.
      UserRecord user = hashSeal.open(p.user());
      UserRecord stored = token.users().get(user.name()).orElse(null);
      if (stored != null && !stored.passwordHash().equals(user.passwordHash()) && entry.actor() != null) {
        // A new password ends the user's sessions of before, cluster-wide; the one that made the change
        // goes on (an admin's reset keeps only the admin's). Recorded before the record: a crash in between
        // re-applies both.
        token.settings().put(Settings.sessionsNotBefore(user.name()), entry.timestamp());
        token.settings().put(Settings.sessionKept(user.name()),
            entry.actor().user().equals(user.name()) ? entry.actor().issuedAt() : -1);
      }
      token.users().put(stored == null ? user : user.withFailedLogins(stored.failedLogins()).withLocked(stored.locked()));
    } else if (mutation instanceof Mutation.Activate a) {
      if (token.users().list().isEmpty()) {
        token.users().put(hashSeal.open(a.admin()));
      }
    } else if (LoginLedger.handles(mutation)) {
      logins.apply(mutation);
    } else if (mutation instanceof Mutation.PutSetting p) {
      token.settings().put(p.name(), p.value());
      if (p.name().startsWith(Settings.REVOKED_SESSION_PREFIX)) {
        pruneRevokedSessions();
      }
    } else if (mutation instanceof Mutation.DeleteUser d) {
      token.users().delete(d.name());
      for (String setting : Settings.ofUser(d.name())) {
        token.settings().delete(setting);
      }
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
    return token.keys().holds(keyId);
  }

  /**
   * Only beside the key, as an ACL: a chain set for a key deleted meanwhile must not outlive it. The chain is
   * checked again here (the agent that submitted it did already): every HSM that holds the key reads the same
   * public key, so an entry made round that check is refused alike everywhere.
   */
  private void setCertificates(Mutation.SetCertificates c) {
    if (!holdsKey(c.keyId())) {
      return;
    }
    try {
      CertificateChains.check(token, c.keyId(), c.certificates());
    } catch (HsmException e) {
      if (e.code() == ErrorCode.INVALID_PARAMETER || e.code() == ErrorCode.WRONG_KEY_TYPE) {
        throw new RefusedEntryException(e.getMessage());
      }
      throw e; // the token failed (not the entry): retried, as for any other entry
    }
    if (c.certificates().isEmpty()) {
      token.keyCertificates().delete(c.keyId());
    } else {
      token.keyCertificates().put(new io.hsmbridge.pkcs11.CertificateChain(c.keyId(), c.certificates()));
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
