package io.hsmbridge.bridge;

import io.hsmbridge.agent.node.AgentNode;
import io.hsmbridge.agent.node.LogRotation;
import io.hsmbridge.pkcs11.HsmException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.logging.Logger;

/**
 * Entry point of a node process. It composes the process by {@code node.role}: an HSM host
 * ({@code agent}, the default) is the cluster-agent module's {@link AgentNode} (token, membership, Raft
 * peer, catch-up, heartbeats), given this module's front door to start ({@link BridgeNode#frontDoorFor})
 * when {@code frontDoor.enabled} (the default); a front door without a token ({@code bridge}) is
 * {@link BridgeNode}. A one-HSM cluster is an agent whose Raft group has one member: there is no other
 * request path. Once serving, the node writes {@code endpoint.json} to its state directory so launchers
 * know it is ready. SIGTERM stops it cleanly. A fatal start-up error is printed as one line,
 * {@code hsmbridge: <message>}, and the exit code is 2.
 *
 * <p>Usage: {@code java -cp hsmbridge.jar io.hsmbridge.bridge.NodeMain --config node.properties}
 */
public final class NodeMain {
  private static final Logger LOG = Logger.getLogger(NodeMain.class.getName());

  private NodeMain() {}

  /** A node started in this process; {@link #stop()} is idempotent. */
  @FunctionalInterface
  public interface Running {
    void stop();
  }

  public static void main(String[] args) {
    System.setProperty("java.util.logging.SimpleFormatter.format", "%1$tFT%1$tT.%1$tL %4$s %3$s: %5$s%6$s%n");
    Path config = parseArgs(args);
    LogRotation.installFromSystemProperties();
    try {
      Running node = start(NodeConfig.load(config));
      Runtime.getRuntime().addShutdownHook(new Thread(node::stop, "hsmbridge-shutdown"));
    } catch (HsmException e) {
      fatal(e.clientMessage());
    } catch (RuntimeException e) {
      LOG.log(java.util.logging.Level.SEVERE, "start-up failed", e);
      fatal("start-up failed: " + e);
    }
  }

  /**
   * Starts what {@code config} describes in this process and blocks until it serves: what {@link #main}
   * runs, and what in-process tests start.
   *
   * @throws HsmException on any start-up failure (nothing is left running then)
   */
  public static Running start(NodeConfig config) {
    switch (config.role()) {
      case AGENT:
        return AgentNode.start(config.node(), config.node().frontDoor() ? BridgeNode.frontDoorFor(config) : null)::stop;
      case BRIDGE:
        return BridgeNode.start(config)::stop;
      default:
        throw new IllegalStateException("no process for node.role " + config.role());
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
}
