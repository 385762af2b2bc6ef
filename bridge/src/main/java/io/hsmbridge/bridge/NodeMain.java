package io.hsmbridge.bridge;

import io.hsmbridge.agent.AgentVerticle;
import io.hsmbridge.agent.node.AgentNode;
import io.hsmbridge.agent.node.LogRotation;
import io.hsmbridge.agent.node.NodeProcess;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * Entry point of a node process: opens the HSM (integrity scan, profile probe, handle cache), deploys
 * the agent and the bridge, opens the TCP bridge, then writes {@code endpoint.json} to the state
 * directory so launchers know it is ready. SIGTERM stops it cleanly. A fatal start-up error is printed
 * as one line, {@code hsmbridge: <message>}, and the exit code is 2.
 *
 * <p>It composes the processes by {@code node.role}: an agent process is the cluster-agent module's
 * {@link AgentNode}, given this module's front door to start ({@link BridgeNode#frontDoorFor}) when
 * {@code frontDoor.enabled}; a bridge process is {@link BridgeNode}; {@code all} is {@link Node}.
 *
 * <p>Usage: {@code java -cp hsmbridge.jar io.hsmbridge.bridge.NodeMain --config node.properties}
 */
public final class NodeMain {
  private static final Logger LOG = Logger.getLogger(NodeMain.class.getName());

  private NodeMain() {}

  public static void main(String[] args) {
    System.setProperty("java.util.logging.SimpleFormatter.format", "%1$tFT%1$tT.%1$tL %4$s %3$s: %5$s%6$s%n");
    Path config = parseArgs(args);
    LogRotation.installFromSystemProperties();
    try {
      NodeConfig loaded = NodeConfig.load(config);
      Runnable stop;
      switch (loaded.role()) {
        case AGENT:
          stop = AgentNode.start(loaded.node(), loaded.node().frontDoor() ? BridgeNode.frontDoorFor(loaded) : null)::stop;
          break;
        case BRIDGE:
          stop = BridgeNode.start(loaded)::stop;
          break;
        default:
          stop = Node.start(loaded)::stop;
          break;
      }
      Runtime.getRuntime().addShutdownHook(new Thread(stop, "hsmbridge-shutdown"));
    } catch (HsmException e) {
      fatal(e.clientMessage());
    } catch (RuntimeException e) {
      LOG.log(java.util.logging.Level.SEVERE, "start-up failed", e);
      fatal("start-up failed: " + e);
    }
  }

  private static Path parseArgs(String[] args) {
    if (args.length == 2 && args[0].equals("--config")) {
      return Paths.get(args[1]);
    }
    fatal("usage: NodeMain --config <node.properties>");
    return null;
  }

  private static void fatal(String message) {
    System.err.println("hsmbridge: " + message);
    System.err.flush();
    System.exit(2);
  }

  /** A running node; {@link #stop()} is idempotent. */
  public static final class Node {
    private final NodeConfig config;
    private final HsmToken hsm;
    private final Vertx vertx;
    private final int port;
    private boolean stopped;

    private Node(NodeConfig config, HsmToken hsm, Vertx vertx, int port) {
      this.config = config;
      this.hsm = hsm;
      this.vertx = vertx;
      this.port = port;
    }

    /** Starts everything and blocks until it is serving; throws HsmException on any failure. */
    public static Node start(NodeConfig config) {
      if (config.stateDir() != null) {
        NodeProcess.deleteEndpoint(config.stateDir());
      }
      HsmToken hsm = NodeProcess.openToken(config.agent().token());
      Vertx vertx;
      try {
        vertx = NodeProcess.startVertx(config.node());
      } catch (RuntimeException e) {
        hsm.close();
        throw e;
      }
      try {
        int port = config.tcpPort() == 0 ? freePort(config.tcpHost()) : config.tcpPort();
        String hsmId = config.agent().hsmId();
        vertx.deployVerticle(new AgentVerticle(hsmId, hsm, config.workerSpinMicros(), config.workerThreads()))
            .compose(id -> vertx.deployVerticle(new BridgeVerticle(hsmId, config.agentTimeoutMs())))
            .compose(id -> TcpBridge.start(vertx, config.endpoint().withPort(port)))
            .toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
        Node node = new Node(config, hsm, vertx, port);
        node.writeEndpoint();
        LOG.info("hsmbridge node " + hsmId + " serving token '" + hsm.label() + "' on " + config.tcpHost() + ":" + port
            + describe(config.endpoint()));
        return node;
      } catch (Exception e) {
        vertx.close();
        hsm.close();
        Throwable cause = e.getCause() != null ? e.getCause() : e;
        if (cause instanceof HsmException) {
          throw (HsmException) cause;
        }
        throw new HsmException(io.hsmbridge.protocol.ErrorCode.INTERNAL,
            "cannot start serving on " + config.tcpHost() + ":" + config.tcpPort() + ": " + cause.getMessage());
      }
    }

    public int port() {
      return port;
    }

    public Vertx vertx() {
      return vertx;
    }

    public HsmToken hsm() {
      return hsm;
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
      hsm.close();
    }

    private void writeEndpoint() {
      NodeProcess.writeEndpoint(config.stateDir(), new JsonObject()
          .put("role", "all")
          .put("host", config.tcpHost())
          .put("port", port)
          .put("tls", config.endpoint().tlsEnabled())
          .put("pid", ProcessHandle.current().pid())
          .put("hsmId", config.agent().hsmId()));
    }

    /** How the client endpoint runs, for the start-up line: TLS or not, and its limits. */
    static String describe(io.hsmbridge.bridge.endpoint.EndpointSettings e) {
      return (e.tlsEnabled() ? " (TLS 1.3" + (e.tls().requireClientCert() ? ", client certificates required" : "") + ")"
          : " (plaintext, loopback only)") + ", max frame " + e.maxFrameBytes() + " bytes, max connections "
          + e.maxConnections() + " (" + e.maxConnectionsPerAddress() + " per address)";
    }

    static int freePort(String host) throws IOException {
      try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getByName(host))) {
        return s.getLocalPort();
      }
    }
  }
}
