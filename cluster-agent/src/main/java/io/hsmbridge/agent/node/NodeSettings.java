package io.hsmbridge.agent.node;

import io.hsmbridge.agent.AgentConfig;
import io.hsmbridge.agent.AgentVerticle;
import io.hsmbridge.agent.membership.ClusterConfig;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Properties;

/**
 * The part of a node's {@code node.properties} that the agent side reads: what the process runs, its token,
 * its state directory, threads, the cluster it joins and its place in the mutation log. The front door's
 * settings (client endpoint, routing, {@code bridge.*}) are read by the bridge module's {@code NodeConfig},
 * which wraps this record; both read the same file.
 *
 * @param role what this process runs ({@code node.role}: agent, the default, or bridge)
 * @param agent the agent part (its token); null for a bridge, which holds no token
 * @param stateDir where endpoint.json is written, or null
 * @param eventLoops Vert.x event-loop threads. Event-loop work here is light (framing, JSON, routing)
 *     while PKCS#11 runs on workers, so one loop avoids cross-thread hops on every request.
 * @param workerSpinMicros how long an idle token worker spins before parking (0 = never)
 * @param workerThreads threads making PKCS#11 calls (0 = one per core, capped by the session count)
 * @param cluster clustered event bus settings ({@code cluster.*}); every role needs {@code cluster.enabled=true}
 * @param raft the agent's place in the mutation log (role agent only, else null)
 * @param frontDoor whether this process is a cluster front door: role bridge, or an agent with
 *     {@code frontDoor.enabled} (true unless set to false: an HSM host is a front door too)
 */
public record NodeSettings(NodeRole role, AgentConfig agent, Path stateDir, int eventLoops, int workerSpinMicros,
    int workerThreads, ClusterConfig cluster, RaftSettings raft, boolean frontDoor) {

  public static NodeSettings from(Properties p) {
    NodeRole role = NodeRole.from(p);
    // A bridge holds no token: it has no agent part.
    AgentConfig agent = role == NodeRole.BRIDGE ? null : AgentConfig.from(p);
    String state = p.getProperty("state.dir");
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
    if (!cluster.enabled()) {
      // Even one HSM runs as a cluster (of one): the same request path, users, sessions and Raft log.
      throw AgentConfig.invalid("node.role=" + role.name().toLowerCase(java.util.Locale.ROOT)
          + (p.getProperty("node.role") == null ? " (the default)" : "") + " needs cluster.enabled=true"
          + " and the cluster.tls.* files; a one-HSM cluster too (./hsmbridge up --hsms 1 writes them)");
    }
    RaftSettings raft = role == NodeRole.AGENT ? RaftSettings.from(p, agent.hsmId(), stateDir) : null;
    // An HSM host is a front door too unless told otherwise (frontDoor.enabled=false): its own client endpoint
    // and routing, so that no single process stands between clients and the cluster (issue #11).
    boolean frontDoor = role == NodeRole.BRIDGE || AgentConfig.bool(p, "frontDoor.enabled", true);
    return new NodeSettings(role, agent, stateDir, eventLoops, spin, workers, cluster, raft, frontDoor);
  }
}
