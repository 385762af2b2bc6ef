package io.hsmbridge.bridge.endpoint;

import io.hsmbridge.agent.AgentConfig;
import io.hsmbridge.agent.membership.ClusterConfig;
import io.hsmbridge.pkcs11.HsmException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Locale;
import java.util.Properties;

/**
 * The client endpoint's settings ({@code bridge.tcp.*}, {@code bridge.tls*} in node.properties; see
 * docs/configuration.md). Immutable and validated once; every error is CONFIG_INVALID naming the key.
 *
 * <p>TLS is on unless {@code bridge.tls=false}, and that is accepted on a loopback address only: a node
 * refuses to start a plaintext endpoint that other machines could reach.
 *
 * @param host the address the endpoint binds to
 * @param port its port; 0 picks a free one
 * @param tls the server certificate, key and trust anchor, or null for plaintext (loopback only)
 * @param maxFrameBytes the largest frame accepted, checked from the length header before any byte of
 *     the body is buffered; a larger one closes the connection
 * @param maxConnections connections open at once on this endpoint; more are closed at accept
 * @param maxConnectionsPerAddress connections open at once from one remote IP address
 * @param maxInFlight requests of one connection the bridge works on at once; past it the endpoint stops
 *     reading that connection until replies went out (back-pressure, not an error)
 * @param idleTimeoutMs a connection with no request in flight and nothing received for this long is closed
 * @param handshakeTimeoutMs a connection must finish its TLS handshake within this
 * @param frameTimeoutMs a frame must arrive whole within this once its first byte did (slow senders)
 * @param requestTimeoutMs how long a request may take in the bridge before the client gets TIMEOUT
 * @param loopbackPlaintextPort a second, plaintext listener on 127.0.0.1 with the same limits (for a
 *     benchmark's comparison rows or an application on the same host), -1 for none (the default); 0 picks
 *     a free port
 */
public record EndpointSettings(String host, int port, Tls tls, int maxFrameBytes, int maxConnections,
    int maxConnectionsPerAddress, int maxInFlight, long idleTimeoutMs, long handshakeTimeoutMs,
    long frameTimeoutMs, long requestTimeoutMs, int loopbackPlaintextPort) {

  public static final int DEFAULT_PORT = 7701;
  /** The protocol's largest request is ~90 KiB (64 KiB of data in base64 plus fields): room to spare. */
  public static final int DEFAULT_MAX_FRAME_BYTES = 256 * 1024;
  /**
   * With the frame cap this bounds the memory partial frames can hold: 512 x 256 KiB = 128 MiB, a
   * quarter of the 512 MiB heap {@code ./hsmbridge up} gives a node.
   */
  public static final int DEFAULT_MAX_CONNECTIONS = 512;
  /** An application's connection pool rarely needs more; one address cannot take the whole endpoint. */
  public static final int DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 64;
  public static final int DEFAULT_MAX_IN_FLIGHT = 32;
  /** The Java client sends a ping after 60 s without traffic, so its idle connections stay open. */
  public static final long DEFAULT_IDLE_TIMEOUT_MS = 300_000;
  public static final long DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
  public static final long DEFAULT_FRAME_TIMEOUT_MS = 20_000;
  /** As the Vert.x TCP bridge had it: the client's own 30 s default timeout is the same. */
  public static final long DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

  /**
   * The endpoint's TLS material (PEM files).
   *
   * @param cert the server certificate (its SANs must name what clients dial)
   * @param key its private key (readable by the owner only)
   * @param ca the cluster CA certificate: the trust anchor for client certificates
   * @param requireClientCert mutual TLS: only certificates of kind CLIENT issued by {@code clientCa} get in
   * @param clientCa the CA of client certificates (null without mutual TLS). Never the cluster CA: the
   *     event bus and the membership trust every certificate of the cluster CA they can chain, so a client
   *     certificate of that CA would be one step from a member's (docs/security.md)
   */
  public record Tls(Path cert, Path key, Path ca, boolean requireClientCert, Path clientCa) {
    /** Without mutual TLS. */
    public Tls(Path cert, Path key, Path ca) {
      this(cert, key, ca, false, null);
    }
  }

  /** Plaintext settings with defaults, for a test (a node's plaintext endpoint is on loopback only). */
  public static EndpointSettings plaintext(String host, int port) {
    return new EndpointSettings(host, port, null, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_CONNECTIONS,
        DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, DEFAULT_MAX_IN_FLIGHT, DEFAULT_IDLE_TIMEOUT_MS,
        DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_FRAME_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, -1);
  }

  /** This endpoint with another port (a port picked at start). */
  public EndpointSettings withPort(int newPort) {
    return new EndpointSettings(host, newPort, tls, maxFrameBytes, maxConnections, maxConnectionsPerAddress,
        maxInFlight, idleTimeoutMs, handshakeTimeoutMs, frameTimeoutMs, requestTimeoutMs, loopbackPlaintextPort);
  }

  /** The plaintext loopback listener's settings: this endpoint's limits, on 127.0.0.1, without TLS. */
  public EndpointSettings loopbackPlaintext(int plainPort) {
    return new EndpointSettings("127.0.0.1", plainPort, null, maxFrameBytes, maxConnections, maxConnectionsPerAddress,
        maxInFlight, idleTimeoutMs, handshakeTimeoutMs, frameTimeoutMs, requestTimeoutMs, -1);
  }

  /** This endpoint with TLS material: for tests. */
  public EndpointSettings withTls(Tls newTls) {
    return new EndpointSettings(host, port, newTls, maxFrameBytes, maxConnections, maxConnectionsPerAddress,
        maxInFlight, idleTimeoutMs, handshakeTimeoutMs, frameTimeoutMs, requestTimeoutMs, loopbackPlaintextPort);
  }

  /** This endpoint with other limits: for tests that need small ones. */
  public EndpointSettings withLimits(int frameBytes, int connections, int perAddress, long idleMs, long frameMs) {
    return new EndpointSettings(host, port, tls, frameBytes, connections, perAddress, maxInFlight, idleMs,
        handshakeTimeoutMs, frameMs, requestTimeoutMs, loopbackPlaintextPort);
  }

  public boolean tlsEnabled() {
    return tls != null;
  }

  /**
   * Reads the endpoint's keys. The TLS files default to the node's cluster certificate
   * ({@code cluster.tls.*}): the bridge's own certificate, issued by the cluster CA, serves clients too.
   */
  public static EndpointSettings from(Properties p, ClusterConfig cluster) {
    String host = p.getProperty("bridge.tcp.host", "127.0.0.1").trim();
    boolean loopback = isLoopback(host);
    int port = AgentConfig.integer(p, "bridge.tcp.port", DEFAULT_PORT);
    if (port < 0 || port > 65535) {
      throw AgentConfig.invalid("bridge.tcp.port must be 0..65535");
    }
    String auth = p.getProperty("bridge.tls.clientAuth", "none").trim().toLowerCase(Locale.ROOT);
    if (!auth.equals("none") && !auth.equals("required")) {
      throw AgentConfig.invalid("bridge.tls.clientAuth must be none or required");
    }
    Tls tls = null;
    if (AgentConfig.bool(p, "bridge.tls", true)) {
      tls = tls(p, cluster);
    } else if (!loopback) {
      throw AgentConfig.invalid("bridge.tls=false is allowed on a loopback address only; bridge.tcp.host " + host
          + " is reachable from other machines (give the endpoint a certificate, see docs/configuration.md)");
    }
    int frame = range(p, "bridge.tcp.maxFrameBytes", DEFAULT_MAX_FRAME_BYTES, 1024, 16 * 1024 * 1024);
    int conns = range(p, "bridge.tcp.maxConnections", DEFAULT_MAX_CONNECTIONS, 1, 100_000);
    int perAddress = range(p, "bridge.tcp.maxConnectionsPerAddress", Math.min(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, conns),
        1, 100_000);
    if (perAddress > conns) {
      throw AgentConfig.invalid("bridge.tcp.maxConnectionsPerAddress must not exceed bridge.tcp.maxConnections");
    }
    int inFlight = range(p, "bridge.tcp.maxInFlight", DEFAULT_MAX_IN_FLIGHT, 1, 10_000);
    long idle = 1000L * range(p, "bridge.tcp.idleTimeoutSeconds", (int) (DEFAULT_IDLE_TIMEOUT_MS / 1000), 5, 86_400);
    long handshake = range(p, "bridge.tcp.handshakeTimeoutMs", (int) DEFAULT_HANDSHAKE_TIMEOUT_MS, 100, 120_000);
    long frameTimeout = range(p, "bridge.tcp.frameTimeoutMs", (int) DEFAULT_FRAME_TIMEOUT_MS, 100, 600_000);
    long requestTimeout = range(p, "bridge.tcp.requestTimeoutMs", (int) DEFAULT_REQUEST_TIMEOUT_MS, 100, 600_000);
    int plainPort = AgentConfig.integer(p, "bridge.tcp.loopbackPlaintextPort", -1);
    if (plainPort < -1 || plainPort > 65535) {
      throw AgentConfig.invalid("bridge.tcp.loopbackPlaintextPort must be -1 (none), 0 (any free port) or 1..65535");
    }
    return new EndpointSettings(host, port, tls, frame, conns, perAddress, inFlight, idle, handshake, frameTimeout,
        requestTimeout, plainPort);
  }

  private static Tls tls(Properties p, ClusterConfig cluster) {
    Path cert = file(p, "bridge.tls.cert", cluster.enabled() ? cluster.tlsCert() : null);
    Path key = file(p, "bridge.tls.key", cluster.enabled() ? cluster.tlsKey() : null);
    Path ca = file(p, "bridge.tls.ca", cluster.enabled() ? cluster.tlsCa() : null);
    boolean mutual = p.getProperty("bridge.tls.clientAuth", "none").trim().equalsIgnoreCase("required");
    Path clientCa = null;
    if (mutual) {
      clientCa = file(p, "bridge.tls.clientCa", null);
      EndpointTls.checkClientCa(clientCa, ca);
    }
    Tls tls = new Tls(cert, key, ca, mutual, clientCa);
    EndpointTls.check(tls);
    return tls;
  }

  private static Path file(Properties p, String key, Path defaultFile) {
    String v = p.getProperty(key);
    Path f = v == null || v.isBlank() ? defaultFile : Paths.get(v.trim());
    if (f == null) {
      throw AgentConfig.invalid(key + " is required: the client endpoint runs TLS (bridge.tls=true, the default)"
          + " and this node has no cluster certificate to default to; or set bridge.tls=false on a loopback address");
    }
    if (!Files.isRegularFile(f) || !Files.isReadable(f)) {
      throw AgentConfig.invalid(key + " " + f + " is not a readable file");
    }
    return f;
  }

  private static int range(Properties p, String key, int defaultValue, int min, int max) {
    int v = AgentConfig.integer(p, key, defaultValue);
    if (v < min || v > max) {
      throw AgentConfig.invalid(key + " must be " + min + ".." + max);
    }
    return v;
  }

  /** True for an address in 127.0.0.0/8 or ::1 (a name is resolved once, here); a wildcard is not. */
  public static boolean isLoopback(String host) {
    try {
      return InetAddress.getByName(host).isLoopbackAddress();
    } catch (UnknownHostException e) {
      throw invalidHost(host);
    }
  }

  private static HsmException invalidHost(String host) {
    return AgentConfig.invalid("bridge.tcp.host '" + host + "' is not an IP address or a resolvable host name");
  }
}
