package io.hsmbridge.cli;

import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.FailoverSender;
import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.RetryingSender;
import io.hsmbridge.client.HsmBridgeException;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.function.Function;
import picocli.CommandLine.Option;

/**
 * A command that talks to a running bridge: through {@code --endpoint}, else the local cluster's
 * {@code HOME/bridge/endpoint.json}; with the session of the session file when there is one.
 */
abstract class BridgeCommand extends CliCommand {
  @Option(names = "--endpoint", paramLabel = "HOST:PORT",
      description = "Talk to this TCP bridge instead of the local cluster's.")
  String endpoint;

  @Option(names = "--ca", paramLabel = "FILE",
      description = "The cluster CA certificate (PEM) to pin for the endpoint's TLS (default: the local cluster's).")
  java.nio.file.Path ca;

  @Option(names = "--plaintext",
      description = "Talk to a loopback --endpoint without TLS (one started with bridge.tls=false).")
  boolean plaintext;

  @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "30",
      description = "Per-request timeout in seconds (default: ${DEFAULT-VALUE}).")
  int timeoutSeconds;

  @Option(names = "--request-id", paramLabel = "ID",
      description = "The requestId of this command's change (1-64 characters): run again with the same id, a"
          + " key creation returns the key the first run made instead of a second one.")
  String requestId;

  /** The endpoint this command talks to (resolved by {@link #connect()}). */
  private Endpoint resolved;

  /** Connects; a missing local cluster is the one-line "no local cluster running". */
  protected BridgeClient connect() {
    if (timeoutSeconds < 1) {
      throw usage("--timeout must be at least 1 second");
    }
    Endpoint ep;
    if (endpoint != null) {
      try {
        ep = Endpoint.parse(endpoint);
      } catch (IllegalArgumentException e) {
        throw usage("invalid --endpoint: " + e.getMessage());
      }
      ep = withTrust(ep);
    } else {
      if (plaintext) {
        throw usage("--plaintext goes with --endpoint (the local cluster's endpoint says itself whether it runs TLS)");
      }
      // The bridge first; when it is down, any HSM host that is a front door too (issue #11).
      ep = localEndpoints().stream().findFirst().orElseThrow(() -> new CliException(CliException.NOT_RUNNING));
      if (ca != null && ep.tls()) {
        ep = ep.withCa(ca);
      }
    }
    resolved = ep;
    try {
      return ep.connect(Duration.ofSeconds(timeoutSeconds));
    } catch (HsmBridgeException e) {
      if (endpoint == null && localEndpoints().isEmpty()) {
        throw new CliException(CliException.NOT_RUNNING); // it stopped meanwhile
      }
      throw e;
    }
  }

  /**
   * TLS for an --endpoint: the CA of --ca, else the local cluster's CA when this home has one; plaintext
   * only when asked for, and only on loopback.
   */
  private Endpoint withTrust(Endpoint ep) {
    if (plaintext) {
      if (ca != null) {
        throw usage("--plaintext and --ca exclude each other");
      }
      if (!isLoopback(ep.host())) {
        throw usage("--plaintext is for a loopback endpoint only; " + ep.host() + " is not loopback");
      }
      return ep.plaintext();
    }
    if (ca != null) {
      return ep.withCa(ca);
    }
    for (java.nio.file.Path local : java.util.List.of(home().caDir().resolve("ca.pem"), home().bridge().tlsCa())) {
      if (java.nio.file.Files.isReadable(local)) {
        return ep.withCa(local);
      }
    }
    throw usage("the endpoint " + ep.hostPort() + " runs TLS: give the cluster CA certificate with --ca FILE"
        + " (or --plaintext for a loopback endpoint started with bridge.tls=false)");
  }

  static boolean isLoopback(String host) {
    try {
      return java.net.InetAddress.getByName(host).isLoopbackAddress();
    } catch (java.net.UnknownHostException e) {
      return false;
    }
  }

  /**
   * A connection that sends the stored session with every request (none when nobody logged in). A change
   * carries a requestId ({@code --request-id}, else a new one) and is sent again with it when its outcome is
   * unknown (timeout, connection lost in flight) and a repeat cannot do it twice ({@link RetryingSender}).
   */
  protected Hsm openHsm() {
    String token = sessionFile().token();
    if (requestId != null && (requestId.isEmpty() || requestId.length() > 64)) {
      throw usage("--request-id must be 1 to 64 characters");
    }
    BridgeClient first = connect();
    java.util.List<FailoverSender.Endpoint> all = new java.util.ArrayList<>();
    all.add(new FailoverSender.Endpoint(resolved.host(), resolved.port()));
    if (endpoint == null) {
      // A local cluster: the other front doors are where to go when this one is lost in flight.
      for (Endpoint other : localEndpoints()) {
        FailoverSender.Endpoint e = new FailoverSender.Endpoint(other.host(), other.port());
        if (!all.contains(e) && other.tls() == resolved.tls()) {
          all.add(e);
        }
      }
    }
    FailoverSender failover = new FailoverSender(all, Duration.ofSeconds(timeoutSeconds), resolved.clientTls(), first);
    RetryingSender retrying = new RetryingSender(failover, Duration.ofSeconds(Math.max(60, 2L * timeoutSeconds)));
    Hsm hsm = Hsm.owning(requestId == null ? retrying : body -> retrying.request(withRequestId(body)), failover);
    hsm.useSession(token);
    return hsm;
  }

  /** The body with --request-id when it is a change (reads carry none). */
  private JsonObject withRequestId(JsonObject body) {
    io.hsmbridge.protocol.Op op = body.getValue("op") instanceof String w ? io.hsmbridge.protocol.Op.fromWire(w) : null;
    return op != null && op.isMutation() && body.getValue("requestId") == null
        ? body.copy().put("requestId", requestId) : body;
  }

  /** The running front doors of the local cluster: the bridge first, then every HSM host that serves clients. */
  private java.util.List<Endpoint> localEndpoints() {
    java.util.List<Endpoint> eps = new java.util.ArrayList<>();
    new LocalNode(home().bridge()).runningEndpoint().ifPresent(eps::add);
    for (String hsm : home().hsmDirs()) {
      new LocalNode(home().hsm(hsm)).runningEndpoint().ifPresent(eps::add);
    }
    return eps;
  }

  /**
   * Sends one admin request to the bridge, prints its JSON report and then a one-word verdict read from
   * the report's boolean {@code field}; exit 0 when it is true, 1 otherwise.
   */
  protected int reportAndVerdict(Function<BridgeAdmin, JsonObject> call, String field, String good, String bad) {
    String token = sessionFile().token();
    JsonObject report;
    BridgeClient client = connect();
    try (BridgeAdmin admin = new BridgeAdmin(client, client).useSession(token)) {
      report = call.apply(admin);
    }
    boolean ok = Boolean.TRUE.equals(report.getValue(field));
    out().println(report.encodePrettily());
    out().println(ok ? good : bad);
    return ok ? ExitCodes.OK : ExitCodes.FAILURE;
  }
}
