package io.hsmbridge.agent.replication;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyAcl;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.ErrorCode;
import java.util.Arrays;
import java.util.Optional;

/**
 * Whether an entry's actor may make its mutation, decided at apply from the entry and this token's
 * state at that log index only, so every HSM decides alike (docs/replication.md, "Who may submit what").
 * It mirrors the bridge's {@code Access} table and the agent's checks (KeyAccess, UserOperations):
 *
 * <ul>
 *   <li>every entry needs a seal made inside a cluster token by the agent that submitted it, and a
 *       timestamp no older than the log's clock allows (so an entry cannot be replayed later);</li>
 *   <li>every user entry needs a session proof made by a cluster token ({@link EntryProofs}), valid at the
 *       entry's timestamp, of a user that exists with that role and is not locked (the PRECO: only while
 *       the token holds no user);</li>
 *   <li>PRECO: {@code ACTIVATE}; CO: new users, password changes and unlocks of others, deleting another
 *       user, the admin quorum, its own MFA switch; CO and CU: their own password and approval key;
 *       CU: creating keys it owns, and on keys it owns (by the ACL at that index) delete, relabel,
 *       share/unshare with crypto users, ACL removal and the key's quorum values;</li>
 *   <li>an agent on its own (its seal is the proof): {@code RECORD_LOGIN} and repairs
 *       ({@code INSTALL_REPLICA}, {@code INSTALL_OWNED_REPLICA}, {@code RESTORE_CERTIFICATES}: only where a
 *       chain is missing, never over one); the session-proof key's own
 *       {@code INSTALL_REPLICA} needs no proof (there is no key to make one yet, and only a holder of
 *       the cluster key can make its blob).</li>
 * </ul>
 *
 * What the entry does not carry is not re-checked here: quorum approvals (the serving agent checked
 * them), and whether a deleted user still owns keys (single-HSM keys make ACLs differ between HSMs).
 */
final class EntryAuthorization {
  /** How far behind the log's clock an entry's timestamp may be (submit-to-apply delay, clock skew). */
  static final java.time.Duration REPLAY_WINDOW = java.time.Duration.ofMinutes(10);
  /** The log's clock is written to the token when it advances by more than this. */
  static final java.time.Duration CLOCK_STEP = java.time.Duration.ofMinutes(1);

  private final HsmToken token;
  private final EntryProofs proofs;

  EntryAuthorization(HsmToken token, EntryProofs proofs) {
    this.token = token;
    this.proofs = proofs;
  }

  /**
   * @param logClock the log's clock at this index (see {@link TokenApplier}): the latest sealed timestamp
   *     applied so far, to within {@link #CLOCK_STEP}
   * @throws RefusedEntryException saying why, when the actor may not make this mutation here
   */
  void check(Entry e, long logClock) {
    Actor a = e.actor();
    if (a == null) {
      throw refused("a format-1 entry carries no principal");
    }
    Mutation m = e.mutation();
    if (isProofKeyBootstrap(e)) {
      return; // nothing can seal it yet; only a cluster-key holder makes its blob (TokenApplier refuses one that does not unwrap)
    }
    if (!proofs.validSeal(e)) {
      throw refused("the entry is not sealed by a cluster HSM");
    }
    if (e.timestamp() < logClock - REPLAY_WINDOW.toMillis()) {
      throw refused("the entry is older than the log's clock allows (a replayed entry?)");
    }
    if (a.role() == Actor.Role.AGENT) {
      checkAgent(a, e);
      return;
    }
    checkSession(a, e.timestamp());
    if (m instanceof Mutation.Once once) {
      m = once.inner(); // the actor must be allowed the change itself; the outcome record comes with it
    }
    // A switch expression: a new kind does not compile until it has a rule here (fail closed).
    boolean checked = switch (m.kind()) {
      case ACTIVATE -> require(a.role() == Actor.Role.PRECO, a, m);
      case PUT_USER -> checkPutUser(a, ((Mutation.PutUser) m).user());
      case DELETE_USER -> {
        require(a.role() == Actor.Role.CO, a, m);
        if (((Mutation.DeleteUser) m).name().equals(a.user())) {
          throw refused("an admin cannot delete itself");
        }
        yield true;
      }
      case PUT_SETTING -> checkSetting(a, (Mutation.PutSetting) m);
      case INSTALL_OWNED_REPLICA, INSTALL_OWNED_EXPORTABLE -> {
        require(a.role() == Actor.Role.CU, a, m);
        KeyAcl acl = ((Mutation.InstallOwnedReplica) m).acl();
        notReservedKey(acl.keyId());
        if (!acl.owner().equals(a.user()) || !acl.shares().isEmpty()) {
          throw refused("a crypto user creates keys owned by itself and shared with nobody");
        }
        yield true;
      }
      case DELETE_KEY -> ownerOrAbsent(a, m, ((Mutation.DeleteKey) m).keyId());
      case SET_LABEL -> ownerOrAbsent(a, m, ((Mutation.SetLabel) m).keyId());
      case SET_CERTIFICATES -> ownerOrAbsent(a, m, ((Mutation.SetCertificates) m).keyId());
      case DELETE_ACL -> ownerOrAbsent(a, m, ((Mutation.DeleteAcl) m).keyId());
      case PUT_ACL -> checkPutAcl(a, ((Mutation.PutAcl) m).acl());
      case UNLOCK_USER, ROTATE_KEY -> require(a.role() == Actor.Role.CO, a, m);
      case INSTALL_REPLICA, RECORD_LOGIN, LOGIN_ATTEMPT, LOGIN_OUTCOME, RESTORE_CERTIFICATES ->
          throw refused(m.kind() + " is made only by an agent on its own");
      case ONCE -> throw refused("a Once entry cannot hold another");
      case CONSUME -> {
        // A user uses up its own credentials only (an agent uses an MFA challenge up at login: checkAgent).
        if (!((Mutation.Consume) m).user().equals(a.user())) {
          throw refused(a.user() + " may use up its own one-time credentials only");
        }
        yield true;
      }
    };
    assert checked;
  }

  private static void checkAgent(Actor a, Entry e) {
    if (!a.user().equals(e.submitter())) {
      throw refused("an agent's own entry is submitted by that agent");
    }
    boolean allowed = switch (e.mutation().kind()) {
      case RECORD_LOGIN, LOGIN_ATTEMPT, LOGIN_OUTCOME, INSTALL_REPLICA, INSTALL_OWNED_REPLICA, INSTALL_OWNED_EXPORTABLE,
          CONSUME, RESTORE_CERTIFICATES -> true;
      case PUT_USER, DELETE_USER, UNLOCK_USER, PUT_SETTING, ACTIVATE, DELETE_KEY, SET_LABEL, PUT_ACL, DELETE_ACL, ONCE,
          ROTATE_KEY, SET_CERTIFICATES -> false;
    };
    if (!allowed) {
      throw refused(e.mutation().kind() + " needs a user's principal, not an agent's");
    }
  }

  /** An agent's INSTALL_REPLICA of the session-proof key (HMAC_SHA256, SIGN_VERIFY), sealed or not. */
  static boolean isProofKeyBootstrap(Entry e) {
    return e.actor() != null && e.actor().role() == Actor.Role.AGENT && e.mutation() instanceof Mutation.InstallReplica r
        && EntryProofs.KEY_ID.equals(r.keyId()) && r.spec() == io.hsmbridge.protocol.KeySpec.HMAC_SHA256
        && r.usage() == io.hsmbridge.protocol.KeyUsage.SIGN_VERIFY;
  }

  /** Whether the entry's seal verifies in this token (state-independent: see {@link TokenApplier#admit}). */
  boolean sealValid(Entry e) {
    return proofs.validSeal(e);
  }

  private void checkSession(Actor a, long at) {
    if (a.proof() == null) {
      throw refused("no session proof");
    }
    if (!proofs.validInEntry(a)) {
      throw refused("the session proof does not verify");
    }
    if (!EntryProofs.current(a, at)) {
      throw refused("the session proof is not valid at the entry's time");
    }
    if (a.role() == Actor.Role.PRECO) {
      if (!token.users().list().isEmpty()) {
        throw refused("the cluster is activated: the pre-crypto-officer is gone");
      }
      return;
    }
    UserRecord u = token.users().get(a.user()).orElseThrow(() -> refused("no user " + a.user()));
    if (!u.role().equals(a.role().name())) {
      throw refused("user " + a.user() + " is " + u.role() + ", not " + a.role());
    }
    if (u.locked()) {
      throw refused("user " + a.user() + " is locked");
    }
  }

  private boolean checkPutUser(Actor a, UserRecord n) {
    Optional<UserRecord> old = token.users().get(n.name());
    if (old.isEmpty()) {
      require(a.role() == Actor.Role.CO, a, "create a user");
      if (!(n.role().equals("CO") || n.role().equals("CU")) || n.failedLogins() != 0 || n.locked()
          || n.approvalKeySpki() != null) {
        throw refused("a new user is a CO or CU, unlocked, without failed logins or approval key");
      }
      return true;
    }
    UserRecord o = old.get();
    if (!o.role().equals(n.role())) {
      throw refused("a user's role never changes");
    }
    if (n.name().equals(a.user())) {
      if (n.locked()) {
        throw refused("a user does not lock itself");
      }
      return true; // its own password and approval key
    }
    require(a.role() == Actor.Role.CO, a, "change another user");
    if (!Arrays.equals(o.approvalKeySpki(), n.approvalKeySpki())) {
      throw refused("only a user registers its own approval key");
    }
    if (n.locked() && !o.locked()) {
      throw refused("users are locked by failed logins only");
    }
    return true;
  }

  private boolean checkSetting(Actor a, Mutation.PutSetting p) {
    String name = p.name();
    if (name.equals(Settings.ADMIN_QUORUM)) {
      require(a.role() == Actor.Role.CO, a, "set the admin quorum");
      quorumValue(p.value());
    } else if (name.equals(Settings.mfa(a.user()))) {
      require(a.role() == Actor.Role.CO, a, "switch MFA");
      if (p.value() != 0 && p.value() != 1) {
        throw refused("an MFA switch is 0 or 1");
      }
    } else if (name.startsWith(Settings.REVOKED_SESSION_PREFIX)) {
      String sessionId = name.substring(Settings.REVOKED_SESSION_PREFIX.length());
      // A logout ends the session that sends it; an admin may end anyone's.
      if (!sessionId.equals(a.sessionId()) && a.role() != Actor.Role.CO) {
        throw refused(a.user() + " (" + a.role() + ") may end its own session only");
      }
      if (p.value() <= 0) {
        throw refused("a logged-out session is recorded with its expiry");
      }
    } else if (name.startsWith("quorum.key.")) {
      String keyId = name.substring("quorum.key.".length(), Math.max(name.lastIndexOf('.'), "quorum.key.".length()));
      if (!KeyAcl.isKeyId(keyId) || !(name.equals(Settings.keyManagementQuorum(keyId)) || name.equals(Settings.keyUsageQuorum(keyId)))) {
        throw refused("unknown setting " + name);
      }
      require(a.role() == Actor.Role.CU, a, "set a key's quorum");
      quorumValue(p.value());
      KeyAcl acl = token.keyAcls().get(keyId).orElseThrow(() -> refused("key " + keyId + " has no owner here"));
      if (!acl.owner().equals(a.user())) {
        throw refused(a.user() + " does not own key " + keyId);
      }
    } else {
      throw refused("setting " + name + " cannot be set by " + a.user() + " (" + a.role() + ")");
    }
    return true;
  }

  private boolean checkPutAcl(Actor a, KeyAcl n) {
    require(a.role() == Actor.Role.CU, a, "change a key's ACL");
    notReservedKey(n.keyId());
    Optional<KeyAcl> old = token.keyAcls().get(n.keyId());
    if (old.isPresent() && !old.get().owner().equals(a.user())) {
      throw refused(a.user() + " does not own key " + n.keyId());
    }
    if (!n.owner().equals(a.user())) {
      throw refused("a key's owner never changes");
    }
    if (old.isEmpty() && holdsKey(n.keyId()) && !n.shares().isEmpty()) {
      throw refused("a key without owner gets an owner before any share");
    }
    for (String share : n.shares()) {
      boolean added = old.map(o -> !o.shares().contains(share)).orElse(true);
      if (added && !token.users().get(share).map(u -> u.role().equals("CU")).orElse(false)) {
        throw refused("keys are shared with existing crypto users only");
      }
    }
    return true;
  }

  /** The owner may; on a token without this key the entry is a no-op anyway. */
  private boolean ownerOrAbsent(Actor a, Mutation m, String keyId) {
    require(a.role() == Actor.Role.CU, a, m);
    if (!KeyAcl.isKeyId(keyId)) {
      throw refused("a key id is 32 hex characters");
    }
    notReservedKey(keyId);
    Optional<KeyAcl> acl = token.keyAcls().get(keyId);
    if (acl.isPresent()) {
      if (!acl.get().owner().equals(a.user())) {
        throw refused(a.user() + " does not own key " + keyId);
      }
    } else if (holdsKey(keyId)) {
      throw refused("key " + keyId + " has no owner");
    }
    return true;
  }

  private boolean holdsKey(String keyId) {
    return token.keys().holds(keyId);
  }

  private static void notReservedKey(String keyId) {
    if (EntryProofs.KEY_ID.equalsIgnoreCase(keyId)) {
      throw refused("the session-proof key is the cluster's own");
    }
    if (io.hsmbridge.pkcs11.ClusterKeys.EXPORT_KEY_ID.equalsIgnoreCase(keyId)) {
      throw refused("the export key is the cluster's own");
    }
    if (HashSeal.KEY_ID.equalsIgnoreCase(keyId)) {
      throw refused("the password-hash seal key is the cluster's own");
    }
  }

  private static void quorumValue(long v) {
    if (v < 1 || v > 8) {
      throw refused("a quorum value is 1..8");
    }
  }

  private static boolean require(boolean allowed, Actor a, Object what) {
    if (!allowed) {
      throw refused(a.role() + " " + a.user() + " may not " + (what instanceof Mutation m ? m.kind() : what));
    }
    return true;
  }

  private static RefusedEntryException refused(String reason) {
    return new RefusedEntryException(reason);
  }
}
