package io.hsmbridge.cli;

import io.hsmbridge.client.Hsm;
import java.util.Base64;

/** A command that runs key or crypto operations on the cluster (see {@link BridgeCommand}). */
abstract class ClientCommand extends BridgeCommand {

  @Override
  protected final int execute() throws Exception {
    validate();
    try (Hsm hsm = Hsm.owning(connect())) {
      return run(hsm);
    }
  }

  /** Checks the options before connecting, so that a usage error never depends on a running node. */
  protected void validate() {}

  protected abstract int run(Hsm hsm) throws Exception;

  /** Decodes a standard-base64 option value, or fails as a usage error naming the option. */
  protected byte[] base64(String option, String value) {
    try {
      return Base64.getDecoder().decode(value.strip());
    } catch (IllegalArgumentException e) {
      throw usage(option + " is not valid base64");
    }
  }
}
