package io.hsmbridge.agent.cluster;

/** Where an agent is in its life; only SERVING agents receive client traffic. */
public enum AgentState {
  /** Opening the token, joining the cluster, fetching the cluster key. */
  STARTING,
  /** Applying the mutations it missed; does not serve until caught up with the leader. */
  CATCHING_UP,
  SERVING,
  /** Leaving the cluster (shutdown). */
  STOPPING
}
