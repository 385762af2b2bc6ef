package io.hsmbridge.bridge.routing;

import io.hsmbridge.protocol.Op;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.json.JsonObject;
import java.util.List;

/**
 * The bridge's own requests to agents (digests, repairs, membership, audit checks), each sent to the
 * address the HSM's current run announced in its heartbeat, with one timeout.
 */
final class AgentCalls {
  private final Vertx vertx;
  private final DeliveryOptions delivery;

  AgentCalls(Vertx vertx, long timeoutMs) {
    this.vertx = vertx;
    this.delivery = new DeliveryOptions().setSendTimeout(timeoutMs);
  }

  Future<JsonObject> ask(HsmView hsm, JsonObject request) {
    return vertx.eventBus().<JsonObject>request(hsm.address, request, delivery).map(Message::body);
  }

  /** {@link #ask} with a timeout of its own. */
  Future<JsonObject> ask(HsmView hsm, JsonObject request, long timeoutMs) {
    return vertx.eventBus().<JsonObject>request(hsm.address, request, new DeliveryOptions().setSendTimeout(timeoutMs))
        .map(Message::body);
  }

  /** Asks every HSM of {@code hsms} the same bodiless operation; the replies in the same order. */
  List<Future<JsonObject>> askEach(List<HsmView> hsms, Op op) {
    return hsms.stream().map(v -> ask(v, new JsonObject().put("op", op.wire()))).toList();
  }
}
