package io.hsmbridge.bridge;

import io.hsmbridge.bridge.endpoint.EndpointSettings;
import io.hsmbridge.bridge.routing.ClusterBridgeVerticle;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * A bridge process ({@code node.role=bridge}): joins the cluster, routes client requests to the HSMs'
 * agents ({@link ClusterBridgeVerticle}) and opens the TCP event-bus bridge for clients. Holds no token.
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
      NodeMain.Node.deleteEndpoint(config.stateDir());
    }
    Vertx vertx = NodeMain.Node.startVertx(config);
    try {
      int port = config.tcpPort() == 0 ? NodeMain.Node.freePort(config.tcpHost()) : config.tcpPort();
      EndpointSettings endpoint = config.endpoint().withPort(port);
      int plainPort = endpoint.loopbackPlaintextPort() == 0 ? NodeMain.Node.freePort("127.0.0.1")
          : endpoint.loopbackPlaintextPort();
      vertx.deployVerticle(new ClusterBridgeVerticle(config.routing(), config.agentTimeoutMs()))
          .compose(id -> TcpBridge.start(vertx, endpoint))
          .compose(e -> plainPort < 0 ? io.vertx.core.Future.succeededFuture()
              : TcpBridge.start(vertx, endpoint.loopbackPlaintext(plainPort)))
          .toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
      BridgeNode node = new BridgeNode(config, vertx, port);
      JsonObject written = new JsonObject().put("role", "bridge").put("host", config.tcpHost())
          .put("port", port).put("tls", endpoint.tlsEnabled()).put("pid", ProcessHandle.current().pid());
      if (plainPort >= 0) {
        written.put("loopbackPlaintextPort", plainPort);
        LOG.warning("a plaintext client endpoint also listens on 127.0.0.1:" + plainPort
            + " (bridge.tcp.loopbackPlaintextPort): anyone on this host can reach it without TLS");
      }
      NodeMain.Node.writeEndpoint(config, written);
      LOG.info("hsmbridge bridge serving clients on " + config.tcpHost() + ":" + port
          + NodeMain.Node.describe(endpoint) + ", durability " + config.routing().durability());
      return node;
    } catch (Exception e) {
      vertx.close();
      Throwable cause = e.getCause() != null ? e.getCause() : e;
      throw new HsmException(ErrorCode.INTERNAL,
          "cannot start the bridge on " + config.tcpHost() + ":" + config.tcpPort() + ": " + cause.getMessage());
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
      NodeMain.Node.deleteEndpoint(config.stateDir());
    }
    NodeMain.Node.closeVertx(vertx);
  }
}
