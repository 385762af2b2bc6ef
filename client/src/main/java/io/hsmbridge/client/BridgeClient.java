package io.hsmbridge.client;

import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonObject;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A connection to the hsmbridge TCP event-bus bridge, over a plain blocking socket (no Vert.x event
 * loop).
 *
 * <p>Thread-safe and pipelined: any number of threads may call {@link #request} or
 * {@link #requestAsync} at once. Each request gets a unique reply address and replies are matched
 * by it, so they may arrive in any order. Every request fails after the configured timeout with
 * {@link ErrorCode#TIMEOUT}; losing the connection fails every pending request with
 * {@link ErrorCode#NO_HSM_AVAILABLE}, and the client stays closed (open a new one to reconnect).
 *
 * <p>Reading is leader/follower: exactly one thread at a time (the <em>leader</em>) reads frames and
 * completes the request each one answers, whoever sent it. A thread blocked in {@link #request} that
 * finds nobody reading becomes the leader itself, so its own reply costs one wake-up (the socket's)
 * instead of two (socket → reader thread → caller). When its reply is in, it hands the role to a
 * thread waiting in {@link #request}, or, if only asynchronous requests are left, to the client's
 * background reader thread; with nothing pending nobody reads. Consequently an asynchronous
 * request's completion (and any callback attached to it without an executor) may run on a thread
 * that is waiting in {@link #request}, not only on the reader thread: attach blocking work with
 * the {@code ...Async} variants of {@link CompletableFuture}.
 */
public final class BridgeClient implements RequestSender, AutoCloseable {
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(30);
  public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(5);
  /** A TLS handshake on a busy host (key exchange, certificate checks, a cold JIT) may take a while. */
  public static final Duration DEFAULT_HANDSHAKE_TIMEOUT = Duration.ofSeconds(15);
  /**
   * How long one read may block before the leader looks up (its own request timed out, it was
   * interrupted, a waiting caller should take over): the precision of timeouts of blocking calls.
   */
  static final int POLL_MS = 20;
  /**
   * A connection with no request for this long sends a {@code ping}, so that the endpoint's idle timeout
   * (5 minutes by default) does not close a client that is merely quiet.
   */
  static final long KEEPALIVE_MS = 60_000;

  private final Socket socket;
  private final OutputStream out;
  private final FrameReader frames;
  private final String where;
  private final Duration timeout;
  private final String replyPrefix = "hsmbridge.client." + UUID.randomUUID() + ".";
  private final AtomicLong sequence = new AtomicLong();
  private final Map<String, Pending> pending = new ConcurrentHashMap<>();
  /** Pending requests sent with {@link #requestAsync}: nobody blocks on them, someone must read. */
  private final AtomicInteger asyncPending = new AtomicInteger();
  private final Object writeLock = new Object();
  private final ScheduledThreadPoolExecutor timers;
  private final Thread reader;
  private final boolean tls;
  private volatile long lastWriteNanos = System.nanoTime();
  private volatile HsmBridgeException closedBecause;

  /** Guards {@link #leader} and {@link #followers}. */
  private final ReentrantLock role = new ReentrantLock();
  private final Condition readerWanted = role.newCondition();
  /** The thread that may read from the socket now, or null when nobody reads. */
  private Thread leader;
  /** Threads blocked in {@link #request}, oldest first, that may be handed the reading role. */
  private final ArrayDeque<Waiter> followers = new ArrayDeque<>();

  private record Pending(long seq, boolean async, CompletableFuture<JsonObject> future) {}

  /** A request sent by {@link #request}: the caller enforces its deadline itself. */
  private record Sent(String replyAddress, long deadlineNanos, CompletableFuture<JsonObject> future) {}

  /** A thread blocked in {@link #request}; {@code queued} is guarded by {@link #role}. */
  private static final class Waiter {
    final Thread thread;
    final CompletableFuture<JsonObject> future;
    boolean queued;

    Waiter(Thread thread, CompletableFuture<JsonObject> future) {
      this.thread = thread;
      this.future = future;
    }
  }

  private BridgeClient(Socket socket, String where, Duration timeout, boolean tls) throws IOException {
    this.socket = socket;
    this.tls = tls;
    this.where = where;
    this.timeout = timeout;
    this.out = new BufferedOutputStream(socket.getOutputStream(), 64 * 1024);
    this.frames = new FrameReader(new BufferedInputStream(socket.getInputStream(), 64 * 1024));
    this.timers = new ScheduledThreadPoolExecutor(1, r -> daemon(r, "hsmbridge-client-timer " + where));
    this.timers.setRemoveOnCancelPolicy(true);
    this.reader = daemon(this::readLoop, "hsmbridge-client-reader " + where);
    this.reader.start();
    this.timers.scheduleWithFixedDelay(this::keepAlive, KEEPALIVE_MS, KEEPALIVE_MS / 2, TimeUnit.MILLISECONDS);
  }

  /** Connects in plaintext with the default request timeout (30 s): a loopback endpoint with {@code bridge.tls=false}. */
  public static BridgeClient connect(String host, int port) {
    return connect(host, port, DEFAULT_TIMEOUT);
  }

  /**
   * Connects in plaintext: only for an endpoint on loopback that runs with {@code bridge.tls=false} or a
   * {@code bridge.tcp.loopbackPlaintextPort} (every endpoint reachable from other machines runs TLS).
   *
   * @param requestTimeout how long each request may take before it fails with TIMEOUT
   * @throws HsmBridgeException NO_HSM_AVAILABLE when the endpoint cannot be reached
   */
  public static BridgeClient connect(String host, int port, Duration requestTimeout) {
    return connect(host, port, requestTimeout, null);
  }

  /**
   * Connects to the bridge's client endpoint over TLS (when {@code tls} is not null), trusting only the CA
   * that {@code tls} pins.
   *
   * @param requestTimeout how long each request may take before it fails with TIMEOUT
   * @param tls the pinned cluster CA and optional client certificate, or null for plaintext (loopback only)
   * @throws HsmBridgeException NO_HSM_AVAILABLE when the endpoint cannot be reached or the TLS handshake
   *     fails (the message says why: an untrusted server certificate, a refused client certificate, ...)
   */
  public static BridgeClient connect(String host, int port, Duration requestTimeout, ClientTls tls) {
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
      if (s.getLocalPort() == s.getPort() && s.getLocalAddress().equals(s.getInetAddress())) {
        // Connected to itself (TCP simultaneous open on loopback): nobody listens on that port, and this
        // socket would hold it from the front door about to bind it again after a restart.
        throw new IOException("nobody listens there (the socket connected to itself)");
      }
    } catch (IOException e) {
      closeQuietly(s);
      throw HsmBridgeException.connectionLost(
          ErrorCode.NO_HSM_AVAILABLE, "cannot connect to hsmbridge at " + where + ": " + e.getMessage(), e);
    }
    Socket connected = s;
    try {
      if (tls != null) {
        connected = tls.handshake(s, host, port, (int) DEFAULT_HANDSHAKE_TIMEOUT.toMillis());
      }
      connected.setSoTimeout(POLL_MS);
      return new BridgeClient(connected, where, requestTimeout, tls != null);
    } catch (javax.net.ssl.SSLException e) {
      closeQuietly(connected);
      throw HsmBridgeException.connectionLost(ErrorCode.NO_HSM_AVAILABLE, "TLS handshake with hsmbridge at " + where
          + " failed: " + e.getMessage() + " (the server must hold a certificate of the pinned CA " + tls.ca()
          + " naming " + host + "; a plaintext endpoint fails here too)", e);
    } catch (IOException e) {
      closeQuietly(connected);
      throw HsmBridgeException.connectionLost(ErrorCode.NO_HSM_AVAILABLE, "cannot connect to hsmbridge at " + where
          + (tls != null ? " over TLS" : "") + ": " + e.getMessage(), e);
    }
  }

  /** Sends a {@code ping} frame when nothing was written for {@link #KEEPALIVE_MS}; the pong is ignored. */
  private void keepAlive() {
    if (closedBecause != null || System.nanoTime() - lastWriteNanos < TimeUnit.MILLISECONDS.toNanos(KEEPALIVE_MS)) {
      return;
    }
    try {
      synchronized (writeLock) {
        out.write(FrameCodec.encode(new JsonObject().put("type", "ping")));
        out.flush();
        lastWriteNanos = System.nanoTime();
      }
    } catch (IOException e) {
      shutdown(lost(e));
    }
  }

  /** The per-request timeout. */
  public Duration timeout() {
    return timeout;
  }

  /**
   * False once the connection was lost or closed. A connection lost while no request is pending is
   * noticed by the next request (which fails with NO_HSM_AVAILABLE).
   */
  public boolean isOpen() {
    return closedBecause == null;
  }

  /**
   * Sends a request and completes with the reply body, or exceptionally with an
   * {@link HsmBridgeException}. Never blocks on the network beyond writing the frame.
   */
  public CompletableFuture<JsonObject> requestAsync(JsonObject body) {
    CompletableFuture<JsonObject> future = send(body, true).future();
    if (!future.isDone()) {
      role.lock();
      try {
        if (leader == null && closedBecause == null) {
          leader = reader;
          readerWanted.signal();
        }
      } finally {
        role.unlock();
      }
    }
    return future;
  }

  /**
   * Sends a request and waits for the reply (at most the configured timeout). The calling thread
   * may read the reply itself (see the class comment).
   *
   * @throws HsmBridgeException with the server's error code, TIMEOUT or NO_HSM_AVAILABLE
   */
  @Override
  public JsonObject request(JsonObject body) {
    Sent sent = send(body, false);
    CompletableFuture<JsonObject> future = sent.future();
    if (!future.isDone()) {
      await(sent);
    }
    try {
      return future.join();
    } catch (CompletionException e) {
      Throwable c = e.getCause();
      if (c instanceof HsmBridgeException h) {
        // Re-create so the stack trace shows this caller, not the thread that read the reply.
        throw new HsmBridgeException(h.code(), h.getMessage(), h);
      }
      throw new HsmBridgeException(ErrorCode.INTERNAL, String.valueOf(c), c);
    }
  }

  /** Closes the connection; pending requests fail with NO_HSM_AVAILABLE. Idempotent. */
  @Override
  public void close() {
    shutdown(new HsmBridgeException(ErrorCode.NO_HSM_AVAILABLE, "client closed"));
  }

  /**
   * Registers and writes a request. An asynchronous request gets a timer task that fails it at the
   * timeout; a blocking caller enforces its deadline itself (no timer: scheduling one wakes the
   * timer thread whenever its queue was empty).
   */
  private Sent send(JsonObject body, boolean async) {
    Objects.requireNonNull(body, "body");
    CompletableFuture<JsonObject> future = new CompletableFuture<>();
    long deadline = System.nanoTime() + timeout.toNanos();
    HsmBridgeException closed = closedBecause;
    if (closed != null) {
      future.completeExceptionally(closed);
      return new Sent(null, deadline, future);
    }
    long seq = sequence.incrementAndGet();
    String replyAddress = replyPrefix + seq;
    Sent sent = new Sent(replyAddress, deadline, future);
    if (async) {
      asyncPending.incrementAndGet();
    }
    pending.put(replyAddress, new Pending(seq, async, future));
    if (async) {
      ScheduledFuture<?> timer;
      try {
        timer = timers.schedule(() -> fail(replyAddress, timedOut()), timeout.toMillis(), TimeUnit.MILLISECONDS);
      } catch (RejectedExecutionException e) {
        fail(replyAddress, closedBecause != null ? closedBecause
            : new HsmBridgeException(ErrorCode.NO_HSM_AVAILABLE, "client closed"));
        return sent;
      }
      future.whenComplete((r, e) -> timer.cancel(false));
    }
    // close() may have run between the check above and put(): do not leave the request hanging.
    closed = closedBecause;
    if (closed != null) {
      fail(replyAddress, closed);
      return sent;
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
      if (bytes.length - 4 > FrameCodec.MAX_REQUEST_FRAME_BYTES) {
        throw new IllegalArgumentException("request frame of " + (bytes.length - 4) + " bytes is over the endpoint's "
            + FrameCodec.MAX_REQUEST_FRAME_BYTES + "-byte limit (payloads are at most 64 KiB)");
      }
    } catch (IllegalArgumentException e) {
      fail(replyAddress, new HsmBridgeException(ErrorCode.INPUT_TOO_LARGE, e.getMessage()));
      return sent;
    }
    try {
      synchronized (writeLock) {
        out.write(bytes);
        out.flush();
        lastWriteNanos = System.nanoTime();
      }
    } catch (IOException e) {
      shutdown(lost(e));
    }
    return sent;
  }

  private HsmBridgeException timedOut() {
    return new HsmBridgeException(ErrorCode.TIMEOUT,
        "no reply from hsmbridge within " + timeout.toMillis() + " ms");
  }

  /** Fails a blocking request whose deadline has passed; true if it has. */
  private boolean expire(Sent sent) {
    if (System.nanoTime() - sent.deadlineNanos() < 0) {
      return false;
    }
    fail(sent.replyAddress(), timedOut());
    return true;
  }

  /**
   * Blocks until {@code mine} is done: as the leader, reading frames, or as a follower, parked until
   * the leader completes {@code mine} or hands it the reading role.
   */
  private void await(Sent sent) {
    CompletableFuture<JsonObject> mine = sent.future();
    Thread me = Thread.currentThread();
    if (isLeader(me)) {
      // Already the leader: request() called from a completion this thread runs while reading.
      if (!lead(sent)) {
        throw interrupted();
      }
      return;
    }
    Waiter waiter = new Waiter(me, mine);
    boolean unparkOnCompletion = false;
    try {
      while (!mine.isDone()) {
        HsmBridgeException closed = closedBecause;
        if (closed != null) {
          mine.completeExceptionally(closed);
          return;
        }
        boolean leading;
        role.lock();
        try {
          if (leader == null) {
            leader = me;
          }
          leading = leader == me;
          if (!leading && !waiter.queued) {
            waiter.queued = true;
            followers.add(waiter);
          }
        } finally {
          role.unlock();
        }
        if (leading) {
          boolean ok;
          try {
            ok = lead(sent);
          } finally {
            handOn(me);
          }
          if (!ok) {
            throw interrupted();
          }
        } else {
          if (!unparkOnCompletion) {
            unparkOnCompletion = true;
            mine.whenComplete((r, e) -> LockSupport.unpark(me));
          }
          if (!mine.isDone() && !isLeader(me) && !expire(sent)) {
            LockSupport.parkNanos(this, Math.max(sent.deadlineNanos() - System.nanoTime(), 0));
          }
          if (Thread.interrupted()) {
            throw interrupted();
          }
        }
      }
    } finally {
      role.lock();
      try {
        if (waiter.queued) {
          waiter.queued = false;
          followers.remove(waiter);
        }
      } finally {
        role.unlock();
      }
      handOn(me); // the role may have been handed over just as the request completed
    }
  }

  private static HsmBridgeException interrupted() {
    Thread.currentThread().interrupt();
    return new HsmBridgeException(ErrorCode.INTERNAL, "interrupted while waiting for hsmbridge");
  }

  private boolean isLeader(Thread t) {
    role.lock();
    try {
      return leader == t;
    } finally {
      role.unlock();
    }
  }

  /**
   * Reads and dispatches frames until {@code sent} is done (answered, timed out) or the connection
   * is gone.
   *
   * @return false when the thread was interrupted
   */
  private boolean lead(Sent sent) {
    Thread me = Thread.currentThread();
    while (!sent.future().isDone() && closedBecause == null) {
      if (me.isInterrupted()) {
        return false;
      }
      if (expire(sent)) {
        return true;
      }
      readOne();
    }
    return true;
  }

  /**
   * Gives up the reading role if {@code me} holds it: to the oldest thread waiting in
   * {@link #request}, else to the background reader while asynchronous requests are pending, else to
   * nobody.
   */
  private void handOn(Thread me) {
    role.lock();
    try {
      if (leader != me) {
        return;
      }
      leader = null;
      if (closedBecause != null) {
        return;
      }
      Waiter w;
      while ((w = followers.poll()) != null) {
        w.queued = false;
        if (!w.future.isDone()) {
          leader = w.thread;
          LockSupport.unpark(w.thread);
          return;
        }
      }
      if (asyncPending.get() > 0) {
        leader = reader;
        if (me != reader) {
          readerWanted.signal();
        }
      }
    } finally {
      role.unlock();
    }
  }

  /** The background reader: reads while it holds the role (asynchronous requests pending). */
  private void readLoop() {
    Thread me = Thread.currentThread();
    while (true) {
      role.lock();
      try {
        while (leader != me) {
          if (closedBecause != null) {
            return;
          }
          readerWanted.awaitUninterruptibly();
        }
      } finally {
        role.unlock();
      }
      if (closedBecause == null) {
        readOne();
      }
      handOn(me);
    }
  }

  /** Reads one frame (or times out after {@link #POLL_MS}) and dispatches it; only the leader. */
  private void readOne() {
    try {
      JsonObject frame = frames.poll();
      if (frame != null) {
        dispatch(frame);
      }
    } catch (ConnectionEnded e) {
      shutdown(new HsmBridgeException(ErrorCode.NO_HSM_AVAILABLE,
          "hsmbridge at " + where + " closed the connection" + (tls ? "" : " (an endpoint that runs TLS closes a"
              + " plaintext connection: connect with the cluster CA)")));
    } catch (IOException | RuntimeException e) {
      shutdown(lost(e));
    }
  }

  private HsmBridgeException lost(Exception e) {
    return HsmBridgeException.connectionLost(ErrorCode.NO_HSM_AVAILABLE,
        "connection to hsmbridge at " + where + " lost: " + e.getMessage(), e);
  }

  private void dispatch(JsonObject frame) {
    String type = frame.getValue("type") instanceof String t ? t : "";
    Object addr = frame.getValue("address");
    String address = addr instanceof String a ? a : null;
    switch (type) {
      case "message" -> {
        Object body = frame.getValue("body");
        Pending p = address == null ? null : take(address);
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
          // The bridge rejects a frame it could not read (e.g. "frame_too_large") without naming
          // it. It answers frames in order, one err per rejected frame: fail the oldest request.
          String oldest = oldestPending();
          if (oldest != null) {
            fail(oldest, new HsmBridgeException(fc instanceof Number n ? ErrorCode.fromCode(n.intValue()) : ErrorCode.BAD_REQUEST,
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

  private Pending take(String replyAddress) {
    Pending p = pending.remove(replyAddress);
    if (p != null && p.async()) {
      asyncPending.decrementAndGet();
    }
    return p;
  }

  private void fail(String replyAddress, HsmBridgeException e) {
    Pending p = take(replyAddress);
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
    closeQuietly(socket); // a leader blocked in read() gets an exception and hands on
    for (String address : pending.keySet()) {
      fail(address, why);
    }
    timers.shutdownNow();
    role.lock();
    try {
      readerWanted.signalAll();
    } finally {
      role.unlock();
    }
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

  /** The end of the stream between frames. */
  private static final class ConnectionEnded extends EOFException {
    private static final long serialVersionUID = 1L;
  }

  /**
   * Reads frames across read timeouts: a timeout ({@link #POLL_MS}) returns null and keeps the part
   * of a frame read so far, so the next leader carries on where this one stopped.
   */
  private static final class FrameReader {
    private final InputStream in;
    private final byte[] header = new byte[4];
    private int headerLen;
    private byte[] body;
    private int bodyLen;

    FrameReader(InputStream in) {
      this.in = in;
    }

    JsonObject poll() throws IOException {
      try {
        while (headerLen < 4) {
          int r = in.read(header, headerLen, 4 - headerLen);
          if (r < 0) {
            if (headerLen == 0) {
              throw new ConnectionEnded();
            }
            throw new EOFException("stream ended inside a frame header");
          }
          headerLen += r;
        }
        if (body == null) {
          int n = ((header[0] & 0xff) << 24) | ((header[1] & 0xff) << 16)
              | ((header[2] & 0xff) << 8) | (header[3] & 0xff);
          if (n < 0 || n > FrameCodec.MAX_FRAME_BYTES) {
            throw new IOException("invalid frame length " + Integer.toUnsignedString(n));
          }
          body = new byte[n];
          bodyLen = 0;
        }
        while (bodyLen < body.length) {
          int r = in.read(body, bodyLen, body.length - bodyLen);
          if (r < 0) {
            throw new EOFException("stream ended inside a frame of " + body.length + " bytes");
          }
          bodyLen += r;
        }
      } catch (SocketTimeoutException e) {
        return null;
      }
      byte[] b = body;
      body = null;
      headerLen = 0;
      return FrameCodec.decode(b);
    }
  }
}
