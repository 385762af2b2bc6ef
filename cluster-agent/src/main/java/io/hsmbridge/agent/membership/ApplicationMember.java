package io.hsmbridge.agent.membership;

import io.hsmbridge.agent.AgentConfig;
import io.hsmbridge.pkcs11.HsmException;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.internal.VertxInternal;
import java.nio.file.Path;
import java.util.Properties;

/**
 * A Vert.x application that joins the cluster's event bus as a member, to use the typed client there ({@code
 * HsmClient.options().eventBus(vertx)}; docs/java.md, "On the cluster's event bus"). It joins as every member
 * does: the {@code cluster.*} keys of docs/cluster-transport.md, with a certificate of the cluster CA of kind
 * front-door ({@code hsmbridge cluster member-cert}). A member is trusted as a front door is (security.md): give
 * such a certificate only to an application you would let run a front door; others connect over TCP.
 */
public final class ApplicationMember {
  private ApplicationMember() {}

  /**
   * Joins the cluster with the {@code cluster.*} keys of {@code file} ({@code cluster.enabled=true} is implied).
   *
   * <p>It completes once the membership has shown this member a front door's request address (or after {@value
   * #FRONT_DOOR_WAIT_MS} ms without one: a cluster whose front doors are not up yet), so that the first request
   * does not meet an empty routing table.
   *
   * @param base options for everything that is not clustering (event loops, ...)
   * @return the clustered Vert.x; the future fails with an {@link HsmException} (CONFIG_INVALID) naming the
   *     key or the members that could not be reached
   */
  public static Future<Vertx> join(Path file, VertxOptions base) {
    try {
      Properties p = AgentConfig.readProperties(file);
      p.setProperty("cluster.enabled", "true");
      return ClusterTransport.start(ClusterConfig.from(p), base).compose(ApplicationMember::awaitFrontDoor);
    } catch (HsmException e) {
      return Future.failedFuture(e);
    }
  }

  /** How long {@link #join} waits for the first front door to appear in the routing table. */
  static final long FRONT_DOOR_WAIT_MS = 10_000;

  private static Future<Vertx> awaitFrontDoor(Vertx vertx) {
    CertifiedClusterManager membership = (CertifiedClusterManager) ((VertxInternal) vertx).clusterManager();
    io.vertx.core.Promise<Vertx> ready = io.vertx.core.Promise.promise();
    long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.MILLISECONDS.toNanos(FRONT_DOOR_WAIT_MS);
    vertx.setPeriodic(0, 100, timer -> {
      boolean routed = !membership.registrationsOf(io.hsmbridge.protocol.Addresses.CLIENT_REQUEST).isEmpty();
      if (routed || System.nanoTime() > deadline) {
        vertx.cancelTimer(timer);
        ready.tryComplete(vertx);
      }
    });
    return ready.future();
  }

  /**
   * Runs {@code action} (on the membership's own thread: keep it short) each time a front door leaves the
   * cluster (a member that consumed the front doors' request address), e.g. the typed client's {@code
   * memberLeft} hook, so requests in flight to a dead front door are sent again at once.
   *
   * @return removes the listener
   * @throws IllegalArgumentException when {@code vertx} did not join through {@link #join}
   */
  public static Runnable onMemberLeft(Vertx vertx, Runnable action) {
    if (!(vertx instanceof VertxInternal vi) || !(vi.clusterManager() instanceof CertifiedClusterManager membership)) {
      throw new IllegalArgumentException("this Vert.x is not a member of an hsmbridge cluster (join it with ApplicationMember.join)");
    }
    return membership.onMemberLeft(addresses -> {
      if (addresses.contains(io.hsmbridge.protocol.Addresses.CLIENT_REQUEST)) {
        action.run();
      }
    });
  }
}
