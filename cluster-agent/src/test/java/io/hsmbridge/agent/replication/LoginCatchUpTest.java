package io.hsmbridge.agent.replication;

import static org.junit.jupiter.api.Assertions.*;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A user created through one HSM logs in at once through another that has not applied the creation yet
 * (a commit needs a majority, not every HSM): the login waits for that HSM to catch up with the log's
 * leader instead of answering LOGIN_FAILED (seen in CI). Real tokens, real Raft; a follower's applies are
 * held for a moment, as a busy or slow HSM's are.
 */
class LoginCatchUpTest {
  private static final String ADMIN_PASSWORD = "admin-password-" + UUID.randomUUID();
  private static final String CU_PASSWORD = "crypto-user-pw-" + UUID.randomUUID();

  @TempDir
  Path dir;
  private TestAgents env;

  @AfterEach
  void close() {
    if (env != null) {
      env.close();
    }
  }

  @Test
  @Timeout(120)
  void aLoginAtAnHsmBehindTheUsersCreationWaitsForItInsteadOfFailing() throws Exception {
    env = TestAgents.start(dir, "login-catch-up");
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
}
