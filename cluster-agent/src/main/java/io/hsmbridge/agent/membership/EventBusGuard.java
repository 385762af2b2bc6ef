package io.hsmbridge.agent.membership;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.EventBusOptions;
import io.vertx.core.eventbus.impl.EventBusImpl;
import io.vertx.core.eventbus.impl.MessageImpl;
import io.vertx.core.eventbus.impl.clustered.ClusteredEventBus;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.net.NetSocket;
import java.io.IOException;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Logger;

/**
 * The public event-bus port, in front of Vert.x's own. Vert.x's clustered event bus buffers whatever length
 * a frame's header announces (vertx-core 5.1.6 {@code InboundConnection} calls
 * {@code RecordParser.fixedSizeMode(buffer.getInt(0))}) and has no option to limit it, so any member of the
 * cluster (an event-bus application holds an application certificate) could make an agent buffer frames of up
 * to 2 GiB and exit on OutOfMemoryError. This server listens on {@code cluster.eventBusPort} with the same
 * mutual TLS, follows every connection's framing ({@link EventBusFrameCheck}) and hands the bytes to Vert.x's
 * own inbound connection code, so messages are decoded and delivered exactly as before. A frame over
 * {@link #maxFrameBytes}, frames that together would hold more than {@link #budgetBytes}, or a frame still
 * incomplete after {@link #frameTimeoutMs} close that connection alone (logged with the peer's certificate
 * subject); the sender's event bus reconnects for its next message. A connection that has not finished its
 * TLS handshake within {@link CertifiedClusterManager#HANDSHAKE_MS} is closed (Vert.x's default is 10 s).
 * Each frame's destination must be one its link's member may send to ({@link AddressPolicy}): an application
 * only to addresses outside hsmbridge's own and to the front doors' client address, a front door not to the
 * cluster-key address nor heartbeats.
 *
 * <p>Vert.x's own server is started on a free loopback port that is advertised to nobody, and closed as soon
 * as the guard listens (a member on the same host could otherwise connect to it past the guard). Reaching
 * Vert.x's inbound code and its server needs its internal classes: they are looked up once, by name, at
 * start, and a Vert.x without them fails the start (not the first message).
 */
final class EventBusGuard {
  private static final Logger LOG = Logger.getLogger(EventBusGuard.class.getName());
  /** The largest reply a front door passes to a client is 16 MiB; a frame adds the message's envelope. */
  static final int DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024 + 64 * 1024;
  static final long DEFAULT_FRAME_TIMEOUT_MS = 30_000;
  private static final String LOOPBACK = "127.0.0.1";

  final int maxFrameBytes = Integer.getInteger("hsmbridge.eventBus.maxFrameBytes", DEFAULT_MAX_FRAME_BYTES);
  /** What all connections' unfinished frames may hold at once: a quarter of the heap, at least one frame. */
  final long budgetBytes = Long.getLong("hsmbridge.eventBus.budgetBytes",
      Math.max(maxFrameBytes, Runtime.getRuntime().maxMemory() / 4));
  final long frameTimeoutMs = Long.getLong("hsmbridge.eventBus.frameTimeoutMs", DEFAULT_FRAME_TIMEOUT_MS);

  private final AtomicLong budget = new AtomicLong(budgetBytes);
  private final Set<Connection> open = ConcurrentHashMap.newKeySet();
  private final VertxInbound inbound;
  private final ClusteredEventBus bus;

  private EventBusGuard(Vertx vertx, VertxInbound inbound) {
    this.bus = (ClusteredEventBus) vertx.eventBus();
    this.inbound = inbound;
  }

  /**
   * Starts the guard on {@code host:publicPort} of a Vert.x built with {@link #internalOptions}; the future
   * fails with CONFIG_INVALID when the port cannot be taken or this Vert.x lacks the internals used.
   */
  static Future<Void> listen(Vertx vertx, EventBusOptions eventBus, String host, int publicPort) {
    EventBusGuard guard;
    try {
      guard = new EventBusGuard(vertx, VertxInbound.lookUp());
    } catch (ReflectiveOperationException | ClassCastException e) {
      return Future.failedFuture(new HsmException(ErrorCode.CONFIG_INVALID,
          "this Vert.x has not the event-bus internals the frame guard needs (built for vertx-core 5.1.6): " + e));
    }
    NetServerOptions options = new NetServerOptions(eventBus.toJson()).setHost(host).setPort(publicPort)
        .setSslHandshakeTimeout(CertifiedClusterManager.HANDSHAKE_MS)
        .setSslHandshakeTimeoutUnit(TimeUnit.MILLISECONDS);
    long sweepMs = Math.max(100, Math.min(5_000, guard.frameTimeoutMs / 4));
    return vertx.createNetServer(options).connectHandler(guard::accept).listen()
        .compose(s -> guard.inbound.closeVertxServer(guard.bus))
        .onSuccess(s -> vertx.setPeriodic(sweepMs, t -> guard.closeStalledFrames()))
        .recover(e -> Future.failedFuture(new HsmException(ErrorCode.CONFIG_INVALID,
            "cannot listen for event-bus links on " + host + ":" + publicPort + ": " + e.getMessage(), null, null, e)))
        .mapEmpty();
  }

  /**
   * The event-bus options Vert.x itself is built with: its own server on {@code internalPort} of loopback, the
   * guard's port advertised to the other members.
   */
  static EventBusOptions internalOptions(EventBusOptions eventBus, int publicPort, int internalPort) {
    return new EventBusOptions(eventBus).setHost(LOOPBACK).setPort(internalPort).setClusterPublicPort(publicPort);
  }

  /**
   * The guard's port ({@code configured}, or a free one on {@code host} when it is 0) and a free loopback port
   * for Vert.x's own server, found while both are held, so they differ. The guard can only listen once the
   * clustered Vert.x exists, and that Vert.x must be told the port it advertises before. So a guard port found
   * free stays held (a listening socket) until the guard takes it ({@link Ports#handOver}): found and released at
   * once, it was free for the seconds of the cluster join, and an outgoing connection (Raft retries a stopped
   * peer many times a second) was once given it as its local port; that member's start failed (seen in CI).
   * Vert.x's own server gets its port explicitly (with port 0 it was once given the guard's), released here:
   * Vert.x takes it at once, as it is built.
   */
  static Ports ports(String host, int configured) {
    ServerSocket guard = null;
    try (ServerSocket own = new ServerSocket(0, 1, InetAddress.getByName(LOOPBACK))) {
      guard = configured != 0 ? null : new ServerSocket(0, 1, InetAddress.getByName(host));
      return new Ports(guard == null ? configured : guard.getLocalPort(), own.getLocalPort(), guard);
    } catch (IOException e) {
      closeQuietly(guard);
      throw new HsmException(ErrorCode.CONFIG_INVALID, "no free port for event-bus links on " + host + ": " + e);
    }
  }

  /** The ports {@link #ports} found; the guard's, when it was found free, held until {@link #handOver}. */
  static final class Ports {
    final int guard;
    final int internal;
    private ServerSocket held;

    private Ports(int guard, int internal, ServerSocket held) {
      this.guard = guard;
      this.internal = internal;
      this.held = held;
    }

    /** Frees the guard's port, right before the guard listens on it (or when the start fails). */
    synchronized void handOver() {
      closeQuietly(held);
      held = null;
    }
  }

  private static void closeQuietly(ServerSocket s) {
    if (s != null) {
      try {
        s.close();
      } catch (IOException e) {
        // nothing held any more either way
      }
    }
  }

  /** Vert.x's own event-bus server of {@code vertx} (closed once the guard listens); for tests. */
  static io.vertx.core.net.NetServer vertxServer(Vertx vertx) throws ReflectiveOperationException {
    java.lang.reflect.Field f = ClusteredEventBus.class.getDeclaredField("server");
    f.setAccessible(true);
    return (io.vertx.core.net.NetServer) f.get(vertx.eventBus());
  }

  private void accept(NetSocket socket) {
    Handler<Buffer> vertxSide;
    try {
      vertxSide = inbound.open(bus, socket);
    } catch (Throwable e) {
      LOG.severe("event bus: cannot hand a link to Vert.x (" + e + "); closing it");
      socket.close();
      return;
    }
    Connection c = new Connection(socket, new EventBusFrameCheck(maxFrameBytes, budget, addressRule(socket)));
    open.add(c);
    socket.closeHandler(v -> {
      open.remove(c);
      c.check.release();
    });
    socket.handler(chunk -> {
      if (c.refused) {
        return;
      }
      String refusal = c.check.admit(chunk);
      if (refusal != null) {
        c.refuse(refusal);
        return;
      }
      vertxSide.handle(chunk);
    });
  }

  /** Where a link's frames may go, by its member's kind ({@link AddressPolicy#sendRule}). */
  static java.util.function.Predicate<String> addressRule(NetSocket socket) {
    return AddressPolicy.sendRule(kindOf(socket));
  }

  private static ClusterCa.MemberKind kindOf(NetSocket socket) {
    java.security.cert.X509Certificate leaf = peerCertificate(socket);
    return leaf == null ? null : ClusterCa.MemberKind.of(leaf);
  }

  /** The certificate the link's member authenticated with, or null when there is none to read. */
  private static java.security.cert.X509Certificate peerCertificate(NetSocket socket) {
    try {
      return (java.security.cert.X509Certificate) socket.peerCertificates().get(0);
    } catch (Exception e) {
      return null;
    }
  }

  private void closeStalledFrames() {
    long now = System.nanoTime();
    long timeout = TimeUnit.MILLISECONDS.toNanos(frameTimeoutMs);
    for (Connection c : open) {
      if (c.check.frameOlderThan(timeout, now)) {
        c.refuse("a frame still incomplete after " + frameTimeoutMs + " ms");
      }
    }
  }

  /** One inbound link and its framing. */
  private static final class Connection {
    final NetSocket socket;
    final EventBusFrameCheck check;
    volatile boolean refused;

    Connection(NetSocket socket, EventBusFrameCheck check) {
      this.socket = socket;
      this.check = check;
    }

    void refuse(String why) {
      if (refused) {
        return;
      }
      refused = true;
      LOG.warning("event bus: closed the link from " + socket.remoteAddress() + " (" + peer(socket) + "): " + why);
      socket.close();
    }

    private static String peer(NetSocket socket) {
      java.security.cert.X509Certificate leaf = peerCertificate(socket);
      return leaf == null ? "no certificate" : leaf.getSubjectX500Principal().getName();
    }
  }

  /**
   * Vert.x's inbound link code, reached by reflection: {@code InboundConnection} is package-private, and so
   * is the handler that delivers a decoded message here ({@code EventBusImpl.deliverMessageLocally}, protected).
   * This is what {@code ClusteredEventBus.start} wires for each connection its own server accepts.
   */
  private static final class VertxInbound {
    private final Constructor<?> create;
    private final Method setHandler;
    private final MethodHandle deliver;
    private final java.lang.reflect.Field server;

    private VertxInbound(Constructor<?> create, Method setHandler, MethodHandle deliver, java.lang.reflect.Field server) {
      this.create = create;
      this.setHandler = setHandler;
      this.deliver = deliver;
      this.server = server;
    }

    static VertxInbound lookUp() throws ReflectiveOperationException {
      Class<?> type = Class.forName("io.vertx.core.eventbus.impl.clustered.InboundConnection");
      Constructor<?> create = type.getDeclaredConstructor(ClusteredEventBus.class, NetSocket.class);
      create.setAccessible(true);
      Method setHandler = type.getDeclaredMethod("handler", Handler.class);
      setHandler.setAccessible(true);
      Method deliver = EventBusImpl.class.getDeclaredMethod("deliverMessageLocally", MessageImpl.class);
      deliver.setAccessible(true);
      java.lang.reflect.Field server = ClusteredEventBus.class.getDeclaredField("server");
      server.setAccessible(true);
      return new VertxInbound(create, setHandler, MethodHandles.lookup().unreflect(deliver), server);
    }

    Future<Void> closeVertxServer(ClusteredEventBus bus) {
      try {
        return ((io.vertx.core.net.NetServer) server.get(bus)).close();
      } catch (ReflectiveOperationException e) {
        return Future.failedFuture(e);
      }
    }

    @SuppressWarnings("unchecked")
    Handler<Buffer> open(ClusteredEventBus bus, NetSocket socket) throws ReflectiveOperationException {
      Object connection = create.newInstance(bus, socket);
      Handler<MessageImpl<?, ?>> delivery = message -> {
        try {
          deliver.invoke((EventBusImpl) bus, message);
        } catch (Throwable e) {
          LOG.warning("event bus: delivering a message failed: " + e);
        }
      };
      setHandler.invoke(connection, delivery);
      return (Handler<Buffer>) connection;
    }
  }
}
