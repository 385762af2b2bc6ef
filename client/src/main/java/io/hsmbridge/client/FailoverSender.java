package io.hsmbridge.client;

import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.logging.Logger;

/**
 * A {@link RequestSender} over one connection at a time to one of several endpoints: it connects on first
 * use, and after a lost connection it connects again, to the same endpoint or the next one that answers.
 * At each connection it learns the cluster's other front doors ({@code cluster.status}, "frontDoors").
 * It never sends a request twice by itself ({@link RetryingSender} decides that); it tells apart what it
 * knows about a failed request:
 * <ul>
 *   <li>no endpoint could be reached: the request was not sent ({@code NO_HSM_AVAILABLE});
 *   <li>the connection was lost while the request was in flight: it may or may not have been executed
 *       ({@code OUTCOME_UNKNOWN}, the requestId in the message);
 *   <li>anything the server answered is passed on as it is.
 * </ul>
 * Thread-safe.
 */
public final class FailoverSender implements RequestSender, AutoCloseable {
  private static final Logger LOG = Logger.getLogger(FailoverSender.class.getName());

  /** One endpoint: host and port. */
  public record Endpoint(String host, int port) {
    public Endpoint {
      Objects.requireNonNull(host, "host");
      if (port < 1 || port > 65535) {
        throw new IllegalArgumentException("port must be 1..65535");
      }
    }

    /**
     * Parses {@code host:port} (IPv6 as {@code [addr]:port}).
     *
     * @throws IllegalArgumentException naming the expected form
     */
    public static Endpoint of(String hostPort) {
      Endpoint e = hostPort == null ? null : parse(hostPort.trim());
      if (e == null) {
        throw new IllegalArgumentException("'" + hostPort + "' is not host:port (IPv6: [addr]:port)");
      }
      return e;
    }

    @Override
    public String toString() {
      return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
  }

  /** In the message of a failure to reach any endpoint: the request did not leave this process. */
  static final String NOTHING_SENT = "nothing was sent";

  /** Most endpoints kept (given and learnt). */
  static final int MAX_ENDPOINTS = 32;

  private final List<Endpoint> endpoints;
  private final Duration requestTimeout;
  private final ClientTls tls;
  private BridgeClient current;
  private int next;
  private boolean closed;

  /**
   * @param tls the CA to pin, or null for plaintext (loopback endpoints with {@code bridge.tls=false})
   */
  public FailoverSender(List<Endpoint> endpoints, Duration requestTimeout, ClientTls tls) {
    this(endpoints, requestTimeout, tls, null);
  }

  /** @param connected a connection to the first endpoint, already open (it becomes this sender's) */
  public FailoverSender(List<Endpoint> endpoints, Duration requestTimeout, ClientTls tls, BridgeClient connected) {
    if (endpoints.isEmpty()) {
      throw new IllegalArgumentException("at least one endpoint");
    }
    this.endpoints = new java.util.concurrent.CopyOnWriteArrayList<>(endpoints);
    this.requestTimeout = Objects.requireNonNull(requestTimeout, "requestTimeout");
    this.tls = tls;
    this.current = connected;
  }

  @Override
  public JsonObject request(JsonObject body) {
    BridgeClient client = client();
    try {
      return client.request(body);
    } catch (HsmBridgeException e) {
      if (client.isOpen()) {
        throw e; // the server's answer
      }
      forget(client);
      String requestId = body.getValue("requestId") instanceof String id ? id : null;
      throw HsmBridgeException.connectionLost(ErrorCode.OUTCOME_UNKNOWN, "the connection was lost while "
          + body.getValue("op") + " was in flight (" + e.getMessage() + ")"
          + (requestId != null ? "; requestId " + requestId : ""), e);
    }
  }

  /** The open connection, or a new one to the first endpoint that answers (starting after the last used). */
  private synchronized BridgeClient client() {
    if (closed) {
      throw new HsmBridgeException(ErrorCode.NO_HSM_AVAILABLE, "client closed");
    }
    if (current != null && current.isOpen()) {
      return current;
    }
    List<String> failures = new ArrayList<>();
    for (int i = 0; i < endpoints.size(); i++) {
      Endpoint e = endpoints.get((next + i) % endpoints.size());
      try {
        current = tls == null ? BridgeClient.connect(e.host(), e.port(), requestTimeout)
            : BridgeClient.connect(e.host(), e.port(), requestTimeout, tls);
        next = (next + i) % endpoints.size();
        learnFrontDoors(current);
        if (!failures.isEmpty() || endpoints.size() > 1) {
          LOG.fine(() -> "connected to hsmbridge at " + e);
        }
        return current;
      } catch (HsmBridgeException ex) {
        failures.add(e + ": " + ex.getMessage());
      }
    }
    throw HsmBridgeException.connectionLost(ErrorCode.NO_HSM_AVAILABLE, "no endpoint answered (" + NOTHING_SENT
        + "): " + String.join("; ", failures), null);
  }

  /**
   * Adds the front doors the cluster names ({@code cluster.status}: every serving HSM host that serves
   * clients) to the endpoints, so that a client given one endpoint can go elsewhere when it is lost. Each is
   * still reached over the same TLS, pinning the same CA. Best effort: a front door that does not say is
   * fine.
   */
  private void learnFrontDoors(BridgeClient client) {
    try {
      JsonObject status = client.request(new JsonObject().put("op", "cluster.status"));
      if (status.getValue("frontDoors") instanceof io.vertx.core.json.JsonArray doors) {
        for (Object d : doors) {
          Endpoint e = d instanceof String s ? parse(s) : null;
          if (e != null && !endpoints.contains(e) && endpoints.size() < MAX_ENDPOINTS) {
            endpoints.add(e);
            LOG.fine(() -> "learnt the front door " + e);
          }
        }
      }
    } catch (RuntimeException e) { // HsmBridgeException included
      LOG.fine(() -> "the cluster did not name its front doors: " + e.getMessage());
    }
  }

  /** {@code host:port} (IPv6 as {@code [addr]:port}), or null when it is not one. */
  static Endpoint parse(String hostPort) {
    int colon = hostPort.lastIndexOf(':');
    if (colon <= 0 || colon == hostPort.length() - 1) {
      return null;
    }
    String host = hostPort.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    try {
      return new Endpoint(host, Integer.parseInt(hostPort.substring(colon + 1)));
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  private synchronized void forget(BridgeClient client) {
    if (current == client) {
      current = null;
      next = (next + 1) % endpoints.size(); // the next connection tries the other endpoints first
    }
    client.close();
  }

  @Override
  public synchronized void close() {
    closed = true;
    if (current != null) {
      current.close();
      current = null;
    }
  }

  @Override
  public String toString() {
    return "FailoverSender" + endpoints;
  }
}
