package io.hsmbridge.agent.replication;

import io.hsmbridge.pkcs11.ClusterSettings;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.UserRecord;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The login bookkeeping of the mutation log (docs/users.md, "Lockout"): applies {@link Mutation.LoginAttempt},
 * {@link Mutation.LoginOutcome} and {@link Mutation.UnlockUser} to the token, deterministically, so that every
 * HSM admits and refuses the same attempts in the same log order; and hands the result of an attempt to
 * the agent that submitted it ({@link #expect}, {@link #take}).
 *
 * <p>State, all in the token: the user's confirmed failures and lock ({@link UserRecord}) and its attempts
 * admitted and still pending, one setting {@code login.pending.<user>.<attemptId>} = the attempt's timestamp
 * each. An attempt is admitted only while {@code failures + pending < }{@link Mutation.RecordLogin#LOCKOUT_AFTER};
 * so at most that many passwords are evaluated until an outcome frees a place. A pending attempt whose
 * outcome never comes (its agent died) counts as a failure once it is more than {@link #PENDING_BOUND_MILLIS}
 * older than a later login entry of the same user: the judgement uses only timestamps carried by entries,
 * so every HSM judges alike.
 *
 * <p>Crash safety: PKCS#11 has no transactions; a failure is counted before its pending record is removed,
 * so an agent killed in between and re-applying the entry counts it once more on that HSM (the safe side:
 * the lock comes one failure early there), never once less. Apply runs on the state machine's single
 * thread; {@link #expect}/{@link #take} on any thread.
 */
public final class LoginLedger {
  /** How long an admitted attempt may stay without an outcome before it counts as a failure. */
  public static final long PENDING_BOUND_MILLIS = 30_000;
  static final String PENDING_PREFIX = "login.pending.";

  /** What the log decided about one attempt, as its submitter learns it. */
  public enum Result {
    /** The attempt may evaluate the password. */
    ADMITTED,
    /** Refused: as many attempts as may still fail are pending; the password was not evaluated. */
    BUSY,
    /** Refused: the user is locked (confirmed failures reached the limit). */
    LOCKED,
    /** Refused: no such user (deleted meanwhile). */
    NO_USER,
    /** A success accepted: the user was not locked at this index; the count is reset. */
    ACCEPTED,
    /** A failure counted, or a success refused (the attempt had expired, or the user was locked or deleted). */
    REFUSED
  }

  private final HsmToken token;
  /** Attempt id -> its latest result, for attempts this agent submitted and waits for (null value: none yet). */
  private final Map<String, Optional<Result>> awaited = new ConcurrentHashMap<>();

  public LoginLedger(HsmToken token) {
    this.token = token;
  }

  /** Call before submitting an entry of attempt {@code attemptId}: its result is kept for {@link #take}. */
  public void expect(String attemptId) {
    awaited.put(attemptId, Optional.empty());
  }

  /** The result of the entry of {@code attemptId} applied since {@link #expect}, or empty; forgets it. */
  public Optional<Result> take(String attemptId) {
    Optional<Result> r = awaited.remove(attemptId);
    return r == null ? Optional.empty() : r;
  }

  /** Whether this class applies {@code m}. */
  static boolean handles(Mutation m) {
    return m instanceof Mutation.LoginAttempt || m instanceof Mutation.LoginOutcome || m instanceof Mutation.UnlockUser
        || m instanceof Mutation.RecordLogin;
  }

  /** Applies one login entry (see the class comment). */
  void apply(Mutation m) {
    if (m instanceof Mutation.LoginAttempt a) {
      expire(a.name(), a.timestamp());
      report(a.attemptId(), admit(a));
    } else if (m instanceof Mutation.LoginOutcome o) {
      expire(o.name(), o.timestamp());
      report(o.attemptId(), outcome(o));
    } else if (m instanceof Mutation.UnlockUser u) {
      token.users().get(u.name()).ifPresent(user -> {
        if (user.locked() || user.failedLogins() != 0) {
          token.users().put(user.withLocked(false).withFailedLogins(0));
        }
      });
    } else if (m instanceof Mutation.RecordLogin l) {
      token.users().get(l.name()).ifPresent(u -> {
        if (!l.success()) {
          countFailure(u);
        } else if (u.failedLogins() != 0 && !u.locked()) {
          token.users().put(u.withFailedLogins(0));
        }
      });
    }
  }

  private Result admit(Mutation.LoginAttempt a) {
    Optional<UserRecord> found = token.users().get(a.name());
    if (found.isEmpty()) {
      return Result.NO_USER;
    }
    UserRecord u = found.get();
    List<String> pending = pending(a.name());
    if (pending.contains(pendingName(a.name(), a.attemptId()))) {
      return Result.ADMITTED; // the same entry applied again after a crash
    }
    if (isLocked(u)) {
      return Result.LOCKED;
    }
    if (u.failedLogins() + pending.size() >= Mutation.RecordLogin.LOCKOUT_AFTER) {
      return Result.BUSY;
    }
    token.settings().put(pendingName(a.name(), a.attemptId()), a.timestamp());
    return Result.ADMITTED;
  }

  private Result outcome(Mutation.LoginOutcome o) {
    String pendingName = pendingName(o.name(), o.attemptId());
    boolean wasPending = token.settings().get(pendingName, Long.MIN_VALUE) != Long.MIN_VALUE;
    Optional<UserRecord> found = token.users().get(o.name());
    if (!wasPending || found.isEmpty()) {
      // Expired (already counted as a failure) or never admitted here, or the user is gone: nothing to count.
      if (wasPending) {
        token.settings().delete(pendingName);
      }
      return Result.REFUSED;
    }
    UserRecord u = found.get();
    Result r;
    if (!o.success()) {
      countFailure(u);
      r = Result.REFUSED;
    } else if (isLocked(u)) {
      r = Result.REFUSED;
    } else {
      if (u.failedLogins() != 0) {
        token.users().put(u.withFailedLogins(0));
      }
      r = Result.ACCEPTED;
    }
    token.settings().delete(pendingName);
    return r;
  }

  /** Pending attempts of {@code name} older than the bound at {@code now} (an entry's timestamp) count as failures. */
  private void expire(String name, long now) {
    for (ClusterSettings.Setting s : pendingSettings(name)) {
      if (s.value() < now - PENDING_BOUND_MILLIS) {
        token.users().get(name).ifPresent(this::countFailure);
        token.settings().delete(s.name());
      }
    }
  }

  private void countFailure(UserRecord u) {
    int failed = u.failedLogins() + 1;
    token.users().put(u.withFailedLogins(failed).withLocked(u.locked() || failed >= Mutation.RecordLogin.LOCKOUT_AFTER));
  }

  private static boolean isLocked(UserRecord u) {
    return u.locked() || u.failedLogins() >= Mutation.RecordLogin.LOCKOUT_AFTER;
  }

  private void report(String attemptId, Result r) {
    awaited.computeIfPresent(attemptId, (k, v) -> Optional.of(r));
  }

  /** Removes a deleted user's pending attempts (a user created later under the name starts afresh). */
  void userDeleted(String name) {
    for (ClusterSettings.Setting s : pendingSettings(name)) {
      token.settings().delete(s.name());
    }
  }

  private List<String> pending(String name) {
    return pendingSettings(name).stream().map(ClusterSettings.Setting::name).toList();
  }

  private List<ClusterSettings.Setting> pendingSettings(String name) {
    String prefix = PENDING_PREFIX + name + ".";
    List<ClusterSettings.Setting> out = new ArrayList<>();
    for (ClusterSettings.Setting s : token.settings().list()) {
      // A user name may hold dots, an attempt id never: "login.pending.a.b.<id>" is user a.b's, not a's.
      if (s.name().startsWith(prefix) && s.name().indexOf('.', prefix.length()) < 0) {
        out.add(s);
      }
    }
    return out;
  }

  static String pendingName(String user, String attemptId) {
    return PENDING_PREFIX + user + "." + attemptId;
  }

  /** The number of attempts of {@code name} admitted and still pending on this HSM (for tests and status). */
  public int pendingCount(String name) {
    return pendingSettings(UserRecord.checkName(name)).size();
  }
}
