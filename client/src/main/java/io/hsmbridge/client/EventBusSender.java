package io.hsmbridge.client;

import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Sends requests over the cluster's own event bus, for a Vert.x application that is a member of the cluster
 * (docs/java.md, "On the cluster's event bus"): to {@link Addresses#CLIENT_REQUEST}, which every front door
 * consumes, so Vert.x spreads the requests over the front doors and stops choosing one that left.
 *
 * <p>Failures become the same {@link HsmBridgeException}s as over TCP: no front door registered is {@code
 * NO_HSM_AVAILABLE} with {@link HsmBridgeException#isConnectionLost()} and nothing sent; a request whose front door
 * left the cluster while it was in flight (told through {@link #memberLeft()}) fails at once as a lost
 * connection, so that {@link RetryingSender} sends it again to another front door instead of waiting for the
 * timeout. Blocking: never call it on an event loop (the typed client's asynchronous calls run it on the
 * client's threads).
 */
public final class EventBusSender implements RequestSender, AutoCloseable {
  private final Vertx vertx;
  private final DeliveryOptions delivery;
  private final long timeoutMs;
  /** Requests in flight, each with whether it may be sent twice ({@link io.hsmbridge.protocol.Op#isRetrySafe()}). */
  private final java.util.Map<CompletableFuture<JsonObject>, Boolean> inFlight = new ConcurrentHashMap<>();
  private volatile boolean closed;

  /**
   * @param vertx a clustered Vert.x that is a member of the hsmbridge cluster (it stays the application's:
   *     {@link #close()} does not close it)
   * @param timeout the time one request may take
   */
  public EventBusSender(Vertx vertx, Duration timeout) {
    this.vertx = Objects.requireNonNull(vertx, "vertx");
    this.timeoutMs = Objects.requireNonNull(timeout, "timeout").toMillis();
    this.delivery = new DeliveryOptions().setSendTimeout(timeoutMs);
    if (!vertx.isClustered()) {
      throw new IllegalArgumentException("the Vert.x instance is not clustered: join the hsmbridge cluster first"
          + " (docs/java.md), or connect over TCP with endpoints(...)");
    }
  }

  @Override
  public JsonObject request(JsonObject body) {
    if (closed) {
      throw new HsmBridgeException(ErrorCode.NO_HSM_AVAILABLE, "the client is closed");
    }
    if (Context.isOnEventLoopThread()) {
      throw new IllegalStateException("a blocking hsmbridge call on an event loop would block it: use the"
          + " asynchronous calls (signAsync, generateAsync, callAsync), which complete on this context");
    }
    CompletableFuture<JsonObject> reply = new CompletableFuture<>();
    io.hsmbridge.protocol.Op op = body.getValue("op") instanceof String w ? io.hsmbridge.protocol.Op.fromWire(w) : null;
    inFlight.put(reply, op != null && op.isRetrySafe());
    try {
      vertx.eventBus().<Object>request(Addresses.CLIENT_REQUEST, body, delivery).onComplete(ar -> {
        if (ar.failed()) {
          reply.completeExceptionally(failure(ar.cause()));
        } else if (ar.result().body() instanceof JsonObject b) {
          reply.complete(b);
        } else {
          reply.completeExceptionally(new HsmBridgeException(ErrorCode.INTERNAL, "reply body is not a JSON object"));
        }
      });
      // The event bus times the request out itself; the margin covers a reply being delivered meanwhile.
      return reply.get(timeoutMs + 5_000, TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      throw e.getCause() instanceof HsmBridgeException h ? h
          : new HsmBridgeException(ErrorCode.INTERNAL, "event-bus request failed: " + e.getCause());
    } catch (TimeoutException e) {
      throw new HsmBridgeException(ErrorCode.TIMEOUT, "no reply on the event bus within " + timeoutMs + " ms");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new HsmBridgeException(ErrorCode.TIMEOUT, "interrupted while waiting for a reply");
    } finally {
      inFlight.remove(reply);
    }
  }

  /**
   * A front door left the cluster (its process died or stopped): the requests in flight may have been sent to
   * it, and Vert.x would leave them to their timeout. Those that are safe to send twice (reads, crypto, creations
   * with their request id) fail now as a lost connection, and {@link RetryingSender} sends them again at once;
   * the others wait for their answer (or their timeout): failing one that another front door is serving would
   * make its outcome ambiguous for nothing.
   */
  public void memberLeft() {
    for (java.util.Map.Entry<CompletableFuture<JsonObject>, Boolean> e : inFlight.entrySet()) {
      if (!e.getValue()) {
        continue;
      }
      e.getKey().completeExceptionally(HsmBridgeException.connectionLost(ErrorCode.NO_HSM_AVAILABLE,
          "a member of the cluster left while the request was in flight", null));
    }
  }

  private static HsmBridgeException failure(Throwable cause) {
    if (cause instanceof ReplyException re) {
      return switch (re.failureType()) {
        case NO_HANDLERS -> HsmBridgeException.connectionLost(ErrorCode.NO_HSM_AVAILABLE,
            "no front door on the cluster's event bus (" + FailoverSender.NOTHING_SENT + ")", re);
        case TIMEOUT -> new HsmBridgeException(ErrorCode.TIMEOUT, "no reply on the event bus in time");
        default -> HsmBridgeException.fromFailure(re.failureCode(), re.failureType().name(), re.getMessage());
      };
    }
    return HsmBridgeException.connectionLost(ErrorCode.NO_HSM_AVAILABLE, "event-bus request failed: " + cause, cause);
  }

  /** Fails what is in flight; the Vert.x instance stays open (it is the application's). */
  @Override
  public void close() {
    closed = true;
    for (CompletableFuture<JsonObject> f : inFlight.keySet()) {
      f.completeExceptionally(new HsmBridgeException(ErrorCode.NO_HSM_AVAILABLE, "the client is closed"));
    }
  }
}
