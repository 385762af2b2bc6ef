package io.hsmbridge.bridge;

import io.hsmbridge.bridge.endpoint.ClientEndpoint;
import io.hsmbridge.bridge.endpoint.EndpointSettings;
import io.vertx.core.Future;
import io.vertx.core.Vertx;

/**
 * The client endpoint for clients outside the JVM cluster (the CLI, the Java client, other languages):
 * the TCP event-bus bridge protocol, TLS by default, every input bounded ({@link ClientEndpoint}). Only
 * sends to the bridge's request address are let in; nothing else on the bus is reachable.
 */
final class TcpBridge {
  private TcpBridge() {}

  static Future<ClientEndpoint> start(Vertx vertx, EndpointSettings settings) {
    return ClientEndpoint.start(vertx, settings);
  }
}
