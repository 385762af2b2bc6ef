package io.hsmbridge.agent.membership;

import static org.junit.jupiter.api.Assertions.fail;

import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.spi.cluster.RegistrationInfo;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * Real clustered Vert.x members on loopback for the attack tests: certificates of one cluster CA, each member
 * started through {@link ClusterTransport} (membership, event-bus guard), all closed by {@link #close}.
 */
public final class TestMembers implements AutoCloseable {
  private final ClusterCa ca;
  private final String cluster;
  private final Path dir;
  private final List<Vertx> started = new ArrayList<>();

  public TestMembers(Path dir, String cluster) {
    this.ca = ClusterCa.create(dir.resolve("ca"), cluster);
    this.cluster = cluster;
    this.dir = dir;
  }

  public ClusterCa ca() {
    return ca;
  }

  /** The configuration of a member {@code name} of {@code kind}, listening on {@code port}, joining {@code members}. */
  public ClusterConfig config(String name, ClusterCa.MemberKind kind, int port, String members) {
    return memberConfig(ca, cluster, name, kind, port, members, dir.resolve("m-" + name));
  }

  /** As {@link #config}, with a certificate of {@code ca} written to {@code certDir}: for tests with several CAs. */
  public static ClusterConfig memberConfig(ClusterCa ca, String cluster, String name, ClusterCa.MemberKind kind, int port,
      String members, Path certDir) {
    ClusterCa.MemberFiles files = ca.issueMember(name, kind, List.of("127.0.0.1", "localhost"), certDir);
    Properties p = new Properties();
    p.setProperty("cluster.enabled", "true");
    p.setProperty("cluster.name", cluster);
    p.setProperty("cluster.memberPort", Integer.toString(port));
    p.setProperty("cluster.members", members);
    p.setProperty("cluster.tls.cert", files.certificate().toString());
    p.setProperty("cluster.tls.key", files.key().toString());
    p.setProperty("cluster.tls.ca", files.ca().toString());
    return ClusterConfig.from(p);
  }

  public Vertx join(ClusterConfig config) throws Exception {
    Vertx v = ClusterTransport.start(config, new VertxOptions().setEventLoopPoolSize(1))
        .toCompletionStage().toCompletableFuture().get(45, TimeUnit.SECONDS);
    started.add(v);
    return v;
  }

  public Vertx join(String name, ClusterCa.MemberKind kind, int port, String members) throws Exception {
    return join(config(name, kind, port, members));
  }

  @Override
  public void close() {
    closeAll(started);
  }

  /** Closes every member in {@code started} (20 s each at most) and empties the list. */
  public static void closeAll(List<Vertx> started) {
    for (Vertx v : started) {
      try {
        v.close().toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
      } catch (Exception e) {
        System.err.println("vert.x did not close cleanly: " + e);
      }
    }
    started.clear();
  }

  public static int nodes(Vertx v) {
    return ((VertxInternal) v).clusterManager().getNodes().size();
  }

  /** Who consumes {@code address}, in {@code v}'s view of the cluster. */
  public static List<RegistrationInfo> routes(Vertx v, String address) {
    Promise<List<RegistrationInfo>> p = Promise.promise();
    ((VertxInternal) v).clusterManager().getRegistrations(address, p);
    try {
      return p.future().toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  public static void awaitTrue(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("not within 20 s: " + what);
      }
      Thread.sleep(50);
    }
  }
}
