package io.hsmbridge.agent.replication;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonObject;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A front door that has not held a session asks an agent to verify it ({@code agent.verifySession}) before it
 * admits anything. A logout acknowledged through another front door is applied by a majority, perhaps not by
 * the HSM asked: that HSM must catch up with the leader before it answers, or it vouches for a session that
 * is over. Real tokens, a real 3-peer Raft group and the real agents (TestAgents); the lagging HSM is made
 * to lag by holding its applier.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class SessionAdoptionTest extends AgentClusterTest {

  @Test
  void aLaggingHsmAskedToVerifyASessionCountsALogoutAcknowledgedElsewhere() throws Exception {
    start("adopt");
    JsonObject admin = env.activate("adoption-admin-password-1");
    JsonObject alice = env.cryptoUser(admin, "alice", "adoption-user-password-1", 0);
    JsonObject verify = new JsonObject().put("op", "agent.verifySession");
    int leader = env.cluster.leader();
    int lagging = (leader + 1) % 3;
    int other = (leader + 2) % 3;
    assertEquals(true, env.callWithoutWaiting(lagging, alice, verify).getBoolean("valid"));

    CountDownLatch held = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    Thread holder = new Thread(() -> env.appliers.get(lagging).atOneIndex(() -> {
      held.countDown();
      try {
        release.await(60, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return null;
    }));
    holder.start();
    assertTrue(held.await(10, TimeUnit.SECONDS));
    try {
      // Acknowledged by the leader and the other HSM; the lagging one has not applied it.
      env.callWithoutWaiting(other, alice, new JsonObject().put("op", "auth.logout"));
      Thread releaser = new Thread(() -> {
        try {
          Thread.sleep(1_500);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        release.countDown();
      });
      releaser.start();
      long t0 = System.nanoTime();
      HsmException e = assertThrows(HsmException.class, () -> env.callWithoutWaiting(lagging, alice, verify),
          "the lagging HSM vouched for a session logged out through another");
      assertEquals(ErrorCode.NOT_AUTHENTICATED, e.code(), e.getMessage());
      assertTrue(e.getMessage().contains("logged out"), e.getMessage());
      assertTrue(System.nanoTime() - t0 >= TimeUnit.MILLISECONDS.toNanos(1_000), "it waited for its applier");
    } finally {
      release.countDown();
      holder.join(60_000);
    }
  }
}
