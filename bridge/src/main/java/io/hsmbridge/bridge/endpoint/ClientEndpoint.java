package io.hsmbridge.bridge.endpoint;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.net.NetSocket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;

/**
 * The client endpoint: the TCP event-bus bridge protocol (4-byte length, JSON frame; see
 * docs/protocol.md) on a Vert.x {@link NetServer} of its own, so that every input is bounded before it
 * costs memory: connections are counted (in all and per remote address) before the TLS handshake, a
 * frame's length is checked before its body is buffered, and idle, slow and half-done connections are
 * closed by a sweep once a second. Only {@code send} to the bridge's request address gets through
 * ({@link EndpointConnection}); nothing of a frame's content is ever logged.
 *
 * <p>Thread-safe: connections run on their event loops; the sweep and the counters are safe across them.
 */
public final class ClientEndpoint {
  private static final Logger LOG = Logger.getLogger(ClientEndpoint.class.getName());
  static final long SWEEP_MS = 1000;

  private final Vertx vertx;
  private final EndpointSettings settings;
  private final NetServer server;
  private final ConnectionLimits limits;
  private final EndpointLog log = new EndpointLog(LOG);
  private final Set<EndpointConnection> connections = ConcurrentHashMap.newKeySet();
  private long sweepTimer = -1;
  private int port;

  private ClientEndpoint(Vertx vertx, EndpointSettings settings) {
    this.vertx = vertx;
    this.settings = settings;
    this.limits = new ConnectionLimits(settings.maxConnections(), settings.maxConnectionsPerAddress());
    NetServerOptions options = new NetServerOptions()
        .setTcpNoDelay(true)
        .setReuseAddress(true)
        .setTcpKeepAlive(true);
    if (settings.tlsEnabled()) {
      EndpointTls.configure(options, settings.tls(), settings.handshakeTimeoutMs());
    }
    this.server = vertx.createNetServer(options).connectHandler(this::accept);
  }

  /** Starts listening on the settings' host and port (0: a free one, see {@link #port()}). */
  public static Future<ClientEndpoint> start(Vertx vertx, EndpointSettings settings) {
    ClientEndpoint endpoint = new ClientEndpoint(vertx, settings);
    Future<Void> warm = settings.tlsEnabled() ? vertx.executeBlocking(ClientEndpoint::warmUpTls) : Future.succeededFuture();
    return warm.compose(v -> endpoint.server.listen(settings.port(), settings.host())).map(s -> {
      endpoint.port = s.actualPort();
      endpoint.sweepTimer = vertx.setPeriodic(SWEEP_MS, id -> endpoint.sweep());
      return endpoint;
    });
  }

  public int port() {
    return port;
  }

  /**
   * Netty's server SSL context class checks, once, in its static initialiser, what the JDK supports by
   * loading an RSA key: seconds on a busy host. It would run on the event loop at the first client's TLS
   * upgrade and stall every connection of that loop; run it here, on a worker, before listening.
   */
  private static Void warmUpTls() throws ClassNotFoundException {
    Class.forName("io.netty.handler.ssl.JdkSslServerContext", true, ClientEndpoint.class.getClassLoader());
    return null;
  }

  public EndpointSettings settings() {
    return settings;
  }

  /** Connections open now (admitted ones). */
  public int openConnections() {
    return limits.open();
  }

  /** Stops accepting and closes every connection. */
  public Future<Void> close() {
    if (sweepTimer >= 0) {
      vertx.cancelTimer(sweepTimer);
    }
    connections.forEach(EndpointConnection::close);
    return server.close();
  }

  private void accept(NetSocket socket) {
    String address = socket.remoteAddress() == null ? "unknown" : socket.remoteAddress().hostAddress();
    ConnectionLimits.Refusal refusal = limits.admit(address);
    if (refusal != null) {
      // Before any TLS work and before a byte is read: a flood costs an accept and a close.
      log.refused(refusal, address);
      socket.close();
      return;
    }
    EndpointConnection c = new EndpointConnection(vertx, socket, address, settings, log, () -> released(address));
    connections.add(c);
    c.start();
  }

  private void released(String address) {
    limits.release(address);
  }

  void forget(EndpointConnection c) {
    connections.remove(c);
  }

  private void sweep() {
    long now = System.nanoTime();
    for (EndpointConnection c : connections) {
      if (c.isClosed()) {
        connections.remove(c);
      } else {
        c.sweep(now);
      }
    }
    log.flushSummaries();
  }

  @Override
  public String toString() {
    return "ClientEndpoint[" + settings.host() + ":" + port + (settings.tlsEnabled() ? ", TLS" : ", plaintext") + "]";
  }
}
