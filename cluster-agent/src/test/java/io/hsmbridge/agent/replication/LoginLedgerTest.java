package io.hsmbridge.agent.replication;

import static io.hsmbridge.agent.replication.UserAclMutationTest.user;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.agent.replication.LoginLedger.Result;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.pkcs11.TokenConfig;
import io.hsmbridge.pkcs11.UserRecord;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * LOGIN_ATTEMPT / LOGIN_OUTCOME / UNLOCK_USER applied by the production {@link TokenApplier} to a real
 * SoftHSM2 token, in log order as every HSM applies them: at most five attempts are admitted until
 * outcomes free places, a success is accepted only for a pending attempt of an unlocked user, an
 * attempt without outcome counts as a failure after the bound (judged by later entries' timestamps), and
 * the state is in the token (a reopened token decides the same).
 */
class LoginLedgerTest {
  private static final long T0 = 1_700_000_000_000L;
  private TokenConfig config;
  private HsmToken token;
  private TokenApplier applier;
  private long index;
  private int ids;

  @BeforeEach
  void open() {
    config = SoftHsmFixture.newToken("login-ledger");
    token = HsmToken.open(config);
    applier = TokenApplier.unchecked(token); // the login bookkeeping itself, not who may submit it
    apply(new Mutation.PutUser(user("carol", "CU")));
  }

  @AfterEach
  void close() {
    token.close();
  }

  private void apply(Mutation m) {
    applier.apply(++index, m);
    applier.applied(index);
  }

  /** Applies {@code m} as the agent that submitted it would see it, and returns its result. */
  private Result submit(String attemptId, Mutation m) {
    applier.logins().expect(attemptId);
    apply(m);
    return applier.logins().take(attemptId).orElseThrow();
  }

  private String nextId() {
    return String.format("%016x", ++ids);
  }

  private Result attempt(String id, long t) {
    return submit(id, new Mutation.LoginAttempt("carol", id, t));
  }

  private Result outcome(String id, boolean success, long t) {
    return submit(id, new Mutation.LoginOutcome("carol", id, success, t));
  }

  private UserRecord carol() {
    return token.users().get("carol").orElseThrow();
  }

  @Test
  void twentyAttemptsAtOnceAdmitFiveAndTheirFailuresLock() {
    List<String> admitted = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      String id = nextId();
      Result r = attempt(id, T0 + i);
      if (r == Result.ADMITTED) {
        admitted.add(id);
      } else {
        assertEquals(Result.BUSY, r, "refused without evaluating, not (yet) locked");
      }
    }
    assertEquals(5, admitted.size());
    assertEquals(5, applier.logins().pendingCount("carol"));
    for (String id : admitted) {
      assertEquals(Result.REFUSED, outcome(id, false, T0 + 100));
    }
    assertTrue(carol().locked());
    assertEquals(5, carol().failedLogins());
    assertEquals(0, applier.logins().pendingCount("carol"));
    assertEquals(Result.LOCKED, attempt(nextId(), T0 + 200));
  }

  @Test
  void aSuccessIsAcceptedForAPendingAttemptAndResetsButNeverAfterTheLock() {
    String good = nextId();
    assertEquals(Result.ADMITTED, attempt(good, T0));
    List<String> bad = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      bad.add(nextId());
      assertEquals(Result.ADMITTED, attempt(bad.get(i), T0));
    }
    assertEquals(Result.BUSY, attempt(nextId(), T0), "five pending: the sixth waits for an outcome");
    for (String id : bad) {
      outcome(id, false, T0 + 1);
    }
    assertEquals(4, carol().failedLogins());
    assertFalse(carol().locked(), "four failures and one pending success: not locked");
    assertEquals(Result.ACCEPTED, outcome(good, true, T0 + 2));
    assertEquals(0, carol().failedLogins());

    // Lock, then a late success of an attempt admitted before the fifth failure is refused.
    List<String> more = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      more.add(nextId());
      assertEquals(Result.ADMITTED, attempt(more.get(i), T0 + 3));
    }
    for (int i = 0; i < 4; i++) {
      outcome(more.get(i), false, T0 + 4);
    }
    String late = nextId();
    assertEquals(Result.BUSY, attempt(late, T0 + 4));
    outcome(more.get(4), false, T0 + 5);
    assertTrue(carol().locked());
    assertEquals(Result.REFUSED, outcome(late, true, T0 + 6), "never admitted: refused");
    assertEquals(Result.LOCKED, attempt(nextId(), T0 + 7));

    apply(new Mutation.UnlockUser("CAROL"));
    assertFalse(carol().locked());
    assertEquals(0, carol().failedLogins());
    String after = nextId();
    assertEquals(Result.ADMITTED, attempt(after, T0 + 8));
    assertEquals(Result.ACCEPTED, outcome(after, true, T0 + 9));
  }

  @Test
  void anAttemptWithoutOutcomeCountsAsAFailureAfterTheBoundAndItsLateSuccessIsRefused() {
    String lost = nextId();
    assertEquals(Result.ADMITTED, attempt(lost, T0));
    String slow = nextId();
    assertEquals(Result.ADMITTED, attempt(slow, T0 + LoginLedger.PENDING_BOUND_MILLIS));
    assertEquals(0, carol().failedLogins(), "exactly at the bound: still pending");
    String next = nextId();
    assertEquals(Result.ADMITTED, attempt(next, T0 + LoginLedger.PENDING_BOUND_MILLIS + 1));
    assertEquals(1, carol().failedLogins(), "the lost attempt now counts as a failure");
    assertEquals(Result.REFUSED, outcome(slow, true, T0 + 2 * LoginLedger.PENDING_BOUND_MILLIS + 1),
        "a success that comes after the bound is refused: it already counted as a failure");
    assertEquals(2, carol().failedLogins(), "slow expired; next is still within the bound");
    assertEquals(1, applier.logins().pendingCount("carol"));
  }

  @Test
  void theStateIsInTheTokenAndAPasswordChangeInFlightCannotUnlock() {
    UserRecord before = carol();
    for (int i = 0; i < 5; i++) {
      String id = nextId();
      attempt(id, T0);
      outcome(id, false, T0);
    }
    assertTrue(carol().locked());
    // A PUT_USER built from the record read before the lock (a password change in flight).
    apply(new Mutation.PutUser(before.withPasswordHash(UserAclMutationTest.hash())));
    assertTrue(carol().locked(), "PUT_USER keeps the log's lockout bookkeeping");
    assertEquals(5, carol().failedLogins());

    String pending = nextId();
    apply(new Mutation.UnlockUser("carol"));
    assertEquals(Result.ADMITTED, attempt(pending, T0 + 1));
    token.close();
    token = HsmToken.open(config);
    applier = TokenApplier.unchecked(token); // the login bookkeeping itself, not who may submit it
    assertEquals(1, applier.logins().pendingCount("carol"), "pending attempts survive a restart");
    assertEquals(Result.ACCEPTED, outcome(pending, true, T0 + 2));
  }

  @Test
  void namesAreCanonicalAndIdsChecked() {
    assertEquals("carol", new Mutation.LoginAttempt("CaRoL", "0123456789abcdef", T0).name());
    assertThrows(HsmException.class, () -> new Mutation.LoginAttempt("carol", "0123", T0));
    assertThrows(HsmException.class, () -> new Mutation.LoginOutcome("carol", "0123456789ABCDEF", true, T0));
    String id = nextId();
    assertEquals(Result.ADMITTED, submit(id, new Mutation.LoginAttempt("Carol", id, T0)));
    assertEquals(1, applier.logins().pendingCount("CAROL"));
    apply(new Mutation.DeleteUser("carol"));
    assertEquals(0, applier.logins().pendingCount("carol"), "a deleted user's attempts go with it");
    assertEquals(Result.NO_USER, attempt(nextId(), T0));
  }
}
