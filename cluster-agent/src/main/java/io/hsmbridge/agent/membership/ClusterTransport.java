package io.hsmbridge.agent.membership;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.eventbus.EventBusOptions;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import java.util.Set;

/**
 * Builds a clustered Vert.x from a {@link ClusterConfig}: the membership and the event-bus routing table
 * travel between the members themselves over mutual TLS ({@link CertifiedClusterManager}, on
 * {@code cluster.memberPort}); event-bus messages travel over direct mutual-TLS links. Both trust the
 * cluster CA only; the membership accepts only agent, front-door and application certificates of it. The event-bus
 * port is {@link EventBusGuard}'s, which limits the frames a member may send before Vert.x buffers them.
 */
public final class ClusterTransport {
  /** TLS 1.3 only: every member runs this code on Java 17+, so there is no older peer to talk to. */
  public static final Set<String> TLS_PROTOCOLS = Set.of("TLSv1.3");
  /** A peer that cannot finish a handshake in this time is treated as unreachable. */
  public static final int CONNECT_TIMEOUT_MS = 5_000;

  private ClusterTransport() {}

  /**
   * Joins the cluster. The future fails with an HsmException (CONFIG_INVALID when the configuration is
   * the cause) if the configuration is disabled or the membership/the event bus cannot start.
   *
   * @param base options for everything that is not clustering (event loops, ...); not modified
   */
  public static Future<Vertx> start(ClusterConfig config, VertxOptions base) {
    if (!config.enabled()) {
      return Future.failedFuture(new HsmException(ErrorCode.CONFIG_INVALID,
          "cluster.enabled is false: nothing to join"));
    }
    EventBusOptions eventBus = eventBusOptions(config);
    CertifiedClusterManager manager;
    EventBusGuard.Ports ports;
    try {
      manager = clusterManager(config);
      ports = EventBusGuard.ports(config.host(), config.eventBusPort());
    } catch (HsmException e) {
      return Future.failedFuture(e);
    }
    VertxOptions options = new VertxOptions(base)
        .setEventBusOptions(EventBusGuard.internalOptions(eventBus, ports.guard, ports.internal));
    return Vertx.builder().with(options).withClusterManager(manager).buildClustered()
        .onComplete(ar -> ports.handOver()) // to the guard, next: see EventBusGuard.ports
        .recover(e -> Future.failedFuture(new HsmException(ErrorCode.CONFIG_INVALID,
            "cannot join cluster '" + config.name() + "' as " + config.host() + ":" + config.memberPort()
                + " (members " + String.join(",", config.members()) + "): " + e.getMessage(), null, null, e)))
        // Before this member registers any handler, so before anyone sends to it: see EventBusGuard.ports.
        .compose(vertx -> EventBusGuard.listen(vertx, eventBus, config.host(), ports.guard)
            .map(vertx)
            .recover(e -> closeAndFail(vertx, e)));
  }

  /**
   * Fails the start with {@code e} at once and closes the half-built member in the background. Not after its
   * close: a continuation of a future of that Vert.x runs on its event loop, which the close stops, so it never
   * ran, and a member whose guard could not listen never failed its start (the caller gave up after 60 s). The
   * returned future belongs to no context.
   */
  private static Future<Vertx> closeAndFail(Vertx vertx, Throwable e) {
    Promise<Vertx> failed = Promise.promise();
    failed.fail(e);
    vertx.close();
    return failed.future();
  }

  /** The membership of a member configured with {@code c}. */
  public static CertifiedClusterManager clusterManager(ClusterConfig c) {
    return new CertifiedClusterManager(c.name(), c.host(), c.memberPort(), c.members(), MembershipTls.context(c));
  }
  /** Event-bus links: mutual TLS with the member's certificate, the cluster CA as the only trust anchor. */
  public static EventBusOptions eventBusOptions(ClusterConfig c) {
    return new EventBusOptions()
        .setHost(c.host())
        .setPort(c.eventBusPort())
        .setClusterPublicHost(c.host())
        .setSsl(true)
        .setEnabledSecureTransportProtocols(TLS_PROTOCOLS)
        .setKeyCertOptions(new PemKeyCertOptions()
            .setCertPath(c.tlsCert().toString())
            .setKeyPath(c.tlsKey().toString()))
        .setTrustOptions(new PemTrustOptions().addCertPath(c.tlsCa().toString()))
        .setTrustAll(false)
        .setClientAuth(ClientAuth.REQUIRED)
        .setConnectTimeout(CONNECT_TIMEOUT_MS);
  }
}
