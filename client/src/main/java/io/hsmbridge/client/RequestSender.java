package io.hsmbridge.client;

import io.vertx.core.json.JsonObject;

/** Sends one protocol request body and returns the reply body; failures are {@link HsmBridgeException}s. */
@FunctionalInterface
public interface RequestSender {
  JsonObject request(JsonObject body);
}
