package io.hsmbridge.cli;

import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.HsmBridgeException;
import java.time.Duration;
import java.util.Base64;
import picocli.CommandLine.Option;

/**
 * A command that talks to a running node: through {@code --endpoint}, else the local cluster's
 * {@code endpoint.json}.
 */
abstract class ClientCommand extends CliCommand {
  @Option(names = "--endpoint", paramLabel = "HOST:PORT",
      description = "Talk to this TCP bridge instead of the local cluster's.")
  String endpoint;

  @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "30",
      description = "Per-request timeout in seconds (default: ${DEFAULT-VALUE}).")
  int timeoutSeconds;

  @Override
  protected final int execute() throws Exception {
    validate();
    try (Hsm hsm = connect()) {
      return run(hsm);
    }
  }

  /** Checks the options before connecting, so that a usage error never depends on a running node. */
  protected void validate() {}

  protected abstract int run(Hsm hsm) throws Exception;

  private Hsm connect() {
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
    } else {
      ep = new LocalNode(home()).runningEndpoint()
          .orElseThrow(() -> new CliException(CliException.NOT_RUNNING));
    }
    BridgeClient client;
    try {
      client = BridgeClient.connect(ep.host(), ep.port(), Duration.ofSeconds(timeoutSeconds));
    } catch (HsmBridgeException e) {
      if (endpoint == null && new LocalNode(home()).runningEndpoint().isEmpty()) {
        throw new CliException(CliException.NOT_RUNNING); // it stopped meanwhile
      }
      throw e;
    }
    return Hsm.owning(client);
  }

  /** Decodes a standard-base64 option value, or fails as a usage error naming the option. */
  protected byte[] base64(String option, String value) {
    try {
      return Base64.getDecoder().decode(value.strip());
    } catch (IllegalArgumentException e) {
      throw usage(option + " is not valid base64");
    }
  }
}
