package io.hsmbridge.bridge.routing;

import io.vertx.core.Promise;
import io.vertx.core.json.JsonObject;

/**
 * One try of a request on one HSM. Completed by the HSM's reply, or failed at once when the bridge
 * declares the HSM dead, so a request never waits out its timeout on a process that is gone.
 */
final class Attempt {
  final HsmView hsm;
  final Promise<JsonObject> outcome = Promise.promise();
  final long startNanos = System.nanoTime();

  Attempt(HsmView hsm) {
    this.hsm = hsm;
  }
}
