package io.hsmbridge.agent.node;

import io.hsmbridge.agent.AgentConfig;
import java.util.Locale;
import java.util.Properties;

/**
 * What a node process runs ({@code node.role}). There is one request path: a one-HSM cluster is an agent
 * (with its front door) whose Raft group has one member, started like every HSM of a larger cluster.
 */
public enum NodeRole {
  /**
   * One HSM of a cluster (the default): Raft peer of the mutation log, heartbeats, and, with
   * {@code frontDoor.enabled} (the default), the cluster front door and its client endpoint.
   */
  AGENT,
  /** A front door without a token (a DMZ process): routing, load balancing, failover, durability, health. */
  BRIDGE;

  /** The value an older version took by default: agent and bridge in one process, without users or Raft. */
  private static final String REMOVED_ALL = "all";

  static NodeRole from(Properties p) {
    String v = p.getProperty("node.role", "agent").trim().toLowerCase(Locale.ROOT);
    if (v.equals(REMOVED_ALL)) {
      // Said plainly: a config of an earlier version must not start something else than it asks for.
      throw AgentConfig.invalid("node.role=all was removed: a one-HSM node is a one-HSM cluster, node.role=agent"
          + " with cluster.enabled=true and its front door (./hsmbridge up --hsms 1 writes one)");
    }
    try {
      return valueOf(v.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw AgentConfig.invalid("node.role must be agent or bridge");
    }
  }
}
