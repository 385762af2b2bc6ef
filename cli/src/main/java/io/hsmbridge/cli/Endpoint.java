package io.hsmbridge.cli;

import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.ClientTls;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * Where a node's TCP bridge listens, as the node writes it to {@code endpoint.json} when ready:
 * {@code {"role":"bridge","host":..,"port":..,"pid":..}} from a cluster's bridge (the single node of an
 * earlier version wrote the same without {@code role}, with {@code hsmId}). An agent's file,
 * {@code {"role":"agent","hsmId":..,"pid":..}}, is a client endpoint only when the HSM host is a front door
 * too ({@code frontDoor.enabled}: then it has host, port and tls); else only its pid is read
 * ({@link #readPid}).
 *
 * <p>{@code "tls":true} in the file says the endpoint runs TLS; the client then pins {@code ca}, the
 * cluster CA certificate (the launcher knows where it is: {@link #withCa}).
 *
 * @param pid 0 when unknown (an endpoint given with {@code --endpoint})
 * @param tls whether the endpoint runs TLS
 * @param ca the CA certificate (PEM) a TLS connection pins, or null while unknown
 * @param clientCert a client certificate (kind client) to present, or null: for an endpoint with mutual TLS
 * @param clientKey its private key
 */
record Endpoint(String host, int port, long pid, String hsmId, boolean tls, Path ca, Path clientCert, Path clientKey) {

  /** A plaintext endpoint (loopback only: {@code bridge.tls=false}). */
  Endpoint(String host, int port, long pid, String hsmId) {
    this(host, port, pid, hsmId, false, null, null, null);
  }

  /** This endpoint over TLS, pinning {@code caFile}. */
  Endpoint withCa(Path caFile) {
    return new Endpoint(host, port, pid, hsmId, true, caFile, clientCert, clientKey);
  }

  /** This endpoint presenting a client certificate (used when the endpoint asks for one). */
  Endpoint withClientCertificate(Path cert, Path key) {
    return new Endpoint(host, port, pid, hsmId, tls, ca, cert, key);
  }

  /** This endpoint in plaintext (loopback only, checked by the caller). */
  Endpoint plaintext() {
    return new Endpoint(host, port, pid, hsmId, false, null, null, null);
  }

  /** The client's TLS settings: the pinned CA, or null for plaintext. */
  ClientTls clientTls() {
    if (!tls) {
      return null;
    }
    if (ca == null) {
      throw new CliException("the endpoint " + hostPort() + " runs TLS: give the cluster CA certificate with --ca FILE");
    }
    if (!Files.isReadable(ca)) {
      throw new CliException("cannot read the cluster CA certificate " + ca);
    }
    try {
      ClientTls t = ClientTls.pinning(ca);
      return clientCert == null ? t : t.withClientCertificate(clientCert, clientKey);
    } catch (io.hsmbridge.client.HsmBridgeException e) {
      throw new CliException(e.getMessage());
    }
  }

  /** Connects a client to this endpoint: TLS pinning {@link #ca} when {@link #tls}. */
  BridgeClient connect(Duration requestTimeout) {
    return BridgeClient.connect(host, port, requestTimeout, clientTls());
  }

  /** Parses {@code host:port} as given to {@code --endpoint}. */
  static Endpoint parse(String hostPort) {
    int i = hostPort == null ? -1 : hostPort.lastIndexOf(':');
    if (i <= 0 || i == hostPort.length() - 1) {
      throw new IllegalArgumentException("expected HOST:PORT, got '" + hostPort + "'");
    }
    String host = hostPort.substring(0, i);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    int port;
    try {
      port = Integer.parseInt(hostPort.substring(i + 1));
    } catch (NumberFormatException e) {
      port = -1;
    }
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("port must be 1..65535 in '" + hostPort + "'");
    }
    return new Endpoint(host, port, 0, null);
  }

  /**
   * Reads an endpoint file; empty when it does not exist or is not (yet) complete JSON with the
   * expected fields.
   */
  static Optional<Endpoint> read(Path file) {
    JsonObject o = readJson(file).orElse(null);
    if (o == null) {
      return Optional.empty();
    }
    Object host = o.getValue("host");
    Object port = o.getValue("port");
    Object pid = o.getValue("pid");
    Object hsmId = o.getValue("hsmId");
    boolean tls = Boolean.TRUE.equals(o.getValue("tls"));
    if (!(host instanceof String h) || !(port instanceof Number p) || p.intValue() < 1 || p.intValue() > 65535) {
      return Optional.empty();
    }
    return Optional.of(new Endpoint(h, p.intValue(), pid instanceof Number n ? n.longValue() : 0,
        hsmId instanceof String s ? s : null, tls, null, null, null));
  }

  /** The {@code pid} of any node's endpoint file (agent or bridge); 0 when there is none. */
  static long readPid(Path file) {
    return readJson(file).map(o -> o.getValue("pid")).filter(p -> p instanceof Number)
        .map(p -> ((Number) p).longValue()).orElse(0L);
  }

  /** Empty when the file does not exist (not started, or stopped) or is not (yet) complete JSON. */
  private static Optional<JsonObject> readJson(Path file) {
    try {
      return Optional.of(new JsonObject(Files.readString(file, StandardCharsets.UTF_8)));
    } catch (IOException | DecodeException | ClassCastException e) {
      return Optional.empty();
    }
  }

  String hostPort() {
    return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
  }
}
