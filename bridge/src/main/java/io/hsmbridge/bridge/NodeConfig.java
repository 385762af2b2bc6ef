package io.hsmbridge.bridge;

import io.hsmbridge.agent.AgentConfig;
import io.hsmbridge.agent.AgentVerticle;
import io.hsmbridge.bridge.cluster.ClusterConfig;
import io.hsmbridge.bridge.endpoint.EndpointSettings;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Properties;

/**
 * A node process: one agent (its HSM) plus the bridge in front of it, from one properties file.
 *
 * @param agent the agent part
 * @param tcpHost where the TCP event-bus bridge listens (loopback by default)
 * @param tcpPort its port; 0 picks a free one (reported in endpoint.json)
 * @param stateDir where endpoint.json is written, or null
 * @param agentTimeoutMs how long the bridge waits for the agent
 * @param workerSpinMicros how long an idle token worker spins before parking (0 = never)
 * @param workerThreads threads making PKCS#11 calls (0 = one per core, capped by the session count)
 * @param eventLoops Vert.x event-loop threads. Event-loop work here is light (framing, JSON, routing)
 *     while PKCS#11 runs on workers, so one loop avoids cross-thread hops on every request.
 * @param cluster clustered event bus settings ({@code cluster.*}); disabled by default (local Vert.x)
 * @param role what this process runs ({@code node.role}: all, agent or bridge)
 * @param raft the agent's place in the mutation log (role agent only, else null)
 * @param routing the front door's routing settings (role bridge, or an agent with {@code frontDoor.enabled},
 *     else null)
 * @param endpoint the client endpoint (TLS, limits; roles all and bridge, and an agent with
 *     {@code frontDoor.enabled}, else null)
 */
public record NodeConfig(AgentConfig agent, String tcpHost, int tcpPort, Path stateDir, long agentTimeoutMs,
    int eventLoops, int workerSpinMicros, int workerThreads, ClusterConfig cluster, NodeRole role, RaftSettings raft,
    RoutingSettings routing, EndpointSettings endpoint) {

  public static NodeConfig load(Path file) {
    Properties p = AgentConfig.readProperties(file);
    NodeRole role = NodeRole.from(p);
    // A bridge holds no token: it has no agent part.
    AgentConfig agent = role == NodeRole.BRIDGE ? null : AgentConfig.from(p);
    String host = p.getProperty("bridge.tcp.host", "127.0.0.1").trim();
    int port = AgentConfig.integer(p, "bridge.tcp.port", 7701);
    if (port < 0 || port > 65535) {
      throw AgentConfig.invalid("bridge.tcp.port must be 0..65535");
    }
    String state = p.getProperty("state.dir");
    long timeout = AgentConfig.integer(p, "bridge.agentTimeoutMs", (int) BridgeVerticle.DEFAULT_AGENT_TIMEOUT_MS);
    if (timeout < 100) {
      throw AgentConfig.invalid("bridge.agentTimeoutMs must be at least 100");
    }
    int eventLoops = AgentConfig.integer(p, "node.eventLoops", 1);
    if (eventLoops < 1 || eventLoops > 64) {
      throw AgentConfig.invalid("node.eventLoops must be 1..64");
    }
    int spin = AgentConfig.integer(p, "agent.workerSpinMicros", (int) AgentVerticle.DEFAULT_WORKER_SPIN_MICROS);
    if (spin < 0 || spin > 10_000) {
      throw AgentConfig.invalid("agent.workerSpinMicros must be 0..10000");
    }
    int workers = AgentConfig.integer(p, "agent.workerThreads", 0);
    if (workers < 0 || workers > 1024) {
      throw AgentConfig.invalid("agent.workerThreads must be 0..1024 (0 = one per CPU core)");
    }
    Path stateDir = state == null ? null : Paths.get(state.trim());
    ClusterConfig cluster = ClusterConfig.from(p);
    if (role != NodeRole.ALL && !cluster.enabled()) {
      throw AgentConfig.invalid("node.role=" + role.name().toLowerCase(java.util.Locale.ROOT) + " needs cluster.enabled=true");
    }
    RaftSettings raft = role == NodeRole.AGENT ? RaftSettings.from(p, agent.hsmId(), stateDir) : null;
    // An HSM host can be a front door too (frontDoor.enabled): its own client endpoint and routing, so that
    // no single process stands between clients and the cluster (issue #11).
    boolean frontDoor = role == NodeRole.BRIDGE || (role == NodeRole.AGENT && AgentConfig.bool(p, "frontDoor.enabled", false));
    RoutingSettings routing = frontDoor ? RoutingSettings.from(p) : null;
    EndpointSettings endpoint = role == NodeRole.AGENT && !frontDoor ? null : EndpointSettings.from(p, cluster);
    return new NodeConfig(agent, host, port, stateDir, timeout, eventLoops, spin, workers, cluster, role, raft, routing,
        endpoint);
  }
}
