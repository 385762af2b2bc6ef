package io.hsmbridge.protocol;

import java.util.HashMap;
import java.util.Map;

/**
 * The operations of the protocol, with stable short wire names (the {@code op} field of a request).
 * Whether an operation mutates the key store matters for replication (later) and for retries.
 */
public enum Op {
  HEALTH("health", false),
  KEY_GENERATE("key.generate", true),
  KEY_LIST("key.list", false),
  KEY_DESCRIBE("key.describe", false),
  KEY_DELETE("key.delete", true),
  KEY_SET_LABEL("key.setLabel", true),
  KEY_PUBLIC("key.publicKey", false),
  /** Sets (or, with an empty array, removes) the X.509 chain of an asymmetric key: its owner only. */
  KEY_SET_CERTIFICATES("key.setCertificates", true),
  /** The X.509 chain stored beside a key (leaf first; empty when none): whoever may use the key. */
  KEY_CERTIFICATES("key.certificates", false),
  KEY_IMPORT_WRAPPED("key.importWrapped", true),
  KEY_WRAP("key.wrap", false),
  ENCRYPT("encrypt", false),
  DECRYPT("decrypt", false),
  SIGN("sign", false),
  VERIFY("verify", false),
  MAC("mac", false),
  MAC_VERIFY("mac.verify", false),
  DIGEST("digest", false),
  RANDOM("random", false),

  // Cluster administration, answered by the bridge.
  CLUSTER_STATUS("cluster.status", false),
  CLUSTER_CHECK("cluster.check", false),
  CLUSTER_REMOVE_HSM("cluster.removeHsm", true),
  CLUSTER_AUDIT_VERIFY("cluster.auditVerify", false),
  /** PRECO only: sets the first admin's password; afterwards the PRECO login no longer exists. */
  CLUSTER_ACTIVATE("cluster.activate", true),

  // Users, sessions and quorum (docs/users.md). Everything but auth.whoami runs on an agent: the users,
  // sessions, MFA challenges and quorum tokens are cluster state, checked inside the tokens.
  AUTH_LOGIN("auth.login", false),
  AUTH_CHALLENGE("auth.challenge", false),
  AUTH_LOGOUT("auth.logout", false),
  AUTH_WHOAMI("auth.whoami", false),
  USER_CREATE("user.create", true),
  USER_DELETE("user.delete", true),
  USER_LIST("user.list", false),
  USER_CHANGE_PASSWORD("user.changePassword", true),
  USER_UNLOCK("user.unlock", true),
  USER_REGISTER_KEY("user.registerKey", true),
  USER_SET_MFA("user.setMfa", true),
  QUORUM_TOKEN("quorum.token", false),
  QUORUM_SET("quorum.set", true),
  KEY_SHARE("key.share", true),
  KEY_UNSHARE("key.unshare", true),
  KEY_SET_QUORUM("key.setQuorum", true),

  // Backups (docs/backups.md), CO only, answered by an HSM's agent: the chosen HSM (onHsm, else any)
  // makes the backup of its own token; the catalog lives in backup.dir. None changes a token.
  BACKUP_CREATE("backup.create", false),
  BACKUP_LIST("backup.list", false),
  BACKUP_DESCRIBE("backup.describe", false),
  BACKUP_DELETE("backup.delete", false),
  BACKUP_RESTORE_DELETED("backup.restoreDeleted", false),
  BACKUP_SET_RETENTION("backup.setRetention", false),
  BACKUP_SET_NEVER_EXPIRES("backup.setNeverExpires", false),
  /** The PBK wrapped under a recovery token's public key (disaster recovery; CO under the admin quorum). */
  BACKUP_ESCROW("backup.escrow", false),
  /** A READY backup copied into another configured store ({@code backup.store.<name>}), which records its source. */
  BACKUP_COPY_TO_REGION("backup.copyToRegion", false),
  /**
   * The next generation of the backup key (PBK), made inside one HSM and installed on every HSM through the
   * mutation log; later backups are made under it, older ones still open (CO under the admin quorum).
   */
  BACKUP_ROTATE_KEY("backup.rotateKey", true),
  /**
   * The next generation of the cluster key (under which replicas travel between HSMs), made inside one HSM and
   * installed on every HSM through the mutation log; new replicas use it (CO under the admin quorum).
   */
  CLUSTER_ROTATE_KEY("cluster.rotateKey", true),

  // Between bridge and agents only (never accepted from clients).
  AGENT_DIGEST("agent.digest", false),
  /** A front door asks whether a session it has not seen yet is valid (its principal and proof). */
  AGENT_VERIFY_SESSION("agent.verifySession", false),
  AGENT_REPAIR("agent.repair", true),
  AGENT_SET_PEERS("agent.setPeers", true),
  AGENT_WRAP_CLUSTER_KEY("agent.wrapClusterKey", false),
  AGENT_AUDIT_VERIFY("agent.auditVerify", false);

  private static final Map<String, Op> BY_WIRE = new HashMap<>();

  static {
    for (Op op : values()) {
      BY_WIRE.put(op.wire, op);
    }
  }

  private final String wire;
  private final boolean mutation;

  Op(String wire, boolean mutation) {
    this.wire = wire;
    this.mutation = mutation;
  }

  public String wire() {
    return wire;
  }

  /** True when the operation changes the set of objects or their attributes. */
  public boolean isMutation() {
    return mutation;
  }

  /**
   * True when sending the same request again (a mutation: with the same {@code requestId}) cannot do it
   * twice: every read; a key creation or import (the key id derives from the request id: a retry returns
   * the key the first attempt made); a delete (a retry that finds the key gone reports it deleted); a
   * relabel; setting a key's certificates (the same chain again); and the user, share and quorum changes, which the cluster applies at most once per user and
   * request id and answers again from its outcome record (docs/replication.md, "Request outcomes"). Not:
   * activation (the PRECO session that sent it ends with it: a retry says the cluster is activated),
   * removing an HSM, and the members' own requests.
   */
  public boolean isRetrySafe() {
    switch (this) {
      case CLUSTER_ACTIVATE:
      case CLUSTER_REMOVE_HSM:
      // Not token mutations, but not to be sent twice: a second backup, or a transition refused the second time.
      case BACKUP_CREATE:
      case BACKUP_DELETE:
      case BACKUP_RESTORE_DELETED:
      case BACKUP_SET_RETENTION:
      case BACKUP_SET_NEVER_EXPIRES:
      case BACKUP_COPY_TO_REGION:
        return false;
      default:
        return !mutation || !isInternal();
    }
  }

  /** True for operations only the cluster's own members send to each other. */
  public boolean isInternal() {
    return wire.startsWith("agent.");
  }

  /**
   * True for operations the front door answers itself: cluster administration and who-am-I. Everything
   * else is forwarded to an HSM's agent: logout (recorded in the cluster's log: sessions are cluster
   * state), and MFA challenges and quorum tokens too (any HSM recomputes them: cluster state as well).
   */
  public boolean answeredByBridge() {
    switch (this) {
      case CLUSTER_STATUS:
      case CLUSTER_CHECK:
      case CLUSTER_REMOVE_HSM:
      case CLUSTER_AUDIT_VERIFY:
      case AUTH_WHOAMI:
        return true;
      default:
        return false;
    }
  }

  /** True for the operations of the user model (sessions, users, quorum, key sharing): clusters only. */
  public boolean isUserModel() {
    return wire.startsWith("auth.") || wire.startsWith("user.") || wire.startsWith("quorum.")
        || this == KEY_SHARE || this == KEY_UNSHARE || this == KEY_SET_QUORUM || this == CLUSTER_ACTIVATE;
  }

  /** Returns the operation for a wire name, or null when there is none. */
  public static Op fromWire(String wire) {
    return wire == null ? null : BY_WIRE.get(wire);
  }
}
