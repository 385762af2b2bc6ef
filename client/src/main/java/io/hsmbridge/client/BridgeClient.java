package io.hsmbridge.client;

import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonObject;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A connection to the hsmbridge TCP event-bus bridge, over a plain blocking socket (no Vert.x event
 * loop).
 *
 * <p>Thread-safe and pipelined: any number of threads may call {@link #request} or
 * {@link #requestAsync} at once. Each request gets a unique reply address; one reader thread matches
 * replies to requests, so replies may arrive in any order. Every request fails after the configured
 * timeout with {@link ErrorCode#TIMEOUT}; losing the connection fails every pending request with
 * {@link ErrorCode#NO_HSM_AVAILABLE}, and the client stays closed (open a new one to reconnect).
 */
public final class BridgeClient implements RequestSender, AutoCloseable {
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(30);
  public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(5);

  private final Socket socket;
  private final OutputStream out;
  private final DataInputStream in;
  private final String where;
  private final Duration timeout;
  private final String replyPrefix = "hsmbridge.client." + UUID.randomUUID() + ".";
  private final AtomicLong sequence = new AtomicLong();
  private final Map<String, Pending> pending = new ConcurrentHashMap<>();
  private final Object writeLock = new Object();
  private final ScheduledThreadPoolExecutor timers;
  private final Thread reader;
  private volatile HsmBridgeException closedBecause;

  private record Pending(long seq, CompletableFuture<JsonObject> future) {}

  private BridgeClient(Socket socket, String where, Duration timeout) throws IOException {
    this.socket = socket;
    this.where = where;
    this.timeout = timeout;
    this.out = new BufferedOutputStream(socket.getOutputStream(), 64 * 1024);
    this.in = new DataInputStream(new BufferedInputStream(socket.getInputStream(), 64 * 1024));
    this.timers = new ScheduledThreadPoolExecutor(1, r -> daemon(r, "hsmbridge-client-timer " + where));
    this.timers.setRemoveOnCancelPolicy(true);
    this.reader = daemon(this::readLoop, "hsmbridge-client-reader " + where);
    this.reader.start();
  }

  /** Connects with the default request timeout (30 s). */
  public static BridgeClient connect(String host, int port) {
    return connect(host, port, DEFAULT_TIMEOUT);
  }

  /**
   * Connects to the bridge's TCP endpoint.
   *
   * @param requestTimeout how long each request may take before it fails with TIMEOUT
   * @throws HsmBridgeException NO_HSM_AVAILABLE when the endpoint cannot be reached
   */
  public static BridgeClient connect(String host, int port, Duration requestTimeout) {
    Objects.requireNonNull(host, "host");
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("port out of range: " + port);
    }
    if (requestTimeout == null || requestTimeout.isNegative() || requestTimeout.isZero()) {
      throw new IllegalArgumentException("request timeout must be positive");
    }
    String where = host + ":" + port;
    Socket s = new Socket();
    try {
      s.setTcpNoDelay(true);
      s.setKeepAlive(true);
      s.connect(new InetSocketAddress(host, port), (int) DEFAULT_CONNECT_TIMEOUT.toMillis());
      return new BridgeClient(s, where, requestTimeout);
    } catch (IOException e) {
      closeQuietly(s);
      throw new HsmBridgeException(
          ErrorCode.NO_HSM_AVAILABLE, "cannot connect to hsmbridge at " + where + ": " + e.getMessage());
    }
  }

  /** The per-request timeout. */
  public Duration timeout() {
    return timeout;
  }

  /** False once the connection was lost or closed. */
  public boolean isOpen() {
    return closedBecause == null;
  }

  /**
   * Sends a request and completes with the reply body, or exceptionally with an
   * {@link HsmBridgeException}. Never blocks on the network beyond writing the frame.
   */
  public CompletableFuture<JsonObject> requestAsync(JsonObject body) {
    Objects.requireNonNull(body, "body");
    CompletableFuture<JsonObject> future = new CompletableFuture<>();
    HsmBridgeException closed = closedBecause;
    if (closed != null) {
      future.completeExceptionally(closed);
      return future;
    }
    long seq = sequence.incrementAndGet();
    String replyAddress = replyPrefix + seq;
    pending.put(replyAddress, new Pending(seq, future));
    ScheduledFuture<?> timer;
    try {
      timer = timers.schedule(
          () -> fail(replyAddress, new HsmBridgeException(ErrorCode.TIMEOUT,
              "no reply from hsmbridge within " + timeout.toMillis() + " ms")),
          timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (RejectedExecutionException e) {
      fail(replyAddress, closedBecause != null ? closedBecause
          : new HsmBridgeException(ErrorCode.NO_HSM_AVAILABLE, "client closed"));
      return future;
    }
    future.whenComplete((r, e) -> timer.cancel(false));
    // close() may have run between the check above and put(): do not leave the request hanging.
    closed = closedBecause;
    if (closed != null) {
      fail(replyAddress, closed);
      return future;
    }
    JsonObject frame = new JsonObject()
        .put("type", "send")
        .put("address", Addresses.BRIDGE_REQUEST)
        .put("replyAddress", replyAddress)
        .put("headers", new JsonObject())
        .put("body", body);
    byte[] bytes;
    try {
      bytes = FrameCodec.encode(frame);
    } catch (IllegalArgumentException e) {
      fail(replyAddress, new HsmBridgeException(ErrorCode.INPUT_TOO_LARGE, e.getMessage()));
      return future;
    }
    try {
      synchronized (writeLock) {
        out.write(bytes);
        out.flush();
      }
    } catch (IOException e) {
      shutdown(new HsmBridgeException(ErrorCode.NO_HSM_AVAILABLE,
          "connection to hsmbridge at " + where + " lost: " + e.getMessage()));
    }
    return future;
  }

  /**
   * Sends a request and waits for the reply (at most the configured timeout).
   *
   * @throws HsmBridgeException with the server's error code, TIMEOUT or NO_HSM_AVAILABLE
   */
  @Override
  public JsonObject request(JsonObject body) {
    try {
      return requestAsync(body).get();
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof HsmBridgeException h) {
        // Re-create so the stack trace shows this caller, not the reader thread.
        throw new HsmBridgeException(h.code(), h.getMessage(), h);
      }
      throw new HsmBridgeException(ErrorCode.INTERNAL, String.valueOf(c), c);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new HsmBridgeException(ErrorCode.INTERNAL, "interrupted while waiting for hsmbridge");
    }
  }

  /** Closes the connection; pending requests fail with NO_HSM_AVAILABLE. Idempotent. */
  @Override
  public void close() {
    shutdown(new HsmBridgeException(ErrorCode.NO_HSM_AVAILABLE, "client closed"));
  }

  private void readLoop() {
    HsmBridgeException why;
    try {
      JsonObject frame;
      while ((frame = FrameCodec.read(in)) != null) {
        dispatch(frame);
      }
      why = new HsmBridgeException(ErrorCode.NO_HSM_AVAILABLE,
          "hsmbridge at " + where + " closed the connection");
    } catch (IOException | RuntimeException e) {
      why = new HsmBridgeException(ErrorCode.NO_HSM_AVAILABLE,
          "connection to hsmbridge at " + where + " lost: " + e.getMessage());
    }
    shutdown(why);
  }

  private void dispatch(JsonObject frame) {
    String type = frame.getValue("type") instanceof String t ? t : "";
    Object addr = frame.getValue("address");
    String address = addr instanceof String a ? a : null;
    switch (type) {
      case "message" -> {
        Object body = frame.getValue("body");
        Pending p = address == null ? null : pending.remove(address);
        if (p == null) {
          return; // a late reply to a request that already timed out
        }
        if (body instanceof JsonObject b) {
          p.future().complete(b);
        } else {
          p.future().completeExceptionally(
              new HsmBridgeException(ErrorCode.INTERNAL, "reply body is not a JSON object"));
        }
      }
      case "err" -> {
        Object fc = frame.getValue("failureCode");
        Object ft = frame.getValue("failureType");
        Object msg = frame.getValue("message");
        if (address != null && pending.containsKey(address)) {
          fail(address, HsmBridgeException.fromFailure(
              fc instanceof Number n ? n.intValue() : null,
              ft instanceof String s ? s : null,
              msg instanceof String s ? s : null));
        } else {
          // The bridge rejects a frame it will not forward (e.g. "access_denied") without naming
          // it. It answers frames in order, one err per rejected frame: fail the oldest request.
          String oldest = oldestPending();
          if (oldest != null) {
            fail(oldest, new HsmBridgeException(ErrorCode.BAD_REQUEST,
                "the bridge rejected the request: " + (msg instanceof String s ? s : "unknown reason")));
          }
        }
      }
      default -> {
        // "pong" and anything newer: nothing waits for it.
      }
    }
  }

  private String oldestPending() {
    String best = null;
    long bestSeq = Long.MAX_VALUE;
    for (Map.Entry<String, Pending> e : pending.entrySet()) {
      if (e.getValue().seq() < bestSeq) {
        bestSeq = e.getValue().seq();
        best = e.getKey();
      }
    }
    return best;
  }

  private void fail(String replyAddress, HsmBridgeException e) {
    Pending p = pending.remove(replyAddress);
    if (p != null) {
      p.future().completeExceptionally(e);
    }
  }

  private void shutdown(HsmBridgeException why) {
    synchronized (this) {
      if (closedBecause != null) {
        return;
      }
      closedBecause = why;
    }
    closeQuietly(socket);
    for (String address : pending.keySet()) {
      fail(address, why);
    }
    timers.shutdownNow();
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // nothing useful to do: the socket is going away either way
    }
  }

  private static Thread daemon(Runnable r, String name) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    return t;
  }
}
