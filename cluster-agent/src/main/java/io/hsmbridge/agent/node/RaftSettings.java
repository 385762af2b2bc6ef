package io.hsmbridge.agent.node;

import io.hsmbridge.agent.AgentConfig;
import io.hsmbridge.agent.replication.MutationLog;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

/**
 * An agent's place in the cluster's mutation log ({@code raft.*} and {@code cluster.createKey}).
 *
 * @param peers the Raft group this agent starts with ({@code raft.peers=id@host:port,...}); it must
 *     contain this agent. After a restart the group recorded in the log wins over this list.
 * @param dir where the Raft log lives
 * @param join true for an HSM added to a running cluster: it asks the group to take it in
 * @param createKey true only for the first HSM of a new cluster: it creates the cluster key; every
 *     other HSM fetches the key from a member
 * @param commitTimeout how long a mutation may wait for the log before it is refused
 * @param heartbeat how often the agent publishes its heartbeat
 */
public record RaftSettings(List<MutationLog.Peer> peers, Path dir, boolean join, boolean createKey,
    Duration commitTimeout, Duration heartbeat) {

  static RaftSettings from(Properties p, String hsmId, Path stateDir) {
    String list = p.getProperty("raft.peers");
    List<MutationLog.Peer> peers = new ArrayList<>();
    if (list == null || list.isBlank()) {
      int port = AgentConfig.integer(p, "raft.port", 0);
      if (port < 1 || port > 65535) {
        throw AgentConfig.invalid("raft.port (1..65535) or raft.peers is required for node.role=agent");
      }
      peers.add(new MutationLog.Peer(hsmId, p.getProperty("raft.host", p.getProperty("cluster.host", "127.0.0.1")).trim(), port));
    } else {
      for (String item : list.split(",")) {
        peers.add(peer(item.trim()));
      }
    }
    if (peers.stream().noneMatch(x -> x.id().equals(hsmId))) {
      throw AgentConfig.invalid("raft.peers must contain this HSM (" + hsmId + ")");
    }
    if (peers.stream().map(MutationLog.Peer::id).distinct().count() != peers.size()) {
      throw AgentConfig.invalid("raft.peers lists an HSM twice");
    }
    String dir = p.getProperty("raft.dir");
    Path raftDir = dir != null ? Paths.get(dir.trim()) : stateDir != null ? stateDir.resolve("raft") : null;
    if (raftDir == null) {
      throw AgentConfig.invalid("raft.dir (or state.dir) is required for node.role=agent");
    }
    int commitMs = AgentConfig.integer(p, "raft.commitTimeoutMs", 10_000);
    int heartbeatMs = AgentConfig.integer(p, "cluster.heartbeatMs", 500);
    if (commitMs < 100 || heartbeatMs < 50) {
      throw AgentConfig.invalid("raft.commitTimeoutMs must be >= 100 and cluster.heartbeatMs >= 50");
    }
    return new RaftSettings(List.copyOf(peers), raftDir, AgentConfig.bool(p, "raft.join", false),
        AgentConfig.bool(p, "cluster.createKey", false), Duration.ofMillis(commitMs), Duration.ofMillis(heartbeatMs));
  }

  /** {@code id@host:port}, IPv6 hosts in brackets. */
  static MutationLog.Peer peer(String item) {
    int at = item.indexOf('@');
    int colon = item.lastIndexOf(':');
    if (at <= 0 || colon < at + 2 || colon == item.length() - 1) {
      throw AgentConfig.invalid("raft.peers entries must look like hsm1@127.0.0.1:7801, got '" + item + "'");
    }
    String host = item.substring(at + 1, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    int port;
    try {
      port = Integer.parseInt(item.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw AgentConfig.invalid("raft.peers: bad port in '" + item + "'");
    }
    try {
      return new MutationLog.Peer(item.substring(0, at), host, port);
    } catch (IllegalArgumentException e) {
      throw AgentConfig.invalid("raft.peers: " + e.getMessage());
    }
  }
}
