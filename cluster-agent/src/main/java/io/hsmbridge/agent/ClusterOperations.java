package io.hsmbridge.agent;

import io.hsmbridge.agent.cluster.AgentState;
import io.hsmbridge.agent.cluster.AppliedWatch;
import io.hsmbridge.agent.cluster.KeyIds;
import io.hsmbridge.agent.replication.Actor;
import io.hsmbridge.agent.replication.CertificateChains;
import io.hsmbridge.agent.replication.Entry;
import io.hsmbridge.agent.replication.EntryProofs;
import io.hsmbridge.agent.replication.HashSeal;
import io.hsmbridge.agent.replication.Settings;
import io.hsmbridge.agent.replication.TokenApplier;
import io.hsmbridge.agent.replication.Mutation;
import io.hsmbridge.agent.replication.MutationLog;
import io.hsmbridge.agent.users.Committer;
import io.hsmbridge.agent.users.KeyAccess;
import io.hsmbridge.agent.users.OneTimeCredentials;
import io.hsmbridge.agent.users.Principal;
import io.hsmbridge.agent.users.UserOperations;
import io.hsmbridge.agent.users.UsersDigest;
import io.hsmbridge.pkcs11.KeyAcl;
import io.hsmbridge.protocol.Access;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyDigest;
import io.hsmbridge.pkcs11.KeyInfo;
import io.hsmbridge.pkcs11.ReplicaBlob;
import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import io.hsmbridge.protocol.Op;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * An agent's requests when it is one HSM of a cluster. Crypto and reads run locally ({@link Operations});
 * every mutation goes through the Raft mutation log, so that it gets its cluster-wide sequence number
 * and every HSM applies it in the same order. A reply to a mutation carries that sequence ({@code seq})
 * and is sent only after the mutation is applied on this token; the bridge then waits for the other
 * HSMs the durability setting asks for.
 *
 * <p>Creation never writes a token object directly: the key is generated as a session object, wrapped
 * under the cluster key and dropped; the log entry installs it on every HSM, this one included. So a
 * creation the log refuses leaves nothing behind anywhere.
 */
public final class ClusterOperations implements RequestHandler {
  private static final Logger LOG = Logger.getLogger(ClusterOperations.class.getName());
  /** How long a request whose session this HSM cannot verify yet waits for entries in flight. */
  private static final Duration SESSION_CATCH_UP = Duration.ofSeconds(1);
  private final String hsmId;
  private final HsmToken hsm;
  private final Operations local;
  private final MutationLog log;
  private final AppliedWatch applied;
  private final Supplier<AgentState> state;
  private final Duration commitTimeout;
  private final UserOperations users;
  private final KeyAccess access;
  private final EntryProofs proofs;
  private final HashSeal hashSeal;
  private final TokenApplier applier;
  private final OneTimeCredentials credentials;
  /** The backup.* requests (refused where this HSM has no backup.dir). */
  private final io.hsmbridge.agent.backup.BackupOperations backups;

  /**
   * @param applier this HSM's applier: its login bookkeeping, and the state at one index for digests
   */
  public ClusterOperations(String hsmId, HsmToken hsm, MutationLog log, AppliedWatch applied,
      Supplier<AgentState> state, Duration commitTimeout, TokenApplier applier) {
    this(hsmId, hsm, log, applied, state, commitTimeout, applier,
        new io.hsmbridge.agent.backup.BackupOperations(hsmId, "-", hsm, applier, null));
  }

  /** @param backups the backup.* requests (their catalog null when this HSM has no backup.dir) */
  public ClusterOperations(String hsmId, HsmToken hsm, MutationLog log, AppliedWatch applied,
      Supplier<AgentState> state, Duration commitTimeout, TokenApplier applier,
      io.hsmbridge.agent.backup.BackupOperations backups) {
    this.hsmId = hsmId;
    this.hsm = hsm;
    this.local = new Operations(hsmId, hsm);
    this.log = log;
    this.applied = applied;
    this.state = state;
    this.commitTimeout = commitTimeout;
    this.proofs = new EntryProofs(hsm);
    this.hashSeal = new HashSeal(hsm);
    this.applier = applier;
    this.credentials = new OneTimeCredentials(proofs, hsm.settings(), this::ensureProofKey, this::commit,
        System::currentTimeMillis);
    this.users = new UserOperations(hsm, this::commit, System::currentTimeMillis, this::issueSession,
        applier.logins(), credentials, this::catchUp);
    this.access = new KeyAccess(hsm, credentials);
    this.backups = backups;
  }

  @Override
  public boolean waitsOnCluster(JsonObject body) {
    Object op = body.getValue("op");
    Op parsed = op instanceof String ? Op.fromWire((String) op) : null;
    // A login may commit its outcome (the cluster-wide failed-login count); a quorum token is used up
    // through the log; a challenge or token may first install the session-proof key.
    return parsed != null && (parsed.isMutation() || parsed == Op.AUTH_LOGIN || parsed == Op.AUTH_LOGOUT
        || parsed == Op.AUTH_CHALLENGE || parsed == Op.QUORUM_TOKEN || body.getValue("quorum") != null);
  }

  @Override
  public JsonObject execute(JsonObject body) {
    Op op = Operations.op(body);
    if (op != Op.HEALTH && state.get() != AgentState.SERVING) {
      throw new HsmException(ErrorCode.HSM_NOT_READY, "HSM " + hsmId + " is " + state.get() + ", not serving yet");
    }
    RequestReader r = new RequestReader(body);
    Principal p = Principal.of(body);
    if (!op.isInternal() && !Access.isPublic(op) && (p == null || !Access.allows(op, p.role()))) {
      // The bridge checked this already; an agent does not serve a client request without a principal.
      throw new HsmException(ErrorCode.ACCESS_DENIED, "access denied: " + op.wire() + " needs a logged-in user of role "
          + Access.rolesFor(op));
    }
    if (p != null) {
      if (op == Op.AGENT_VERIFY_SESSION) {
        // A front door adopting a session it has not held: a logout, deletion or lock acknowledged through
        // another front door (a majority applied it, maybe not this HSM) must count here too. Once per
        // session and front door, so the leader's round trip is cheap.
        catchUp();
      }
      checkSession(p);
      RequestTrace.mark("session checked");
    }
    if (op == Op.AUTH_LOGOUT) {
      return logout(p);
    }
    if (op == Op.AGENT_VERIFY_SESSION) {
      if (p == null) {
        throw new HsmException(ErrorCode.NOT_AUTHENTICATED, "no session to verify");
      }
      return new JsonObject().put("valid", true).put("user", p.user()).put("role", p.role().name());
    }
    String once = p != null && RequestOutcomes.recorded(op) ? r.optionalString("requestId") : null;
    if (once == null) {
      return execute(op, r, p, body, this::commit);
    }
    // Sent before (a lost answer, a retry on another host): answered as the first attempt was, unchanged.
    String outcome = Settings.outcome(p.user(), once);
    if (hsm.settings().get(outcome, 0) != 0) {
      return withRequestId(repeated(op, r, p), r);
    }
    try {
      return execute(op, r, p, body, (by, m) -> commit(by, new Mutation.Once(once, m)));
    } catch (HsmException e) {
      // The first attempt's entry may have been applied here between the look above and this request's own
      // checks ("user exists"): then that is this request's outcome, not the error.
      if (hsm.settings().get(outcome, 0) != 0) {
        return withRequestId(repeated(op, r, p), r);
      }
      throw e;
    }
  }

  private JsonObject repeated(Op op, RequestReader r, Principal p) {
    if (op == Op.KEY_SHARE || op == Op.KEY_UNSHARE) {
      String keyId = r.keyId("keyId");
      KeyInfo key = find(keyId);
      JsonObject reply = key == null ? new JsonObject().put("keyId", keyId) : access.describe(Operations.key(key), p);
      return reply.put("seq", applied.applied()).put("repeated", true);
    }
    return RequestOutcomes.repeatedReply(op, r, p, applied.applied());
  }

  /** @param change commits this request's change (wrapped for at-most-once when the op records its outcome) */
  private JsonObject execute(Op op, RequestReader r, Principal p, JsonObject body, Committer change) {
    if (p != null) {
      credentials.refuseUsed(body, p); // after the outcome record: a repeat of a done request is answered "done"
    }
    if (UserOperations.handles(op)) {
      return withRequestId(users.execute(op, r, p, change), r);
    }
    if (op == Op.BACKUP_ROTATE_KEY || op == Op.CLUSTER_ROTATE_KEY) {
      users.requireAdminQuorum(r, p, op.wire()); // as the escrow: it decides which key protects the next backups or replicas
      return withRequestId(rotateKey(op == Op.CLUSTER_ROTATE_KEY ? Mutation.RotateKey.Target.CLUSTER_KEY
          : Mutation.RotateKey.Target.BACKUP_KEY, p, change), r);
    }
    if (io.hsmbridge.agent.backup.BackupOperations.handles(op)) {
      if (op == Op.BACKUP_ESCROW) {
        // The escrow lets whoever holds the recovery token open every backup: as much as any admin service.
        users.requireAdminQuorum(r, p, op.wire());
      }
      return withRequestId(backups.execute(op, r), r);
    }
    if (p != null) {
      access.check(op, r, p);
    }
    switch (op) {
      case HEALTH:
        return local.execute(body).put("state", state.get().name()).put("applied", applied.applied());
      case KEY_GENERATE:
        return withRequestId(generate(r, p), r);
      case KEY_DELETE:
        return withRequestId(delete(r, p), r);
      case KEY_SET_LABEL:
        return withRequestId(access.describe(setLabel(r, p), p), r);
      case KEY_SET_CERTIFICATES:
        return withRequestId(setCertificates(r, p), r);
      case KEY_IMPORT_WRAPPED:
        return withRequestId(importWrapped(r, p), r);
      case KEY_LIST:
        return list(body, p);
      case KEY_DESCRIBE:
        return access.describe(local.execute(body), p);
      case KEY_SHARE:
      case KEY_UNSHARE: {
        long seq = access.share(op, r, m -> change.commit(p, m));
        return withRequestId(access.describe(Operations.key(hsm.keys().describe(r.keyId("keyId"))), p).put("seq", seq), r);
      }
      case KEY_SET_QUORUM:
        return withRequestId(access.setQuorum(r, m -> commit(p, m), m -> change.commit(p, m)), r);
      case AGENT_DIGEST:
        return digest();
      case AGENT_REPAIR:
        return repair(r.keyId("keyId"));
      case AGENT_SET_PEERS:
        return setPeers(r);
      default:
        return local.execute(body);
    }
  }

  /**
   * {@code backup.rotateKey} / {@code cluster.rotateKey}: this HSM's SO makes the next generation of the key (a
   * session object, wrapped under the carrier), and the log installs it on every HSM, this one included. The
   * answer comes once this HSM applied it: its next backup, or replica, is made under the new generation.
   */
  private JsonObject rotateKey(Mutation.RotateKey.Target target, Principal p, Committer change) {
    boolean cluster = target == Mutation.RotateKey.Target.CLUSTER_KEY;
    io.hsmbridge.pkcs11.NextGeneration next = cluster ? hsm.clusterKeys().prepareClusterKeyRotation()
        : hsm.backupKeys().prepareRotation();
    long seq = change.commit(p, new Mutation.RotateKey(target, next.generation(), next.label(), next.wrapped()));
    LOG.info(hsmId + ": " + (cluster ? "cluster" : "backup") + " key generation " + next.generation()
        + " installed at index " + seq);
    return new JsonObject().put("rotated", true).put("generation", next.generation()).put("seq", seq)
        .put("generations", new JsonArray(cluster ? hsm.clusterKeys().clusterKeyGenerations() : hsm.backupKeys().generations()));
  }

  /** The keys the user owns or that are shared with them. */
  private JsonObject list(JsonObject body, Principal p) {
    JsonObject all = local.execute(body);
    JsonArray mine = new JsonArray();
    for (Object k : all.getJsonArray("keys", new JsonArray())) {
      JsonObject key = (JsonObject) k;
      if (access.visible(key.getString("keyId"), p)) {
        mine.add(access.describe(key, p));
      }
    }
    return all.put("keys", mine);
  }

  private JsonObject generate(RequestReader r, Principal p) {
    KeySpec spec = r.spec();
    KeyUsage usage = r.usage(spec);
    String label = r.label("label");
    boolean exportable = r.bool("exportable", false);
    boolean extractable = r.bool("extractable", true);
    int hsms = log.peers().size();
    if (!extractable && exportable) {
      throw HsmException.badParam("exportable=true and extractable=false contradict each other: an exportable key"
          + " is one its owner may wrap out of the HSM");
    }
    if (!extractable) {
      // A never-extractable key cannot be wrapped at all, so it cannot travel to another HSM (nor into a backup).
      if (hsms > 1) {
        throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "a never-extractable key (extractable=false) cannot be"
            + " wrapped, so it cannot be replicated and this cluster has " + hsms + " HSMs; create it with the default"
            + " policy (non-exportable, replicated), or in a one-HSM cluster where it lives on that HSM only");
      }
      KeyInfo k = hsm.keys().generate(spec, usage, label, false, true);
      commit(p, new Mutation.PutAcl(KeyAcl.ownedBy(k.keyId(), p.user())));
      return access.describe(Operations.key(k), p).put("replicated", false);
    }
    String keyId = KeyIds.fromRequestId(r.string("requestId"));
    JsonObject retried = retriedCreation(keyId, p);
    if (retried != null) {
      return retried;
    }
    ReplicaBlob blob;
    if (exportable) {
      // Under the export key, not the cluster key, whose unwrap template would make the replicas non-exportable.
      ensureExportKey();
      blob = hsm.clusterKeys().generateExportableForReplication(spec, usage, label, keyId);
    } else {
      blob = hsm.clusterKeys().generateForReplication(spec, usage, label, keyId);
    }
    RequestTrace.mark("generated and wrapped");
    KeyAcl owner = KeyAcl.ownedBy(keyId, p.user());
    long seq = commit(p, Mutation.InstallOwnedReplica.of(blob, owner, exportable));
    return access.describe(Operations.key(hsm.keys().describe(keyId)), p).put("seq", seq);
  }

  /**
   * The answer to a creation or import sent again: the key its request id names, when it exists (the
   * first attempt's), else null. A request id that another user's creation used first is not a way in.
   */
  private JsonObject retriedCreation(String keyId, Principal p) {
    KeyInfo existing = find(keyId);
    if (existing == null) {
      return null;
    }
    if (!hsm.keyAcls().get(keyId).map(a -> a.owner().equals(p.user())).orElse(false)) {
      throw new HsmException(ErrorCode.ACCESS_DENIED, "access denied: this requestId already created another user's key");
    }
    return access.describe(Operations.key(existing), p).put("seq", applied.applied());
  }

  private JsonObject delete(RequestReader r, Principal p) {
    String keyId = r.keyId("keyId");
    hsm.keys().describe(keyId);
    long seq = commit(p, new Mutation.DeleteKey(keyId));
    return new JsonObject().put("keyId", keyId).put("deleted", true).put("seq", seq);
  }

  private JsonObject setLabel(RequestReader r, Principal p) {
    String keyId = r.keyId("keyId");
    String label = r.label("label");
    hsm.keys().describe(keyId);
    long seq = commit(p, new Mutation.SetLabel(keyId, label));
    return Operations.key(hsm.keys().describe(keyId)).put("seq", seq);
  }

  /**
   * key.setCertificates (after {@link KeyAccess#check}: the owner): the chain is checked here first (a bad one
   * costs no log entry and gets its reason), then every HSM that holds the key stores it (and checks it again).
   * The reply's {@code keyId} and {@code seq} route the owner's next read of the key to an HSM that applied it.
   */
  private JsonObject setCertificates(RequestReader r, Principal p) {
    String keyId = r.keyId("keyId");
    List<byte[]> chain = r.certificates("certificates");
    CertificateChains.check(hsm, keyId, chain);
    long seq = commit(p, new Mutation.SetCertificates(keyId, chain));
    return new JsonObject().put("keyId", keyId).put("count", chain.size()).put("seq", seq);
  }

  /**
   * Import: the user's blob is unwrapped here (under the user's wrapping key, which this HSM holds like
   * every other), then re-wrapped under the cluster key for the others. If the log refuses, the local
   * copy is deleted again. The replicated key's id derives from the request id, as a creation's does: an
   * import sent again returns the key the first attempt made. An exportable key travels under the export
   * key and stays exportable on every HSM.
   */
  private JsonObject importWrapped(RequestReader r, Principal p) {
    KeySpec spec = r.spec();
    boolean exportable = r.bool("exportable", false);
    String wrappingKeyId = r.keyId("wrappingKeyId");
    Algorithm alg = r.alg(Algorithm.Kind.KEY_WRAP);
    byte[] wrapped = r.bytes("wrapped", RequestReader.MAX_WRAPPED_BYTES);
    KeyUsage usage = r.usage(spec);
    String label = r.label("label");
    if (exportable) {
      ensureExportKey();
    }
    String keyId = KeyIds.fromRequestId(r.string("requestId"));
    JsonObject retried = retriedCreation(keyId, p);
    if (retried != null) {
      return retried;
    }
    // The local copy goes before the commit: the log entry installs the key WITH its owner on every HSM,
    // this one included (an HSM that already held the key would keep it without an owner). The copy lives
    // between two entries' applications (atOneIndex), so no digest ever sees it.
    ReplicaBlob local = applier.atOneIndex(() -> {
      KeyInfo k = hsm.keys().importWrapped(wrappingKeyId, alg, wrapped, spec, usage, label, exportable);
      try {
        return hsm.clusterKeys().wrapForReplication(k.keyId());
      } finally {
        hsm.keys().delete(k.keyId());
      }
    });
    // The id is metadata beside the wrapped key: every HSM installs it under the request's id.
    ReplicaBlob blob = new ReplicaBlob(keyId, local.label(), local.spec(), local.usage(), local.wrapped(), local.ecPoint());
    KeyAcl owner = KeyAcl.ownedBy(blob.keyId(), p.user());
    long seq = commit(p, Mutation.InstallOwnedReplica.of(blob, owner, exportable));
    return access.describe(Operations.key(hsm.keys().describe(blob.keyId())), p).put("seq", seq);
  }

  /**
   * The digest of this HSM's keys and users at exactly one applied index (taken between two entries, never
   * in the middle of one: {@link TokenApplier#atOneIndex}), so that HSMs at the same index compare equal
   * while the cluster keeps changing. The token is read in full first, while entries keep being applied
   * (about 2 ms a key on SoftHSM2: 10 s at 5,000 keys, which would hold every commit were this HSM the Raft
   * leader); with applies held, the scan is settled against the caches in memory (KeyManager.settle).
   */
  private JsonObject digest() {
    io.hsmbridge.pkcs11.KeyManager.TokenScan scannedKeys = hsm.keys().scanToken();
    UsersDigest.Scan scannedRecords = UsersDigest.scan(hsm);
    // Only the settle holds the applier; the digests are computed from its (immutable) lists after.
    SettledState state = applier.atOneIndex(() -> {
      long at = applier.lastApplied();
      long unconfirmedBefore = hsm.keys().unconfirmedDrifts();
      List<KeyInfo> keys = hsm.keys().settle(scannedKeys);
      UsersDigest.Settled records = scannedRecords.settle();
      // A difference from the token seen once is not adopted yet (DriftSuspicions): this digest is not final.
      return new SettledState(at, keys, records, hsm.keys().unconfirmedDrifts() != unconfirmedBefore);
    });
    JsonArray list = new JsonArray();
    for (KeyInfo k : state.keys()) {
      list.add(new JsonObject().put("keyId", k.keyId()).put("spec", k.spec().name()).put("usage", k.usage().name())
          .put("label", k.label()).put("exportable", k.exportable()).put("extractable", k.extractable()));
    }
    UsersDigest.Summary users = UsersDigest.summarize(state.records());
    return new JsonObject().put("hsmId", hsmId).put("applied", state.at()).put("appliedAfter", state.at())
        .put("driftUnconfirmed", state.unconfirmed()).put("digest", KeyDigest.of(state.keys())).put("keys", list)
        .put("usersDigest", users.digest())
        .put("usersRecords", new JsonObject(new java.util.LinkedHashMap<String, Object>(users.perRecord())));
  }

  /** What a digest reads with the applier held: the applied index, the keys and records there, and whether a settle left a difference unconfirmed. */
  private record SettledState(long at, List<KeyInfo> keys, UsersDigest.Settled records, boolean unconfirmed) {}

  /** Re-replicates a key this HSM holds: the entry is a no-op on HSMs that have it and restores it on the others. */
  private JsonObject repair(String keyId) {
    // With its owner when it has one: a key restored without its ACL would be refused to its owner there.
    ReplicaBlob blob = hsm.clusterKeys().wrapForReplication(keyId);
    java.util.Optional<KeyAcl> acl = hsm.keyAcls().get(keyId);
    boolean exportable = hsm.keys().describe(keyId).exportable();
    if (exportable && acl.isEmpty()) {
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "key " + keyId + " is exportable and has no owner: not repaired");
    }
    Mutation m = acl.isPresent() ? Mutation.InstallOwnedReplica.of(blob, acl.get(), exportable) : Mutation.InstallReplica.of(blob);
    long seq = commit(null, m);
    // The chain beside a key pair travels with it (a restored key without its chain would serve KeyStore reads
    // without it on that HSM, and the users digests would differ for good): applied only where it is missing.
    java.util.Optional<io.hsmbridge.pkcs11.CertificateChain> chain = hsm.keyCertificates().get(keyId);
    if (chain.isPresent()) {
      seq = commit(null, new Mutation.RestoreCertificates(new Mutation.SetCertificates(keyId, chain.get().certificates())));
    }
    return new JsonObject().put("keyId", keyId).put("seq", seq).put("by", hsmId);
  }

  private JsonObject setPeers(RequestReader r) {
    JsonArray wanted = r.body().getJsonArray("peers");
    if (wanted == null || wanted.isEmpty()) {
      throw HsmException.badParam("peers must be a non-empty array");
    }
    List<MutationLog.Peer> peers = new ArrayList<>();
    for (int i = 0; i < wanted.size(); i++) {
      JsonObject p = wanted.getJsonObject(i);
      peers.add(new MutationLog.Peer(p.getString("id"), p.getString("host"), p.getInteger("port")));
    }
    log.setPeers(peers, commitTimeout);
    return new JsonObject().put("peers", peersJson(log.peers()));
  }

  public static JsonArray peersJson(List<MutationLog.Peer> peers) {
    JsonArray a = new JsonArray();
    for (MutationLog.Peer p : peers) {
      a.add(new JsonObject().put("id", p.id()).put("host", p.host()).put("port", p.port()));
    }
    return a;
  }

  /**
   * A request's principal must carry a session proof that this token verifies, valid now, of a user that
   * exists with that role and is not locked (the PRECO: only while there is no user). Without it the
   * entries this request would submit are refused by every HSM anyway; refusing here says so at once.
   */
  private void checkSession(Principal p) {
    try {
      verifySession(p);
    } catch (HsmException e) {
      // This HSM may not have applied the login's user or the session-proof key yet (a commit needs a
      // majority, not this HSM): catch up with the leader, then give entries in flight a moment.
      catchUp();
      long deadline = System.nanoTime() + SESSION_CATCH_UP.toNanos();
      while (true) {
        try {
          verifySession(p);
          return;
        } catch (HsmException again) {
          if (System.nanoTime() > deadline) {
            throw again;
          }
        }
        try {
          Thread.sleep(50);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          throw e;
        }
      }
    }
  }

  /**
   * Ends the caller's session on every HSM: the log records it as logged out (until it would have expired),
   * so its proof admits nothing more at any front door, also after any process restarts.
   */
  private JsonObject logout(Principal p) {
    Actor s = p.session();
    long seq = commit(p, new Mutation.PutSetting(Settings.revokedSession(s.sessionId()), s.expiresAt()));
    return new JsonObject().put("loggedOut", true).put("seq", seq);
  }

  /** Waits (bounded) until this HSM has applied what the leader had applied when asked. */
  private void catchUp() {
    try {
      long target = log.leaderAppliedIndex(SESSION_CATCH_UP.multipliedBy(2));
      applied.await(target, commitTimeout);
    } catch (IllegalStateException e) {
      // no leader: check against what this HSM has
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void verifySession(Principal p) {
    Actor s = p.session();
    if (s == null || !s.role().name().equals(p.role().name()) || !proofs.validSession(s)
        || !EntryProofs.current(s, System.currentTimeMillis())) {
      throw new HsmException(ErrorCode.NOT_AUTHENTICATED, "the session carries no valid session proof: log in again");
    }
    if (hsm.settings().get(Settings.revokedSession(s.sessionId()), 0) != 0) {
      throw new HsmException(ErrorCode.NOT_AUTHENTICATED, "the session was logged out: log in again");
    }
    if (s.issuedAt() < hsm.settings().get(Settings.sessionsNotBefore(p.user()), 0)
        && s.issuedAt() != hsm.settings().get(Settings.sessionKept(p.user()), -1)) {
      throw new HsmException(ErrorCode.NOT_AUTHENTICATED, "the password of " + p.user()
          + " changed after this session began: log in again");
    }
    boolean exists = p.role() == io.hsmbridge.protocol.Role.PRECO
        ? hsm.users().list().isEmpty()
        : hsm.users().get(p.user()).map(u -> u.role().equals(p.role().name()) && !u.locked()).orElse(false);
    if (!exists) {
      throw new HsmException(ErrorCode.NOT_AUTHENTICATED, "user " + p.user() + " (" + p.role()
          + ") no longer exists, changed or is locked: log in again");
    }
  }

  /**
   * A session proof for a user whose password was just verified. The first login of a cluster (or of a
   * cluster made before session proofs) first puts the session-proof key into every HSM through the log.
   */
  private JsonObject issueSession(String user, io.hsmbridge.protocol.Role role) {
    ensureProofKey();
    return Principal.proofJson(proofs.issue(Actor.Role.valueOf(role.name()), user, System.currentTimeMillis()));
  }

  /**
   * The cluster's export key, which exportable keys travel under: the first exportable creation or import
   * of a cluster puts it into every HSM through the log (racing agents each submit one; every HSM installs
   * the first in log order).
   */
  private void ensureExportKey() {
    installOwnKey(hsm.clusterKeys()::hasExportKey, hsm.clusterKeys()::newExportKey, "export key");
  }

  /** The first user entry of a cluster (or of one made before hashes were sealed) installs the hash-seal key. */
  private void ensureHashSealKey() {
    installOwnKey(hashSeal::hasKey, hashSeal::newKey, "password-hash seal key");
  }

  private void ensureProofKey() {
    installOwnKey(proofs::hasKey, proofs::newKey, "session-proof key");
  }

  /**
   * Puts one of the cluster's own keys (reserved id, no owner) into every HSM through the log when this token
   * has none. Racing agents each submit one; every HSM installs the first in log order (install is idempotent
   * by id), and that is the key each then uses, since it uses what its token holds once its own entry applied.
   */
  private synchronized void installOwnKey(java.util.function.BooleanSupplier held,
      java.util.function.Supplier<io.hsmbridge.pkcs11.ReplicaBlob> generate, String name) {
    if (!held.getAsBoolean()) {
      commit(null, Mutation.InstallReplica.of(generate.get()));
      LOG.info(hsmId + ": the cluster's " + name + " is installed");
    }
  }

  /** A commit that takes this long is logged (the Raft log's side of a slow request). */
  static final long SLOW_COMMIT_MS = 1_000;

  /**
   * Commits a mutation through the log for {@code by} (null: this agent on its own) and waits until it is
   * applied here (also what user, ACL and setting changes use). A commit not seen in time (no majority
   * reachable, a leader change) is OUTCOME_UNKNOWN: the entry may be in the log and be applied later (a
   * chaos run found every such creation applied), so the caller must not read it as "not done"; one the
   * leader refused before logging it is KEY_AVAILABILITY; an entry this HSM refused at apply (and so did
   * every other) is ACCESS_DENIED.
   */
  private long commit(Principal by, Mutation m) {
    m = hashSeal.seal(m, this::ensureHashSealKey); // a password hash crosses the log sealed (HashSeal)
    long now = System.currentTimeMillis();
    Actor actor = by != null ? by.session() : Actor.agent(hsmId, now);
    // Unsealed only before the session-proof key exists: then only that key's own installation passes.
    Entry entry = proofs.hasKey() ? proofs.seal(actor, now, hsmId, m) : new Entry(actor, now, hsmId, null, m);
    long seq;
    long submitted = System.nanoTime();
    try {
      seq = log.submit(entry).get(commitTimeout.toMillis(), TimeUnit.MILLISECONDS);
      RequestTrace.mark("committed");
      long ms = (System.nanoTime() - submitted) / 1_000_000;
      if (ms >= SLOW_COMMIT_MS) {
        // A slow request's front door logs "sent to <hsm>, +N ms answered"; this says the time went to the log.
        LOG.warning(hsmId + ": slow commit: a " + m.getClass().getSimpleName() + " took " + ms + " ms to commit as"
            + " sequence " + seq + " (leader " + log.leaderId().orElse("unknown") + ")");
      }
    } catch (TimeoutException e) {
      throw new HsmException(ErrorCode.OUTCOME_UNKNOWN, "the cluster's mutation log did not confirm the change"
          + " within " + commitTimeout.toSeconds() + " s (a majority of its " + log.peers().size()
          + " HSMs unreachable, or a leader change): it may still be applied");
    } catch (ExecutionException e) {
      // The client gets only the exception's name: the log keeps the cause, for the operator.
      LOG.log(Level.WARNING, hsmId + ": the mutation log refused a " + m.getClass().getSimpleName(), e.getCause());
      if (e.getCause() instanceof org.apache.ratis.protocol.exceptions.StateMachineException) {
        // Refused by the leader's check before it was logged: nothing will be applied.
        throw new HsmException(ErrorCode.KEY_AVAILABILITY, "the cluster's mutation log refused the change: "
            + e.getCause().getClass().getSimpleName());
      }
      throw new HsmException(ErrorCode.OUTCOME_UNKNOWN, "the cluster's mutation log did not confirm the change ("
          + e.getCause().getClass().getSimpleName() + "): it may still be applied");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new HsmException(ErrorCode.TOKEN_UNAVAILABLE, "agent is stopping");
    }
    try {
      if (!applied.await(seq, commitTimeout)) {
        throw new HsmException(ErrorCode.TOKEN_UNAVAILABLE, "mutation " + seq + " is committed but not yet applied on "
            + hsmId + (log.failure() != null ? " (this HSM stopped applying: " + log.failure().getMessage() + ")" : ""));
      }
      RequestTrace.mark("applied here");
      String refused = log.refusal(seq);
      if (refused != null) {
        throw new HsmException(ErrorCode.ACCESS_DENIED, "access denied: the cluster refused the change: " + refused);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new HsmException(ErrorCode.TOKEN_UNAVAILABLE, "agent is stopping");
    }
    return seq;
  }

  private KeyInfo find(String keyId) {
    try {
      return hsm.keys().describe(keyId);
    } catch (HsmException e) {
      if (e.code() == ErrorCode.UNKNOWN_KEY) {
        return null;
      }
      throw e;
    }
  }

  private static JsonObject withRequestId(JsonObject reply, RequestReader r) {
    String requestId = r.optionalString("requestId");
    return requestId == null ? reply : reply.put("requestId", requestId);
  }
}
