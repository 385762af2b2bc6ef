package io.hsmbridge.agent.replication;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.SequenceNote;
import io.vertx.core.json.JsonObject;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A user created through one HSM logs in at once through another that has not applied the creation yet
 * (a commit needs a majority, not every HSM): the login waits for that HSM to catch up with the log's
 * leader instead of answering LOGIN_FAILED (seen in CI). Real tokens, real Raft; a follower's applies are
 * held for a moment, as a busy or slow HSM's are.
 */
class LoginCatchUpTest extends AgentClusterTest {
  private static final String ADMIN_PASSWORD = "admin-password-" + UUID.randomUUID();
  private static final String CU_PASSWORD = "crypto-user-pw-" + UUID.randomUUID();


  @Test
  @Timeout(120)
  void aLoginAtAnHsmBehindTheUsersCreationWaitsForItInsteadOfFailing() throws Exception {
    start("login-catch-up");
    JsonObject admin = env.activate(ADMIN_PASSWORD);
    // A follower is held: a leader whose applies are held cannot answer any submit (Raft's reply waits for
    // the leader's apply), which is another failure than the one tested here.
    int slow = env.cluster.logs[1].isLeader() ? 2 : 1;
    int creator = slow == 1 ? 2 : 1;
    CountDownLatch held = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    Thread holder = new Thread(() -> env.appliers.get(slow).atOneIndex(() -> {
      held.countDown();
      try {
        release.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return null;
    }));
    holder.start();
    held.await();
    try {
      env.callWithoutWaiting(creator, admin, new JsonObject().put("op", "user.create").put("name", "alice").put("role", "CU")
          .put("password", CU_PASSWORD));
      assertTrue(env.tokens.get(slow).users().get("alice").isEmpty(), "the held HSM has not applied the creation yet");
      new Thread(() -> {
        try {
          Thread.sleep(700);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        release.countDown();
      }).start();
      JsonObject alice = env.login(slow, "alice", CU_PASSWORD);
      assertEquals("alice", alice.getString("user"), alice.encode());
    } finally {
      release.countDown();
      holder.join();
    }
  }

  /**
   * A login's answer names the sequence of its outcome entry, applied at the HSM that answers: the front door
   * routes the user's next reads to an HSM that applied it (read your writes: a user listed right after
   * failed logins showed fewer failures, served by an HSM that had not applied them). A refused login notes
   * it at the end of its error (the front door strips it before the client sees it).
   */
  @Test
  @Timeout(120)
  void aLoginsAnswerAndRefusalNameTheSequenceOfTheOutcomeAppliedWhereTheyAnswer() throws Exception {
    start("login-seq");
    JsonObject admin = env.activate(ADMIN_PASSWORD);
    env.call(0, admin, new JsonObject().put("op", "user.create").put("name", "alice").put("role", "CU")
        .put("password", CU_PASSWORD));
    JsonObject ok = env.login(1, "alice", CU_PASSWORD);
    long okSeq = ok.getLong("seq");
    assertTrue(okSeq > 0, ok.encode());
    assertTrue(env.watches.get(1).applied() >= okSeq, "applied where it was answered");

    HsmException refused = assertThrows(
        HsmException.class, () -> env.login(2, "alice", "not-the-password-of-alice"));
    assertEquals(ErrorCode.LOGIN_FAILED, refused.code());
    SequenceNote.Read noted = SequenceNote.read(refused.getMessage());
    assertTrue(noted.seq() > okSeq, refused.getMessage());
    assertTrue(env.watches.get(2).applied() >= noted.seq(), "applied where it was refused");
    assertEquals(1, env.tokens.get(2).users().get("alice").orElseThrow().failedLogins(),
        "the failure is counted at the noted sequence");
    assertFalse(noted.message().contains("sequence"), noted.message());

    HsmException unknown = assertThrows(
        HsmException.class, () -> env.login(2, "nobody", "not-the-password-of-anyone"));
    assertEquals(0, SequenceNote.read(unknown.getMessage()).seq(), "an unknown user commits nothing");
  }
}
