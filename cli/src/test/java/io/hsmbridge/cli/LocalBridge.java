package io.hsmbridge.cli;

import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.ClientTls;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/** How the cluster tests reach the bridge of a local cluster: its endpoint file, TLS pinning the cluster CA. */
final class LocalBridge {
  private LocalBridge() {}

  /** A client of the bridge that {@code up} started in {@code home}. */
  static BridgeClient connect(Path home, Duration timeout) {
    return connect(home, "bridge", timeout);
  }

  /** A client of the front door of {@code node} ({@code bridge}, or an HSM host: {@code hsm1}, ...). */
  static BridgeClient connect(Path home, String node, Duration timeout) {
    JsonObject ep;
    try {
      ep = new JsonObject(Files.readString(home.resolve(node).resolve("endpoint.json")));
    } catch (IOException e) {
      throw new AssertionError("no endpoint of " + node, e);
    }
    return BridgeClient.connect(ep.getString("host"), ep.getInteger("port"), timeout,
        ClientTls.pinning(home.resolve("bridge").resolve("tls").resolve("ca.pem")));
  }
}
