package io.hsmbridge.bridge.cluster;

import com.hazelcast.config.Config;
import com.hazelcast.config.JoinConfig;
import com.hazelcast.config.MapConfig;
import com.hazelcast.config.MultiMapConfig;
import com.hazelcast.config.NetworkConfig;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.eventbus.EventBusOptions;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.spi.cluster.hazelcast.HazelcastClusterManager;
import java.util.Set;

/**
 * Builds a clustered Vert.x from a {@link ClusterConfig}: Hazelcast (configured here in code, never from
 * a {@code hazelcast.xml} or {@code cluster.xml} on the class path) carries membership and the event-bus
 * routing table only; event-bus messages travel over direct mutual-TLS links whose only trust anchor is
 * the cluster CA.
 *
 * <p>Hazelcast's own traffic is NOT encrypted or authenticated (open edition), so nothing secret may be
 * put in Hazelcast data structures, and its port belongs on a trusted network. Hazelcast joins only the
 * listed members by TCP-IP: multicast, auto-detection, cloud discovery and phone-home are all off.
 */
public final class ClusterTransport {
  /** TLS 1.3 only: every member runs this code on Java 17+, so there is no older peer to talk to. */
  public static final Set<String> TLS_PROTOCOLS = Set.of("TLSv1.3");
  /** A peer that cannot finish a handshake in this time is treated as unreachable. */
  public static final int CONNECT_TIMEOUT_MS = 5_000;

  private ClusterTransport() {}

  /**
   * Joins the cluster. The future fails with an HsmException (CONFIG_INVALID when the configuration is
   * the cause) if the configuration is disabled or Hazelcast/the event bus cannot start.
   *
   * @param base options for everything that is not clustering (event loops, ...); not modified
   */
  public static Future<Vertx> start(ClusterConfig config, VertxOptions base) {
    if (!config.enabled()) {
      return Future.failedFuture(new HsmException(ErrorCode.CONFIG_INVALID,
          "cluster.enabled is false: nothing to join"));
    }
    VertxOptions options = new VertxOptions(base).setEventBusOptions(eventBusOptions(config));
    HazelcastClusterManager manager = new HazelcastClusterManager(hazelcastConfig(config));
    return Vertx.builder().with(options).withClusterManager(manager).buildClustered()
        .recover(e -> Future.failedFuture(new HsmException(ErrorCode.CONFIG_INVALID,
            "cannot join cluster '" + config.name() + "' as " + config.host() + ":" + config.hazelcastPort()
                + " (members " + String.join(",", config.members()) + "): " + e.getMessage(), null, null, e)));
  }

  /** The Hazelcast member configuration: TCP-IP join to the listed members on one interface. */
  public static Config hazelcastConfig(ClusterConfig c) {
    Config hz = new Config();
    hz.setClusterName(c.name());
    hz.setProperty("hazelcast.phone.home.enabled", "false");
    hz.setProperty("hazelcast.logging.type", "jdk");
    // NodeMain's own shutdown hook closes Vert.x, which leaves the cluster in order.
    hz.setProperty("hazelcast.shutdownhook.enabled", "false");
    hz.setProperty("hazelcast.socket.bind.any", "false");
    hz.setProperty("hazelcast.discovery.enabled", "false");
    hz.setProperty("hazelcast.wait.seconds.before.join", "0");
    // Members that start at the same moment on a busy host (./hsmbridge up starts N agents and a bridge
    // at once on 2 cores) took more than 10 s to agree on a master (measured: "Could not join cluster",
    // the member shut down). A member that sees none of the others starts alone; split clusters that
    // formed while starting merge within seconds instead of Hazelcast's default 5 minutes.
    hz.setProperty("hazelcast.max.join.seconds", "60");
    hz.setProperty("hazelcast.merge.first.run.delay.seconds", "5");
    hz.setProperty("hazelcast.merge.next.run.delay.seconds", "5");
    hz.getJetConfig().setEnabled(false);

    NetworkConfig net = hz.getNetworkConfig();
    net.setPort(c.hazelcastPort()).setPortAutoIncrement(false).setPortCount(1);
    net.getInterfaces().setEnabled(true).addInterface(c.host());
    net.setPublicAddress(hostPort(c.host(), c.hazelcastPort()));
    JoinConfig join = net.getJoin();
    join.getMulticastConfig().setEnabled(false);
    join.getAutoDetectionConfig().setEnabled(false);
    join.getAwsConfig().setEnabled(false);
    join.getGcpConfig().setEnabled(false);
    join.getAzureConfig().setEnabled(false);
    join.getKubernetesConfig().setEnabled(false);
    join.getEurekaConfig().setEnabled(false);
    join.getDiscoveryConfig().getDiscoveryStrategyConfigs().clear();
    join.getTcpIpConfig().setEnabled(true).setConnectionTimeoutSeconds(2).setMembers(c.members());

    // What vertx-hazelcast's default-cluster.xml declares for its own structures.
    hz.addMultiMapConfig(new MultiMapConfig("__vertx.subs").setBackupCount(1)
        .setValueCollectionType(MultiMapConfig.ValueCollectionType.SET));
    hz.addMapConfig(new MapConfig("__vertx.haInfo").setBackupCount(1));
    hz.addMapConfig(new MapConfig("__vertx.nodeInfo").setBackupCount(1));
    return hz;
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

  private static String hostPort(String host, int port) {
    return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
  }
}
