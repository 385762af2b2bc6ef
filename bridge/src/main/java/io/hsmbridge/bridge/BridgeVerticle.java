package io.hsmbridge.bridge;

import io.hsmbridge.agent.Failures;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.json.JsonObject;

/**
 * The cluster's front door on the event bus ({@code hsmbridge.v1.request}): validates each request and
 * forwards it to the agent of the HSM that serves it, relaying the reply or a typed failure. With one
 * HSM (this version) every request goes to that HSM's agent; routing across HSMs comes with clustering.
 * Runs entirely on its event loop: it never blocks.
 */
public final class BridgeVerticle extends VerticleBase {
  /** How long the bridge waits for an agent; RSA-4096 generation on a busy token is the slow case. */
  public static final long DEFAULT_AGENT_TIMEOUT_MS = 60_000;

  private final String agentAddress;
  private final DeliveryOptions delivery;
  private MessageConsumer<Object> consumer;

  public BridgeVerticle(String hsmId, long agentTimeoutMs) {
    this.agentAddress = Addresses.agent(hsmId);
    this.delivery = new DeliveryOptions().setSendTimeout(agentTimeoutMs);
  }

  @Override
  public Future<?> start() {
    consumer = vertx.eventBus().consumer(Addresses.BRIDGE_REQUEST, this::handle);
    return consumer.completion();
  }

  private void handle(Message<Object> message) {
    JsonObject body = Failures.jsonBodyOrFail(message);
    if (body == null) {
      return;
    }
    try {
      if (RequestValidator.validate(body).isUserModel()) {
        throw new HsmException(ErrorCode.UNKNOWN_OPERATION, "users, sessions and quorum exist in a cluster (hsmbridge up);"
            + " this node runs node.role=all: one HSM without users, for development and benchmarks on loopback");
      }
    } catch (HsmException | IllegalArgumentException | ClassCastException e) {
      Failures.reply(message, e instanceof HsmException ? e : new HsmException(ErrorCode.BAD_REQUEST, "malformed request"));
      return;
    }
    vertx.eventBus().<JsonObject>request(agentAddress, body, delivery).onComplete(ar -> {
      if (ar.succeeded()) {
        message.reply(ar.result().body());
      } else {
        relayFailure(message, ar.cause());
      }
    });
  }

  /** Relays an agent's failure to the client: its own code, or TIMEOUT / NO_HSM_AVAILABLE for transport failures. */
  public static void relayFailure(Message<?> message, Throwable cause) {
    if (cause instanceof ReplyException) {
      ReplyException re = (ReplyException) cause;
      switch (re.failureType()) {
        case RECIPIENT_FAILURE:
          message.fail(re.failureCode(), re.getMessage());
          return;
        case TIMEOUT:
          Failures.reply(message, ErrorCode.TIMEOUT, "the HSM did not answer in time");
          return;
        case NO_HANDLERS:
          Failures.reply(message, ErrorCode.NO_HSM_AVAILABLE, "no HSM is serving requests");
          return;
        default:
          break;
      }
    }
    Failures.reply(message, cause);
  }

  @Override
  public Future<?> stop() {
    return consumer == null ? Future.succeededFuture() : consumer.unregister();
  }
}
