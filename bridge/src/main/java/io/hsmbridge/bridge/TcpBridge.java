package io.hsmbridge.bridge;

import io.hsmbridge.protocol.Addresses;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.net.NetServerOptions;
import io.vertx.ext.bridge.BridgeOptions;
import io.vertx.ext.bridge.PermittedOptions;
import io.vertx.ext.eventbus.bridge.tcp.TcpEventBusBridge;

/**
 * The Vert.x TCP event-bus bridge for clients outside the JVM cluster (the CLI, other languages).
 * Only sends to the bridge's request address are let in; nothing else on the bus is reachable.
 */
final class TcpBridge {
  private TcpBridge() {}

  static Future<TcpEventBusBridge> start(Vertx vertx, String host, int port) {
    BridgeOptions options = new BridgeOptions()
        .addInboundPermitted(new PermittedOptions().setAddress(Addresses.BRIDGE_REQUEST));
    NetServerOptions net = new NetServerOptions().setTcpNoDelay(true).setReuseAddress(true);
    return TcpEventBusBridge.create(vertx, options, net).listen(port, host);
  }
}
