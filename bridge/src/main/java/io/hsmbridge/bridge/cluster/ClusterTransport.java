package io.hsmbridge.bridge.cluster;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.eventbus.EventBusOptions;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.ext.cluster.infinispan.InfinispanClusterManager;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import org.infinispan.configuration.cache.CacheMode;
import org.infinispan.conflict.MergePolicy;
import org.infinispan.configuration.global.GlobalConfigurationBuilder;
import org.infinispan.configuration.parsing.ConfigurationBuilderHolder;
import org.infinispan.manager.DefaultCacheManager;
import org.infinispan.remoting.transport.jgroups.JGroupsTransport;
import org.jgroups.JChannel;
import org.jgroups.PhysicalAddress;
import org.jgroups.protocols.FD_ALL3;
import org.jgroups.protocols.FRAG4;
import org.jgroups.protocols.MERGE3;
import org.jgroups.protocols.MFC;
import org.jgroups.protocols.TCP;
import org.jgroups.protocols.TCPPING;
import org.jgroups.protocols.UFC;
import org.jgroups.protocols.UNICAST3;
import org.jgroups.protocols.VERIFY_SUSPECT;
import org.jgroups.protocols.pbcast.GMS;
import org.jgroups.protocols.pbcast.NAKACK2;
import org.jgroups.protocols.pbcast.STABLE;
import org.jgroups.stack.IpAddress;
import org.jgroups.util.DefaultSocketFactory;
import org.jgroups.util.SocketFactory;

/**
 * Builds a clustered Vert.x from a {@link ClusterConfig}. Two channels, both mutual TLS 1.3 under the
 * cluster CA:
 * <ul>
 *   <li>membership and the routing table: Infinispan (vertx-infinispan) over a JGroups TCP stack whose
 *       every socket is a TLS socket with client authentication required, accepting only member
 *       certificates (kinds agent and front-door, {@link MemberTls}). A process without one cannot complete a handshake, so it cannot join, read the routing table, change it or
 *       ask anyone to leave. Discovery is TCPPING to the listed members only: no multicast, no UDP, no
 *       diagnostics port.</li>
 *   <li>event-bus messages: direct Vert.x TLS links between members (any certificate of the cluster CA;
 *       see {@link #eventBusOptions}).</li>
 * </ul>
 * Everything is configured here in code, never from an {@code infinispan.xml}, {@code jgroups.xml} or
 * {@code cluster.xml} on the class path. Each node re-asserts its own registrations
 * ({@link ReassertingClusterManager}), so a lost routing entry heals.
 */
public final class ClusterTransport {
  /** TLS 1.3 only: every member runs this code on Java 17+, so there is no older peer to talk to. */
  public static final Set<String> TLS_PROTOCOLS = Set.of("TLSv1.3");
  /** A peer that cannot finish a handshake in this time is treated as unreachable. */
  public static final int CONNECT_TIMEOUT_MS = 5_000;
  /** Names of the caches vertx-infinispan expects (as its default-infinispan.xml declares them). */
  static final List<String> VERTX_REPLICATED_CACHES = List.of("__vertx.subs", "__vertx.haInfo", "__vertx.nodeInfo");
  static final String VERTX_DEFAULT_CACHE = "distributed-cache";
  static final String VERTX_MAP_TEMPLATE = "__vertx.distributed.cache.configuration";

  /**
   * A member that hears from nobody for this long is suspected (and checked once more by VERIFY_SUSPECT
   * before it is excluded); split clusters look for each other every {@link #MERGE_MIN_MS}..{@link
   * #MERGE_MAX_MS}.
   */
  static final long FAILURE_TIMEOUT_MS = 10_000;
  static final long HEARTBEAT_MS = 2_000;
  /**
   * How long a write to the routing table waits for a member's answer. Writes are synchronous, so while
   * a SIGKILLed member is still in the view every registration waits for it; Infinispan's default (15 s)
   * held registrations up that long in the cluster scenario test. A write that times out is retried by
   * {@link ReassertingClusterManager}.
   */
  static final long REMOTE_TIMEOUT_MS = 5_000;
  static final long MERGE_MIN_MS = 2_000;
  static final long MERGE_MAX_MS = 5_000;
  /**
   * How long a starting member waits for the listed members' answers before it starts alone (and merges
   * later). With 3 s, two members started one after the other on a busy 2-core host sometimes formed two
   * one-member clusters that merged seconds later (measured in MembershipAttackTest's set-up).
   */
  static final long JOIN_TIMEOUT_MS = 5_000;

  private static final Logger LOG = Logger.getLogger(ClusterTransport.class.getName());
  /** Strong references: java.util.logging forgets the level of a logger nobody holds. */
  private static final List<Logger> QUIETED = new ArrayList<>();

  static {
    // Infinispan logs every cache rebalance at INFO (tens of lines per join); membership changes are
    // logged by MembershipLog instead.
    for (String name : List.of("org.infinispan", "org.jgroups")) {
      Logger l = Logger.getLogger(name);
      l.setLevel(Level.WARNING);
      QUIETED.add(l);
    }
  }

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
    MemberTls tls;
    DefaultCacheManager caches;
    try {
      tls = MemberTls.load(config.tlsCert(), config.tlsKey(), config.tlsCa());
      caches = new DefaultCacheManager(infinispanConfig(config, channel(config, tls)), false);
    } catch (HsmException e) {
      return Future.failedFuture(e);
    } catch (Exception e) {
      return Future.failedFuture(cannotJoin(config, e));
    }
    VertxOptions options = new VertxOptions(base).setEventBusOptions(eventBusOptions(config));
    // vertx-infinispan leaves a cache manager it was given to its owner: started before it joins (its view
    // listener must not see the first view: it fails on it), stopped after it leaves.
    ReassertingClusterManager manager = new ReassertingClusterManager(new InfinispanClusterManager(caches),
        () -> {
          caches.start();
          caches.addListener(new MembershipLog());
        }, caches::stop);
    return Vertx.builder().with(options).withClusterManager(manager).buildClustered()
        .recover(e -> {
          caches.stop();
          return Future.failedFuture(cannotJoin(config, e));
        });
  }

  private static HsmException cannotJoin(ClusterConfig config, Throwable e) {
    return new HsmException(ErrorCode.CONFIG_INVALID, "cannot join cluster '" + config.name() + "' as "
        + config.host() + ":" + config.memberPort() + " (members " + String.join(",", config.members()) + "): "
        + e.getMessage(), null, null, e);
  }

  /** Infinispan: the given channel as transport, and the caches vertx-infinispan uses. */
  static ConfigurationBuilderHolder infinispanConfig(ClusterConfig c, JChannel channel) {
    ConfigurationBuilderHolder holder = new ConfigurationBuilderHolder(ClusterTransport.class.getClassLoader());
    GlobalConfigurationBuilder global = holder.getGlobalConfigurationBuilder();
    global.classLoader(ClusterTransport.class.getClassLoader());
    global.transport().clusterName(c.name()).transport(new JGroupsTransport(channel));
    global.jmx().enabled(false);
    global.defaultCacheName(VERTX_DEFAULT_CACHE);
    holder.newConfigurationBuilder(VERTX_DEFAULT_CACHE).clustering().cacheMode(CacheMode.DIST_SYNC);
    for (String name : VERTX_REPLICATED_CACHES) {
      // When split clusters merge, an entry that only one side has is kept (node infos, registrations of
      // an address only one side used); for an address both sides used one side's set wins, and the
      // losing side's nodes put theirs back (ReassertingClusterManager).
      holder.newConfigurationBuilder(name).clustering().cacheMode(CacheMode.REPL_SYNC)
          .remoteTimeout(REMOTE_TIMEOUT_MS)
          .partitionHandling().mergePolicy(MergePolicy.PREFERRED_NON_NULL);
    }
    holder.newConfigurationBuilder(VERTX_MAP_TEMPLATE).template(true).clustering().cacheMode(CacheMode.DIST_SYNC);
    return holder;
  }

  /**
   * The JGroups stack: TCP whose sockets are all mutual-TLS sockets, TCPPING to the listed members, and
   * the usual reliability, failure-detection and merge protocols (a TCP stack like Infinispan's own,
   * without FD_SOCK2, which would open a second, plaintext port).
   */
  static JChannel channel(ClusterConfig c, MemberTls tls) throws Exception {
    return channel(c, socketFactory(tls));
  }

  /** The stack over any socket factory (tests build a rogue's stack with the rogue's sockets). */
  static JChannel channel(ClusterConfig c, SocketFactory sockets) throws Exception {
    TCP tcp = new TCP();
    tcp.setBindAddress(InetAddress.getByName(c.host()));
    tcp.setBindPort(c.memberPort());
    tcp.setPortRange(0);
    tcp.setSockConnTimeout(CONNECT_TIMEOUT_MS);
    tcp.setSocketFactory(sockets);

    TCPPING ping = new TCPPING();
    ping.setInitialHosts2(initialHosts(c.members()));
    ping.setPortRange(0);

    JChannel channel = new JChannel(tcp, ping,
        new MERGE3().setMinInterval(MERGE_MIN_MS).setMaxInterval(MERGE_MAX_MS),
        new FD_ALL3().setTimeout(FAILURE_TIMEOUT_MS).setInterval(HEARTBEAT_MS),
        new VERIFY_SUSPECT(),
        new NAKACK2().useMcastXmit(false),
        new UNICAST3(),
        new STABLE(),
        new GMS().setJoinTimeout(JOIN_TIMEOUT_MS),
        new UFC(),
        new MFC(),
        new FRAG4());
    // JChannel(Protocol...) turns diagnostics off already; the probe port must never open, so say it here.
    channel.getProtocolStack().getTransport().getDiagnosticsHandler().setEnabled(false);
    return channel;
  }

  /**
   * Every socket the membership opens, accepting or connecting, is TLS 1.3 with this member's certificate
   * and {@link MemberTls#trustManager()}; an accepting socket requires the peer's certificate.
   */
  static SocketFactory socketFactory(MemberTls tls) {
    DefaultSocketFactory f = new DefaultSocketFactory(tls.context());
    String[] protocols = TLS_PROTOCOLS.toArray(String[]::new);
    f.setServerSocketConfigurator(s -> {
      SSLParameters p = ((SSLServerSocket) s).getSSLParameters();
      p.setProtocols(protocols);
      p.setNeedClientAuth(true);
      ((SSLServerSocket) s).setSSLParameters(p);
    });
    f.setSocketConfigurator(s -> {
      if (s instanceof SSLSocket ssl) {
        ssl.setEnabledProtocols(protocols);
      }
    });
    return f;
  }

  /**
   * The listed members as addresses, resolved once. A name that does not resolve yet (a container not
   * started) is skipped: that member finds this one through its own list when it starts.
   */
  static List<PhysicalAddress> initialHosts(List<String> members) {
    List<PhysicalAddress> out = new ArrayList<>();
    for (String m : members) {
      int colon = m.lastIndexOf(':');
      String host = m.substring(0, colon);
      if (host.startsWith("[") && host.endsWith("]")) {
        host = host.substring(1, host.length() - 1);
      }
      try {
        out.add(new IpAddress(InetAddress.getByName(host), Integer.parseInt(m.substring(colon + 1))));
      } catch (UnknownHostException e) {
        LOG.warning("cluster member " + m + " does not resolve (yet); not contacted when joining");
      }
    }
    return out;
  }

  /**
   * Event-bus links: mutual TLS with the member's certificate, the cluster CA as the only trust anchor.
   *
   * <p>Unlike the membership, the event bus cannot check the peer's certificate kind: Vert.x copies
   * these options through JSON into its event-bus server and client, which keeps PEM/JKS/PKCS#12 trust
   * stores but drops a custom trust manager (measured: with {@code TrustOptions.wrap} the handshake fell
   * back to the JDK's default trust store and failed). Any certificate of the cluster CA, a CLIENT one
   * included, completes an event-bus handshake; see docs/cluster-transport.md.
   */
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
