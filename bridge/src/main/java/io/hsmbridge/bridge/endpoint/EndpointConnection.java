package io.hsmbridge.bridge.endpoint;

import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.AsyncResult;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.NetSocket;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/**
 * One client connection: frames in, event-bus requests to {@link Addresses#BRIDGE_REQUEST}, replies out,
 * in the TCP event-bus bridge's wire format. A frame is refused with an {@code err} frame unless it is a
 * {@code send} to the request address with a reply address and an object body ({@code ping} gets a
 * {@code pong}); an oversized or unreadable frame also ends the connection (after a lying length the
 * stream cannot be re-synchronised). At most {@code maxInFlight} requests are worked on at once: past
 * that, and while the socket's write queue is full, the connection is not read (back-pressure).
 *
 * <p>Runs on the connection's event loop; {@link #sweep} and {@link #close} may run on another thread.
 */
final class EndpointConnection {
  private static final int MAX_REPLY_ADDRESS = 256;

  private final Vertx vertx;
  private final NetSocket socket;
  private final String remote;
  private final EndpointSettings settings;
  private final EndpointLog log;
  private final Runnable onClose;
  private final FrameDecoder decoder;
  private final DeliveryOptions delivery;
  private final long openedAt = System.nanoTime();
  private volatile long lastReadAt = openedAt;
  /** When the frame in progress started, 0 when none is. */
  private volatile long frameStartedAt;
  private volatile boolean ready;
  private volatile boolean closed;
  private volatile int inFlight;
  private boolean paused;
  private int frames;

  EndpointConnection(Vertx vertx, NetSocket socket, String remote, EndpointSettings settings, EndpointLog log,
      Runnable onClose) {
    this.vertx = vertx;
    this.socket = socket;
    this.remote = remote;
    this.settings = settings;
    this.log = log;
    this.onClose = onClose;
    this.decoder = new FrameDecoder(settings.maxFrameBytes(), this::onFrame);
    this.delivery = new DeliveryOptions().setSendTimeout(settings.requestTimeoutMs()).setLocalOnly(true);
  }

  void start() {
    socket.closeHandler(v -> closed());
    // Never log the exception's message: Netty's "not an SSL/TLS record" carries a hex dump of the bytes.
    socket.exceptionHandler(t -> close());
    if (!settings.tlsEnabled()) {
      serve();
      return;
    }
    socket.upgradeToSsl().onComplete(ar -> {
      if (ar.succeeded()) {
        serve();
      } else {
        log.event(EndpointLog.Kind.TLS, "TLS handshake with " + remote + " failed ("
            + ar.cause().getClass().getSimpleName() + "): not a TLS client, or its certificate was refused");
        close();
      }
    });
  }

  private void serve() {
    ready = true;
    lastReadAt = System.nanoTime();
    socket.handler(this::onData);
    socket.drainHandler(v -> resumeIfRoom());
  }

  private void onData(Buffer data) {
    if (closed) {
      return;
    }
    lastReadAt = System.nanoTime();
    int before = frames;
    boolean wasInFrame = decoder.inFrame();
    FrameDecoder.Failure failure = decoder.feed(data);
    if (failure != null) {
      log.event(EndpointLog.Kind.OVERSIZED, "closed the connection from " + remote + ": a frame of "
          + decoder.refusedLength() + " bytes announced, over bridge.tcp.maxFrameBytes " + settings.maxFrameBytes());
      refuseAndClose(ErrorCode.INPUT_TOO_LARGE, "frame_too_large");
      return;
    }
    if (!decoder.inFrame()) {
      frameStartedAt = 0;
    } else if (!wasInFrame || frames != before) {
      frameStartedAt = lastReadAt;
    }
  }

  private void onFrame(Buffer frame) {
    frames++;
    if (closed) {
      return;
    }
    JsonObject msg;
    try {
      msg = new JsonObject(frame);
    } catch (DecodeException | ClassCastException e) {
      // The message of a DecodeException quotes the input: say only its size.
      log.event(EndpointLog.Kind.PROTOCOL, "closed the connection from " + remote + ": a frame of " + frame.length()
          + " bytes is not a JSON object");
      refuseAndClose(ErrorCode.BAD_REQUEST, "invalid_frame");
      return;
    }
    String type = msg.getValue("type") instanceof String t ? t : null;
    String address = msg.getValue("address") instanceof String a ? a : null;
    Object reply = msg.getValue("replyAddress");
    String replyAddress = reply instanceof String r && !r.isEmpty() && r.length() <= MAX_REPLY_ADDRESS ? r : null;
    if ("ping".equals(type)) {
      write(new JsonObject().put("type", "pong"));
      return;
    }
    if (!"send".equals(type)) {
      boolean known = "publish".equals(type) || "register".equals(type) || "unregister".equals(type);
      refuse(known ? ErrorCode.ACCESS_DENIED : ErrorCode.BAD_REQUEST, known ? "access_denied" : "unknown_type",
          replyAddress, frame.length(), type);
      return;
    }
    if (address == null) {
      refuse(ErrorCode.BAD_REQUEST, "missing_address", replyAddress, frame.length(), type);
      return;
    }
    if (!Addresses.BRIDGE_REQUEST.equals(address)) {
      refuse(ErrorCode.ACCESS_DENIED, "access_denied", replyAddress, frame.length(), type);
      return;
    }
    if (replyAddress == null) {
      refuse(ErrorCode.BAD_REQUEST, "reply_address_required", null, frame.length(), type);
      return;
    }
    if (!(msg.getValue("body") instanceof JsonObject body)) {
      // As the bridge answers a malformed request (the client matches it by its reply address).
      refuse(ErrorCode.BAD_REQUEST, "BAD_REQUEST: the request body must be a JSON object", replyAddress, frame.length(),
          type);
      return;
    }
    request(body, replyAddress);
  }

  private void request(JsonObject body, String replyAddress) {
    inFlight++;
    if (inFlight >= settings.maxInFlight()) {
      pause();
    }
    vertx.eventBus().<Object>request(Addresses.BRIDGE_REQUEST, body, delivery)
        .onComplete(ar -> replied(ar, replyAddress));
  }

  private void replied(AsyncResult<Message<Object>> ar, String replyAddress) {
    inFlight--;
    if (closed) {
      return;
    }
    JsonObject frame = new JsonObject().put("type", ar.succeeded() ? "message" : "err").put("address", replyAddress);
    if (ar.succeeded()) {
      frame.put("body", ar.result().body());
    } else if (ar.cause() instanceof ReplyException re) {
      frame.put("sourceAddress", Addresses.BRIDGE_REQUEST)
          .put("failureCode", re.failureCode())
          .put("failureType", re.failureType().name())
          .put("message", re.getMessage());
    } else {
      frame.put("failureCode", ErrorCode.INTERNAL.code()).put("failureType", "RECIPIENT_FAILURE")
          .put("message", ErrorCode.INTERNAL.name() + ": the bridge could not handle the request");
    }
    write(frame);
    resumeIfRoom();
  }

  /** An {@code err} frame for a frame the endpoint will not forward; logged as type and size only. */
  private void refuse(ErrorCode code, String reason, String replyAddress, int size, String type) {
    log.event(EndpointLog.Kind.PROTOCOL, "refused a frame from " + remote + " (" + code.name() + ", type "
        + (type == null ? "none" : safeType(type)) + ", " + size + " bytes)");
    write(errFrame(code, reason, replyAddress));
  }

  private void refuseAndClose(ErrorCode code, String reason) {
    if (closed) {
      return;
    }
    write(errFrame(code, reason, null));
    socket.end();
    closed();
  }

  private static JsonObject errFrame(ErrorCode code, String reason, String replyAddress) {
    JsonObject f = new JsonObject().put("type", "err");
    if (replyAddress != null) {
      f.put("address", replyAddress);
    }
    return f.put("failureCode", code.code()).put("failureType", "RECIPIENT_FAILURE").put("message", reason);
  }

  /** A type is logged only when it is one of the protocol's words: anything else could carry content. */
  private static String safeType(String type) {
    return switch (type) {
      case "send", "publish", "register", "unregister", "ping" -> type;
      default -> "other";
    };
  }

  private void write(JsonObject frame) {
    byte[] json = frame.encode().getBytes(StandardCharsets.UTF_8);
    socket.write(Buffer.buffer(4 + json.length).appendInt(json.length).appendBytes(json));
    if (socket.writeQueueFull()) {
      pause();
    }
  }

  private void pause() {
    if (!paused) {
      paused = true;
      socket.pause();
    }
  }

  private void resumeIfRoom() {
    if (paused && !closed && inFlight < settings.maxInFlight() && !socket.writeQueueFull()) {
      paused = false;
      socket.resume();
    }
  }

  /**
   * Closes the connection when a time limit passed: the TLS handshake, a frame begun but not finished,
   * or idleness (nothing received and no request in flight).
   */
  void sweep(long now) {
    if (closed) {
      return;
    }
    String why = null;
    if (!ready && now - openedAt > TimeUnit.MILLISECONDS.toNanos(settings.handshakeTimeoutMs())) {
      why = "no TLS handshake within bridge.tcp.handshakeTimeoutMs";
    } else if (frameStartedAt != 0 && now - frameStartedAt > TimeUnit.MILLISECONDS.toNanos(settings.frameTimeoutMs())) {
      why = "a frame not complete within bridge.tcp.frameTimeoutMs (" + decoder.buffered() + " bytes in)";
    } else if (inFlight == 0 && now - lastReadAt > TimeUnit.MILLISECONDS.toNanos(settings.idleTimeoutMs())) {
      why = "idle for bridge.tcp.idleTimeoutSeconds";
    }
    if (why != null) {
      log.event(EndpointLog.Kind.TIMEOUT, "closed the connection from " + remote + ": " + why);
      close();
    }
  }

  boolean isClosed() {
    return closed;
  }

  void close() {
    socket.close();
    closed();
  }

  private void closed() {
    boolean first;
    synchronized (this) {
      first = !closed;
      closed = true;
    }
    if (first) {
      onClose.run();
    }
  }
}
