package io.hsmbridge.agent.node;

import io.vertx.core.json.JsonObject;

/**
 * Where a started front door listens, as endpoint.json says it.
 *
 * @param host the client endpoint's host ({@code bridge.tcp.host})
 * @param port the port it listens on (a free one when {@code bridge.tcp.port=0})
 * @param tls whether the endpoint speaks TLS
 * @param loopbackPlaintextPort the loopback plaintext endpoint's port, or -1 when there is none
 */
public record FrontDoorEndpoint(String host, int port, boolean tls, int loopbackPlaintextPort) {

  /** The endpoint.json fields: host, port, tls (and loopbackPlaintextPort when there is one). */
  public JsonObject toJson() {
    JsonObject written = new JsonObject().put("host", host).put("port", port).put("tls", tls);
    if (loopbackPlaintextPort >= 0) {
      written.put("loopbackPlaintextPort", loopbackPlaintextPort);
    }
    return written;
  }
}
