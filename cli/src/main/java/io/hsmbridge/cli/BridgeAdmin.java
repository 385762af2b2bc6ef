package io.hsmbridge.cli;

import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.RequestSender;
import io.hsmbridge.protocol.Op;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The bridge's cluster-administration requests ({@code cluster.status}, {@code cluster.removeHsm},
 * {@code cluster.check}, {@code cluster.auditVerify}) over one connection; all but the status need a CO's
 * session ({@link #useSession}). Not thread-safe; close it when done.
 */
final class BridgeAdmin implements AutoCloseable {
  /** A request timeout for status polls: short, so a stuck bridge does not stall a wait loop. */
  static final Duration POLL_TIMEOUT = Duration.ofSeconds(5);
  /** For requests that drain an HSM or compare every HSM's objects. */
  static final Duration LONG_TIMEOUT = Duration.ofSeconds(120);

  /** Opens an admin connection to a bridge; tests substitute their own. */
  @FunctionalInterface
  interface Connector {
    BridgeAdmin connect(Endpoint bridge, Duration requestTimeout);
  }

  static final Connector TCP = (ep, timeout) -> {
    BridgeClient client = ep.connect(timeout);
    return new BridgeAdmin(client, client);
  };

  private final RequestSender sender;
  private final AutoCloseable connection;
  /** The session token sent with every request, or null: cluster.status is public, the rest needs a CO. */
  private String session;

  BridgeAdmin(RequestSender sender, AutoCloseable connection) {
    this.sender = sender;
    this.connection = connection;
  }

  /** Sends this session token (null for none) with every later request; returns this. */
  BridgeAdmin useSession(String token) {
    this.session = token;
    return this;
  }

  ClusterStatus status() {
    return ClusterStatus.from(request(Op.CLUSTER_STATUS, new JsonObject()));
  }

  /**
   * Drains the HSM and removes it from the Raft group.
   *
   * @return the group's peers afterwards, as the bridge reports them
   */
  List<String> removeHsm(String hsmId) {
    JsonObject reply = request(Op.CLUSTER_REMOVE_HSM, new JsonObject().put("hsmId", hsmId));
    List<String> peers = new ArrayList<>();
    if (reply.getValue("peers") instanceof JsonArray a) {
      a.forEach(p -> peers.add(String.valueOf(p)));
    }
    return peers;
  }

  /** The anti-entropy report: {@code consistent}, {@code digests}, {@code repaired}, {@code unexpected}. */
  JsonObject check() {
    return request(Op.CLUSTER_CHECK, new JsonObject());
  }

  JsonObject auditVerify() {
    return request(Op.CLUSTER_AUDIT_VERIFY, new JsonObject());
  }

  private JsonObject request(Op op, JsonObject body) {
    body.put("op", op.wire());
    if (session != null) {
      body.put("session", session);
    }
    return sender.request(body);
  }

  @Override
  public void close() {
    try {
      connection.close();
    } catch (Exception e) {
      // closing a connection has nothing to report
    }
  }
}
