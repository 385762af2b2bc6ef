package io.hsmbridge.cli;

import java.nio.file.Path;

/**
 * The directory of one node process of a local cluster ({@code HOME/hsm1}, {@code HOME/bridge}): its
 * configuration, log, pid and readiness files, and for an agent its SoftHSM2 token store, PIN files and
 * Raft directory. Only paths; nothing here touches the file system.
 *
 * @param name the member name: an HSM id ({@code hsm3}) or {@code bridge}
 */
record NodeDir(String name, Path dir) {

  /** What this node's cluster certificate lets it be: the bridge is a front door, every other node an HSM host. */
  io.hsmbridge.agent.membership.ClusterCa.MemberKind memberKind() {
    return name.equals(Home.BRIDGE) ? io.hsmbridge.agent.membership.ClusterCa.MemberKind.FRONT_DOOR
        : io.hsmbridge.agent.membership.ClusterCa.MemberKind.AGENT;
  }

  Path softhsmConf() {
    return dir.resolve("softhsm2.conf");
  }

  Path tokensDir() {
    return dir.resolve("tokens");
  }

  Path soPin() {
    return dir.resolve("so.pin");
  }

  Path userPin() {
    return dir.resolve("user.pin");
  }

  Path nodeProperties() {
    return dir.resolve("node.properties");
  }

  Path nodeLog() {
    return dir.resolve("node.log");
  }

  Path nodePid() {
    return dir.resolve("node.pid");
  }

  Path endpointJson() {
    return dir.resolve("endpoint.json");
  }

  /** The HSM's hash-chained audit log: state.dir is the node's directory (NodeProperties). */
  Path auditLog() {
    return dir.resolve("audit.log");
  }

  Path raftDir() {
    return dir.resolve("raft");
  }

  Path tlsDir() {
    return dir.resolve("tls");
  }

  /** The member's cluster certificate, as {@code ClusterCa.issueMember} names it. */
  Path tlsCert() {
    return tlsDir().resolve(name + ".pem");
  }

  Path tlsKey() {
    return tlsDir().resolve(name + "-key.pem");
  }

  Path tlsCa() {
    return tlsDir().resolve("ca.pem");
  }
}
