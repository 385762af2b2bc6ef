package io.hsmbridge.agent.users;

import io.hsmbridge.agent.RequestReader;
import io.hsmbridge.agent.replication.LoginLedger;
import io.hsmbridge.agent.replication.Mutation;
import io.hsmbridge.agent.replication.Settings;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Op;
import io.hsmbridge.protocol.Role;
import io.hsmbridge.protocol.SequenceNote;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.Arrays;
import java.util.Base64;
import java.util.function.LongSupplier;

/**
 * The user model on one HSM's agent (docs/users.md): login checks (Argon2id, cluster-wide lockout,
 * token-sign MFA), activation, and the admin services. Users live in the token; every change is a
 * mutation committed through the cluster's log ({@code commit}), so every HSM holds the same users.
 * The bridge has already checked the role against {@code Access}; the rules that need the stored users
 * (own password, last admin, quorum) are checked here, before anything is committed.
 */
public final class UserOperations {
  /** CloudHSM's pre-crypto-officer: user {@code admin} with this password until the cluster is activated. */
  public static final String PRECO_USER = "admin";
  private static final char[] PRECO_PASSWORD = "password".toCharArray();
  /** Most approvals any quorum can ask for. */
  public static final int MAX_QUORUM = 8;

  private final HsmToken hsm;
  private final Committer commit;
  private final LongSupplier clock;
  private final SessionIssuer sessions;
  private final LoginLedger logins;
  private final OneTimeCredentials credentials;
  private final Runnable catchUp;
  private volatile String dummyHash;
  private static final java.security.SecureRandom ATTEMPT_IDS = new java.security.SecureRandom();

  /**
   * @param commit commits a mutation through the cluster's log for a principal and returns its sequence
   *     once it is applied on this HSM (throws KEY_AVAILABILITY when it cannot)
   * @param sessions issues the session proof a successful login returns (see {@link Principal})
   * @param logins the login bookkeeping of this HSM's applier (where an attempt's result is learnt)
   */
  public UserOperations(HsmToken hsm, Committer commit, LongSupplier clock, SessionIssuer sessions, LoginLedger logins,
      OneTimeCredentials credentials) {
    this(hsm, commit, clock, sessions, logins, credentials, () -> { });
  }

  /**
   * @param catchUp waits (bounded) until this HSM has applied what the log's leader had applied: a login
   *     for a user this HSM does not know yet (created through another HSM a moment ago) looks again after it
   */
  public UserOperations(HsmToken hsm, Committer commit, LongSupplier clock, SessionIssuer sessions, LoginLedger logins,
      OneTimeCredentials credentials, Runnable catchUp) {
    this.catchUp = catchUp;
    this.credentials = credentials;
    this.hsm = hsm;
    this.commit = commit;
    this.clock = clock;
    this.sessions = sessions;
    this.logins = logins;
  }

  /** Whether this agent answers {@code op} here. */
  public static boolean handles(Op op) {
    switch (op) {
      case AUTH_LOGIN:
      case AUTH_CHALLENGE:
      case QUORUM_TOKEN:
      case CLUSTER_ACTIVATE:
      case USER_CREATE:
      case USER_DELETE:
      case USER_LIST:
      case USER_CHANGE_PASSWORD:
      case USER_UNLOCK:
      case USER_REGISTER_KEY:
      case USER_SET_MFA:
      case QUORUM_SET:
        return true;
      default:
        return false;
    }
  }

  /**
   * @param change commits this request's change (the caller makes it happen at most once per request
   *     id: {@code Mutation.Once}); login bookkeeping goes through the constructor's committer
   */
  public JsonObject execute(Op op, RequestReader r, Principal p, Committer change) {
    if (op == Op.AUTH_LOGIN) {
      return login(r);
    }
    if (op == Op.AUTH_CHALLENGE) {
      return credentials.challenge(userName(r, "user"));
    }
    if (op == Op.QUORUM_TOKEN) {
      return credentials.quorumToken(r.body(), p);
    }
    switch (op) {
      case CLUSTER_ACTIVATE:
        return activate(r, p, change);
      case USER_CREATE:
        return create(r, p, change);
      case USER_DELETE:
        return delete(r, p, change);
      case USER_LIST:
        return list();
      case USER_CHANGE_PASSWORD:
        return changePassword(r, p, change);
      case USER_UNLOCK:
        return unlock(r, p, change);
      case USER_REGISTER_KEY:
        return registerKey(r, p, change);
      case USER_SET_MFA:
        return setMfa(r, p, change);
      case QUORUM_SET:
        return setQuorum(r, p, change);
      default:
        throw new HsmException(ErrorCode.UNKNOWN_OPERATION, "unknown operation " + op.wire());
    }
  }

  // --- login ---------------------------------------------------------------------------------------

  /**
   * A login (docs/users.md, "Lockout"): the attempt first reserves its right to evaluate the password
   * through the log (LOGIN_ATTEMPT); only an admitted attempt runs Argon2id; its outcome goes through the
   * log too (LOGIN_OUTCOME), and a success becomes a session only once that entry was applied here and
   * accepted (the user was not locked at its index). Refused attempts are answered without evaluating
   * the password: USER_LOCKED when the user is locked, LOGIN_FAILED otherwise.
   */
  private JsonObject login(RequestReader r) {
    String raw = r.body().getValue("user") instanceof String s ? s : null;
    char[] password = loginPassword(r);
    try {
      if (!UserRecord.isValidName(raw)) {
        throw loginFailed();
      }
      String name = UserRecord.checkName(raw);
      if (hsm.users().get(name).isEmpty()) {
        // A commit needs a majority, not this HSM: a user (or the activation) made through another HSM a
        // moment ago may not be applied here yet (seen: create, then log in at once elsewhere: LOGIN_FAILED).
        catchUp.run();
      }
      if (hsm.users().list().isEmpty()) {
        // Not activated: only the PRECO exists, with the published default password.
        if (PRECO_USER.equals(name) && Arrays.equals(password, PRECO_PASSWORD)) {
          return new JsonObject().put("user", PRECO_USER).put("role", Role.PRECO.name())
              .put(Principal.PROOF, sessions.issue(PRECO_USER, Role.PRECO));
        }
        throw loginFailed();
      }
      UserRecord u = hsm.users().get(name).orElse(null);
      if (u == null) {
        PasswordHash.verify(password, dummyHash()); // the same work as for a real user: no user-name oracle
        throw loginFailed();
      }
      if (u.locked()) {
        // Locked in this HSM's state at some index: only a CO's unlock (later in the log) undoes that.
        throw locked(name);
      }
      String attemptId = newAttemptId();
      Submitted admission = submitLogin(attemptId, new Mutation.LoginAttempt(name, attemptId, clock.getAsLong()));
      switch (admission.result()) {
        case ADMITTED:
          break;
        case LOCKED:
          throw noted(locked(name), admission.seq());
        case NO_USER:
          PasswordHash.verify(password, dummyHash());
          throw noted(loginFailed(), admission.seq());
        default:
          throw noted(loginFailed(), admission.seq()); // BUSY: as many attempts as may still fail are being evaluated
      }
      u = hsm.users().get(name).orElse(u); // the record as of the admission (a password change just before it)
      boolean passed;
      try {
        passed = PasswordHash.verify(password, u.passwordHash()) && mfaPassed(r, u);
      } catch (RuntimeException e) {
        passed = false; // counted as a failure below; the attempt must not stay pending
      }
      Submitted outcome = submitLogin(attemptId, new Mutation.LoginOutcome(name, attemptId, passed, clock.getAsLong()));
      if (passed && outcome.result() == LoginLedger.Result.ACCEPTED) {
        // The sequence lets the front door send this user's next reads to an HSM that applied the outcome.
        return new JsonObject().put("user", name).put("role", u.role())
            .put(Principal.PROOF, sessions.issue(name, Role.valueOf(u.role()))).put("seq", outcome.seq());
      }
      if (hsm.users().get(name).map(UserRecord::locked).orElse(false)) {
        throw noted(locked(name), outcome.seq());
      }
      // The same answer as for an unknown user: a count here would tell which user names exist (the front
      // door strips the sequence note too).
      throw noted(loginFailed(), outcome.seq());
    } finally {
      Arrays.fill(password, '\0');
    }
  }

  /** What the application of a login entry here decided for the attempt, and the entry's sequence. */
  private record Submitted(LoginLedger.Result result, long seq) {}

  /** Commits one login entry and returns what its application here decided for the attempt. */
  private Submitted submitLogin(String attemptId, Mutation entry) {
    logins.expect(attemptId);
    try {
      long seq = commit.commit(null, entry); // the agent's own bookkeeping entry, not the user's
      return new Submitted(logins.take(attemptId).orElse(LoginLedger.Result.REFUSED), seq);
    } finally {
      logins.take(attemptId);
    }
  }

  /** A login refusal that committed an entry first: the front door reads (and strips) its sequence. */
  private static HsmException noted(HsmException refusal, long seq) {
    return new HsmException(refusal.code(), SequenceNote.append(refusal.getMessage(), seq));
  }

  private static String newAttemptId() {
    byte[] b = new byte[8];
    ATTEMPT_IDS.nextBytes(b);
    return java.util.HexFormat.of().formatHex(b);
  }

  /**
   * A user with MFA on must sign a live challenge of its own ({@code auth.challenge}, from any front door)
   * with the registered key ({@code mfa: {challengeId, signature}}); the challenge is used up through the
   * log. Checked only after the password matched, and a missing signature counts as a failed login, so MFA
   * never tells whether a password was right.
   */
  private boolean mfaPassed(RequestReader r, UserRecord u) {
    if (hsm.settings().get(Settings.mfa(u.name()), 0) == 0) {
      return true;
    }
    return credentials.mfaAnswered(r.body().getValue("mfa"), u);
  }

  private static char[] loginPassword(RequestReader r) {
    Object v = r.body().getValue("password");
    if (!(v instanceof String s) || s.isEmpty() || s.length() > PasswordHash.MAX_LENGTH) {
      return new char[0];
    }
    return s.toCharArray();
  }

  private String dummyHash() {
    if (dummyHash == null) {
      dummyHash = PasswordHash.hash("no-such-user-dummy".toCharArray());
    }
    return dummyHash;
  }

  private static HsmException loginFailed() {
    return new HsmException(ErrorCode.LOGIN_FAILED, "wrong user name, password or MFA signature; "
        + Mutation.RecordLogin.LOCKOUT_AFTER + " consecutive failures lock a user");
  }

  private static HsmException locked(String name) {
    return new HsmException(ErrorCode.USER_LOCKED, "user " + name + " is locked after "
        + Mutation.RecordLogin.LOCKOUT_AFTER + " consecutive failed logins; an admin must unlock it (hsmbridge user unlock "
        + name + ")");
  }

  // --- activation and admin services --------------------------------------------------------------

  private JsonObject activate(RequestReader r, Principal p, Committer change) {
    if (p == null || p.role() != Role.PRECO || !hsm.users().list().isEmpty()) {
      throw new HsmException(ErrorCode.ACCESS_DENIED, "access denied: the cluster is already activated");
    }
    String hash = hashNewPassword(r);
    long seq = change.commit(p, new Mutation.Activate(new UserRecord(PRECO_USER, Role.CO.name(), hash, 0, false, null)));
    UserRecord admin = hsm.users().get(PRECO_USER).orElse(null);
    if (admin == null || !hash.equals(admin.passwordHash())) {
      throw new HsmException(ErrorCode.ACCESS_DENIED, "access denied: another activation of this cluster came first");
    }
    return new JsonObject().put("user", PRECO_USER).put("role", Role.CO.name()).put("activated", true).put("seq", seq);
  }

  private JsonObject create(RequestReader r, Principal p, Committer change) {
    String name = userName(r, "name");
    Role role;
    try {
      role = Role.parseCreatable(r.string("role"));
    } catch (IllegalArgumentException e) {
      throw HsmException.badParam(e.getMessage());
    }
    if (hsm.users().get(name).isPresent()) {
      throw HsmException.badParam("user " + name + " already exists (user names compare case-insensitively)");
    }
    String hash = hashNewPassword(r);
    adminQuorum(r, p, "user.create");
    long seq = change.commit(p, new Mutation.PutUser(new UserRecord(name, role.name(), hash, 0, false, null)));
    return new JsonObject().put("name", name).put("role", role.name()).put("seq", seq);
  }

  private JsonObject delete(RequestReader r, Principal p, Committer change) {
    String name = existingUser(r, "name").name();
    if (p.is(name)) {
      throw new HsmException(ErrorCode.ACCESS_DENIED, "access denied: an admin cannot delete itself");
    }
    long owned = hsm.keyAcls().list().stream().filter(a -> a.owner().equals(name)).count();
    if (owned > 0) {
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "user " + name + " owns " + owned
          + " key(s); the owner must delete them first (keys are never handed to another user silently)");
    }
    adminQuorum(r, p, "user.delete");
    long seq = change.commit(p, new Mutation.DeleteUser(name));
    return new JsonObject().put("name", name).put("deleted", true).put("seq", seq);
  }

  private JsonObject list() {
    JsonArray users = new JsonArray();
    for (UserRecord u : hsm.users().list()) {
      users.add(new JsonObject().put("name", u.name()).put("role", u.role()).put("locked", u.locked())
          .put("failedLogins", u.failedLogins()).put("approvalKey", u.approvalKeySpki() != null)
          .put("mfa", hsm.settings().get(Settings.mfa(u.name()), 0) != 0));
    }
    return new JsonObject().put("users", users).put("adminQuorum", hsm.settings().get(Settings.ADMIN_QUORUM, 1));
  }

  private JsonObject changePassword(RequestReader r, Principal p, Committer change) {
    UserRecord u = existingUser(r, "name");
    if (!p.is(u.name())) {
      if (p.role() != Role.CO) {
        throw new HsmException(ErrorCode.ACCESS_DENIED, "access denied: a crypto user may change only its own password");
      }
    }
    String hash = hashNewPassword(r);
    if (!p.is(u.name())) {
      adminQuorum(r, p, "user.changePassword");
    }
    long seq = change.commit(p, new Mutation.PutUser(u.withPasswordHash(hash)));
    return new JsonObject().put("name", u.name()).put("changed", true).put("seq", seq);
  }

  private JsonObject unlock(RequestReader r, Principal p, Committer change) {
    UserRecord u = existingUser(r, "name");
    long seq = change.commit(p, new Mutation.UnlockUser(u.name()));
    return new JsonObject().put("name", u.name()).put("unlocked", true).put("seq", seq);
  }

  private JsonObject registerKey(RequestReader r, Principal p, Committer change) {
    UserRecord u = hsm.users().get(p.user()).orElseThrow(() -> new HsmException(ErrorCode.ACCESS_DENIED,
        "access denied: user " + p.user() + " no longer exists"));
    byte[] spki = r.bytes("spki", UserRecord.MAX_SPKI_BYTES);
    ApprovalKeys.parse(spki);
    long seq = change.commit(p, new Mutation.PutUser(u.withApprovalKey(spki)));
    return new JsonObject().put("name", u.name()).put("registered", true).put("seq", seq);
  }

  private JsonObject setMfa(RequestReader r, Principal p, Committer change) {
    UserRecord u = hsm.users().get(p.user()).orElseThrow(() -> new HsmException(ErrorCode.ACCESS_DENIED,
        "access denied: user " + p.user() + " no longer exists"));
    boolean enabled = r.bool("enabled", true);
    if (enabled && u.approvalKeySpki() == null) {
      throw HsmException.badParam("register an approval key first (hsmbridge user register-key): MFA signs with it");
    }
    long seq = change.commit(p, new Mutation.PutSetting(Settings.mfa(u.name()), enabled ? 1 : 0));
    return new JsonObject().put("name", u.name()).put("mfa", enabled).put("seq", seq);
  }

  private JsonObject setQuorum(RequestReader r, Principal p, Committer change) {
    String service = r.string("service");
    if (!"admin".equals(service)) {
      throw HsmException.badParam("service must be 'admin' (key quorums are set with key.setQuorum)");
    }
    int value = quorumValue(r, "value");
    long approvers = hsm.users().list().stream()
        .filter(u -> Role.CO.name().equals(u.role()) && u.approvalKeySpki() != null && !u.locked()).count();
    if (value > 1 && value > approvers) {
      throw HsmException.badParam("a quorum of " + value + " needs at least " + value
          + " admins with a registered approval key; there are " + approvers);
    }
    adminQuorum(r, p, "quorum.set");
    long seq = change.commit(p, new Mutation.PutSetting(Settings.ADMIN_QUORUM, value));
    return new JsonObject().put("service", service).put("value", value).put("seq", seq);
  }

  /** A quorum value field, 1..{@value #MAX_QUORUM}. */
  public static int quorumValue(RequestReader r, String field) {
    int v = r.integer(field);
    if (v < 1 || v > MAX_QUORUM) {
      throw HsmException.badParam(field + " must be between 1 and " + MAX_QUORUM);
    }
    return v;
  }

  /** The admin quorum's approvals for {@code what} (CO), as user.create and quorum.set need them. */
  public void requireAdminQuorum(RequestReader r, Principal p, String what) {
    adminQuorum(r, p, what);
  }

  private void adminQuorum(RequestReader r, Principal p, String what) {
    QuorumCheck.require(r.body(), p, hsm.settings().get(Settings.ADMIN_QUORUM, 1), Role.CO,
        "admin services (" + what + ")", hsm.users(), credentials);
  }

  private UserRecord existingUser(RequestReader r, String field) {
    String name = userName(r, field);
    return hsm.users().get(name).orElseThrow(() -> HsmException.badParam("no user named " + name));
  }

  private static String userName(RequestReader r, String field) {
    String name = r.string(field);
    if (!UserRecord.isValidName(name)) {
      throw HsmException.badParam(field + " must match " + UserRecord.NAME_PATTERN);
    }
    return UserRecord.checkName(name); // canonical: Alice and alice are one user
  }

  private static String hashNewPassword(RequestReader r) {
    char[] password = r.string("password").toCharArray();
    try {
      PasswordHash.checkRules(password);
      return PasswordHash.hash(password);
    } catch (IllegalArgumentException e) {
      throw HsmException.badParam(e.getMessage());
    } finally {
      Arrays.fill(password, '\0');
    }
  }
}
