package io.hsmbridge.bridge.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.json.JsonObject;
import io.vertx.core.spi.cluster.ClusterManager;
import io.vertx.core.spi.cluster.RegistrationInfo;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A routing entry lost from the cluster heals: a legitimate member (the worst a rogue could now be is a
 * compromised member) removes an agent's registration, the front door's requests to it stop being
 * routed, and within {@link #HEAL_BOUND_MS} the agent has put its registration back and is served again.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RegistrationHealingTest {
  /** Two check periods plus propagation and a busy host's slack. */
  static final long HEAL_BOUND_MS = 2 * ReassertingClusterManager.PERIOD_MS + 6_000;
  private static final String AGENT_ADDRESS = "heal.agent.hsm1";

  @TempDir Path tmp;
  private final List<Vertx> started = new ArrayList<>();

  @AfterEach
  void closeAll() {
    for (Vertx v : started) {
      try {
        v.close().toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
      } catch (Exception e) {
        System.err.println("vert.x did not close cleanly: " + e);
      }
    }
  }

  @Test
  void aRemovedRegistrationIsPutBackAndRoutedAgain() throws Exception {
    ClusterCa ca = ClusterCa.create(tmp.resolve("ca"), "heal");
    int portAgent = freePort();
    int portFront = freePort();
    String members = "127.0.0.1:" + portAgent + ",127.0.0.1:" + portFront;
    Vertx agent = join(member(ca, "agent", ClusterCa.MemberKind.AGENT, portAgent, members));
    Vertx front = join(member(ca, "front", ClusterCa.MemberKind.FRONT_DOOR, portFront, members));
    agent.eventBus().<JsonObject>consumer(AGENT_ADDRESS, m -> m.reply(new JsonObject().put("servedBy", "hsm1")))
        .completion().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    awaitServed(front, 60_000);
    long reassertedBefore = ((ReassertingClusterManager) manager(agent)).reassertedCount();

    // The front door, a legitimate member, removes the agent's registration from the shared table.
    List<RegistrationInfo> regs = registrations(front, AGENT_ADDRESS);
    assertEquals(1, regs.size(), String.valueOf(regs));
    Promise<Void> removed = Promise.promise();
    front.runOnContext(v -> manager(front).removeRegistration(AGENT_ADDRESS, regs.get(0), removed));
    removed.future().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    long removedAt = System.nanoTime();
    // It is gone, cluster-wide: the check below is able to fail.
    // (A synchronous replicated write: gone everywhere when it returns; the next check is up to 2 s away.)
    assertTrue(registrations(front, AGENT_ADDRESS).isEmpty(), "the removal must have taken effect");

    long deadline = removedAt + TimeUnit.MILLISECONDS.toNanos(HEAL_BOUND_MS);
    while (!registrations(front, AGENT_ADDRESS).equals(regs)) {
      if (System.nanoTime() > deadline) {
        fail("the registration was not put back within " + HEAL_BOUND_MS + " ms");
      }
      Thread.sleep(50);
    }
    assertTrue(reassertedCount(agent) > reassertedBefore, "the agent put it back");
    awaitServed(front, Math.max(1_000, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
    long healedMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - removedAt);
    System.err.println("registration removed by a member was put back and routed again after " + healedMs
        + " ms (bound " + HEAL_BOUND_MS + " ms)");
  }

  private static long reassertedCount(Vertx v) {
    return ((ReassertingClusterManager) manager(v)).reassertedCount();
  }

  /** Waits until a request from {@code from} is answered by the agent; fails after {@code boundMs}. */
  private static void awaitServed(Vertx from, long boundMs) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(boundMs);
    String last = "nothing tried";
    while (System.nanoTime() < deadline) {
      try {
        JsonObject r = from.eventBus().<JsonObject>request(AGENT_ADDRESS, new JsonObject(),
                new DeliveryOptions().setSendTimeout(1_000))
            .toCompletionStage().toCompletableFuture().get(3, TimeUnit.SECONDS).body();
        if ("hsm1".equals(r.getString("servedBy"))) {
          return;
        }
      } catch (ExecutionException e) {
        last = e.getCause() instanceof ReplyException re && re.failureType() == ReplyFailure.NO_HANDLERS
            ? "NO_HANDLERS" : String.valueOf(e.getCause());
      } catch (java.util.concurrent.TimeoutException e) {
        last = "no answer in 3 s";
      }
      Thread.sleep(100);
    }
    fail("the agent was not served within " + boundMs + " ms (last: " + last + ")");
  }

  private Vertx join(ClusterConfig config) throws Exception {
    Vertx v = ClusterTransport.start(config, new VertxOptions().setEventLoopPoolSize(1))
        .toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
    started.add(v);
    return v;
  }

  private ClusterConfig member(ClusterCa ca, String name, ClusterCa.MemberKind kind, int port, String members) {
    ClusterCa.MemberFiles files = ca.issueMember(name, kind, List.of("127.0.0.1"), tmp.resolve("m-" + name));
    Properties p = new Properties();
    p.setProperty("cluster.enabled", "true");
    p.setProperty("cluster.name", "heal");
    p.setProperty("cluster.memberPort", Integer.toString(port));
    p.setProperty("cluster.members", members);
    p.setProperty("cluster.tls.cert", files.certificate().toString());
    p.setProperty("cluster.tls.key", files.key().toString());
    p.setProperty("cluster.tls.ca", files.ca().toString());
    return ClusterConfig.from(p);
  }

  private static ClusterManager manager(Vertx v) {
    return ((VertxInternal) v).clusterManager();
  }

  private static List<RegistrationInfo> registrations(Vertx v, String address) throws Exception {
    return MembershipAttackTest.registrations(v, address);
  }

  private static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }
}
