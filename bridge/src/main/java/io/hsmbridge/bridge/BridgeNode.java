package io.hsmbridge.bridge;

import io.hsmbridge.agent.node.FrontDoorEndpoint;
import io.hsmbridge.agent.node.FrontDoorStarter;
import io.hsmbridge.agent.node.NodeProcess;
import io.hsmbridge.agent.node.NodeRole;
import io.hsmbridge.bridge.endpoint.EndpointSettings;
import io.hsmbridge.bridge.routing.ClusterBridgeVerticle;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * The cluster front door's process side. A bridge process ({@code node.role=bridge}) joins the cluster,
 * routes client requests to the HSMs' agents ({@link ClusterBridgeVerticle}) and opens the client
 * endpoint; it holds no token. An HSM host's front door ({@link #frontDoorFor}) is the same code, started
 * by its agent process.
 */
public final class BridgeNode {
  private static final Logger LOG = Logger.getLogger(BridgeNode.class.getName());

  private final NodeConfig config;
  private final Vertx vertx;
  private final int port;
  private boolean stopped;

  private BridgeNode(NodeConfig config, Vertx vertx, int port) {
    this.config = config;
    this.vertx = vertx;
    this.port = port;
  }

  public static BridgeNode start(NodeConfig config) {
    if (config.stateDir() != null) {
      NodeProcess.deleteEndpoint(config.stateDir());
    }
    Vertx vertx = NodeProcess.startVertx(config.node());
    try {
      FrontDoorEndpoint endpoint = serveClients(vertx, config);
      JsonObject written = endpoint.toJson().put("role", "bridge").put("pid", ProcessHandle.current().pid());
      BridgeNode node = new BridgeNode(config, vertx, endpoint.port());
      NodeProcess.writeEndpoint(config.stateDir(), written);
      return node;
    } catch (Exception e) {
      vertx.close();
      Throwable cause = e.getCause() != null ? e.getCause() : e;
      throw new HsmException(ErrorCode.INTERNAL,
          "cannot start the bridge on " + config.tcpHost() + ":" + config.tcpPort() + ": " + cause.getMessage());
    }
  }

  /**
   * The front door of an HSM host ({@code node.role=agent} with {@code frontDoor.enabled}), for the
   * cluster-agent module's {@code AgentNode} to start once its HSM serves ({@link #serveClients}). A
   * failure is one HsmException naming where it could not listen.
   */
  static FrontDoorStarter frontDoorFor(NodeConfig config) {
    return vertx -> {
      try {
        return serveClients(vertx, config);
      } catch (Exception e) {
        Throwable cause = e.getCause() != null ? e.getCause() : e;
        throw new HsmException(ErrorCode.INTERNAL, "cannot serve clients on " + config.tcpHost() + ":"
            + config.tcpPort() + ": " + cause.getMessage());
      }
    };
  }

  /**
   * Serves clients in this process: the front door ({@link ClusterBridgeVerticle}: sessions, routing,
   * durability) and its client endpoint, as a bridge does and as an HSM host with {@code frontDoor.enabled}
   * does. Blocks until both listen (at most 60 s).
   *
   * @return what endpoint.json says of the endpoint: host, port, tls (and a loopback plaintext port)
   */
  static FrontDoorEndpoint serveClients(Vertx vertx, NodeConfig config) throws Exception {
    // On an HSM host, its own HSM serves first (the request stays in the process).
    String localHsm = config.role() == NodeRole.AGENT ? config.agent().hsmId() : null;
    vertx.deployVerticle(new ClusterBridgeVerticle(config.routing(), config.agentTimeoutMs(), localHsm))
        .toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
    int port = listen(vertx, config.tcpHost(), config.tcpPort(), config.endpoint()::withPort);
    EndpointSettings endpoint = config.endpoint().withPort(port);
    int plainPort = endpoint.loopbackPlaintextPort() < 0 ? -1
        : listen(vertx, "127.0.0.1", endpoint.loopbackPlaintextPort(), endpoint::loopbackPlaintext);
    FrontDoorEndpoint written = new FrontDoorEndpoint(config.tcpHost(), port, endpoint.tlsEnabled(), plainPort);
    if (plainPort >= 0) {
      LOG.warning("a plaintext client endpoint also listens on 127.0.0.1:" + plainPort
          + " (bridge.tcp.loopbackPlaintextPort): anyone on this host can reach it without TLS");
    }
    LOG.info("hsmbridge front door serving clients on " + config.tcpHost() + ":" + port
        + describe(endpoint) + ", durability " + config.routing().durability());
    return written;
  }

  /**
   * Starts an endpoint on {@code port}, or on a free port when it is 0: a port found free can be taken by
   * another socket before the endpoint binds it (an outbound connection's ephemeral port: seen once while
   * the members of a starting cluster dialled each other), so a free port is looked for again, 5 times.
   *
   * @return the port it listens on
   */
  private static int listen(Vertx vertx, String host, int port,
      java.util.function.IntFunction<EndpointSettings> settingsFor) throws Exception {
    for (int attempt = 1; ; attempt++) {
      int p = port == 0 ? freePort(host) : port;
      try {
        TcpBridge.start(vertx, settingsFor.apply(p)).toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
        return p;
      } catch (java.util.concurrent.ExecutionException e) {
        boolean taken = e.getCause() instanceof java.net.BindException
            || String.valueOf(e.getCause().getMessage()).contains("Address already in use");
        if (port != 0 || !taken || attempt >= 5) {
          throw e;
        }
        LOG.info("port " + p + " was taken before the endpoint bound it; trying another");
      }
    }
  }

  /** How the client endpoint runs, for the start-up line: TLS or not, and its limits. */
  private static String describe(EndpointSettings e) {
    return (e.tlsEnabled() ? " (TLS 1.3" + (e.tls().requireClientCert() ? ", client certificates required" : "") + ")"
        : " (plaintext, loopback only)") + ", max frame " + e.maxFrameBytes() + " bytes, max connections "
        + e.maxConnections() + " (" + e.maxConnectionsPerAddress() + " per address)";
  }

  private static int freePort(String host) throws java.io.IOException {
    try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName(host))) {
      return s.getLocalPort();
    }
  }

  public int port() {
    return port;
  }

  public synchronized void stop() {
    if (stopped) {
      return;
    }
    stopped = true;
    if (config.stateDir() != null) {
      NodeProcess.deleteEndpoint(config.stateDir());
    }
    NodeProcess.closeVertx(vertx);
  }
}
