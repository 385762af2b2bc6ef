package io.hsmbridge.agent.node;

import io.hsmbridge.agent.AgentConfig;
import java.util.Locale;
import java.util.Properties;

/** What a node process runs ({@code node.role}). */
public enum NodeRole {
  /** One HSM's agent and a bridge in front of it, in one process, without replication (demo, bench, tests). */
  ALL,
  /** One HSM's agent, a member of the cluster: Raft peer of the mutation log, heartbeats, no client port. */
  AGENT,
  /** The cluster's front door: routing, load balancing, failover, durability, health; holds no token. */
  BRIDGE;

  static NodeRole from(Properties p) {
    String v = p.getProperty("node.role", "all").trim();
    try {
      return valueOf(v.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw AgentConfig.invalid("node.role must be all, agent or bridge");
    }
  }
}
