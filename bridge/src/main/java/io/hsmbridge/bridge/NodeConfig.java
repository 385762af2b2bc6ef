package io.hsmbridge.bridge;

import io.hsmbridge.agent.AgentConfig;
import io.hsmbridge.agent.membership.ClusterConfig;
import io.hsmbridge.agent.node.NodeRole;
import io.hsmbridge.agent.node.NodeSettings;
import io.hsmbridge.agent.node.RaftSettings;
import io.hsmbridge.bridge.endpoint.EndpointSettings;
import java.nio.file.Path;
import java.util.Properties;

/**
 * A node process, from one properties file: an HSM host (its agent and, by default, its front door) or a
 * front door without a token. The agent
 * side ({@link NodeSettings}: role, token, state dir, threads, cluster, Raft) is read in the cluster-agent
 * module; this record adds what the front door needs. The accessors of the agent side are repeated here.
 *
 * @param node the agent side of the configuration
 * @param tcpHost where the TCP event-bus bridge listens (loopback by default)
 * @param tcpPort its port; 0 picks a free one (reported in endpoint.json)
 * @param agentTimeoutMs how long the front door waits for an agent
 * @param routing the front door's routing settings (role bridge, or an agent with {@code frontDoor.enabled},
 *     else null)
 * @param endpoint the client endpoint (TLS, limits; role bridge, and an agent with {@code frontDoor.enabled},
 *     else null)
 */
public record NodeConfig(NodeSettings node, String tcpHost, int tcpPort, long agentTimeoutMs, RoutingSettings routing,
    EndpointSettings endpoint) {
  /** How long the front door waits for an agent by default; RSA-4096 generation on a busy token is the slow case. */
  public static final long DEFAULT_AGENT_TIMEOUT_MS = 60_000;

  public static NodeConfig load(Path file) {
    Properties p = AgentConfig.readProperties(file);
    NodeSettings node = NodeSettings.from(p);
    String host = p.getProperty("bridge.tcp.host", "127.0.0.1").trim();
    int port = AgentConfig.integer(p, "bridge.tcp.port", 7701);
    if (port < 0 || port > 65535) {
      throw AgentConfig.invalid("bridge.tcp.port must be 0..65535");
    }
    long timeout = AgentConfig.integer(p, "bridge.agentTimeoutMs", (int) DEFAULT_AGENT_TIMEOUT_MS);
    if (timeout < 100) {
      throw AgentConfig.invalid("bridge.agentTimeoutMs must be at least 100");
    }
    RoutingSettings routing = node.frontDoor() ? RoutingSettings.from(p) : null;
    EndpointSettings endpoint = node.frontDoor() ? EndpointSettings.from(p, node.cluster()) : null;
    return new NodeConfig(node, host, port, timeout, routing, endpoint);
  }

  /** The agent part; null for a bridge, which holds no token. */
  public AgentConfig agent() {
    return node.agent();
  }

  /** Where endpoint.json is written, or null. */
  public Path stateDir() {
    return node.stateDir();
  }

  public int eventLoops() {
    return node.eventLoops();
  }

  public int workerSpinMicros() {
    return node.workerSpinMicros();
  }

  public int workerThreads() {
    return node.workerThreads();
  }

  public ClusterConfig cluster() {
    return node.cluster();
  }

  public NodeRole role() {
    return node.role();
  }

  /** The agent's place in the mutation log (role agent only, else null). */
  public RaftSettings raft() {
    return node.raft();
  }
}
