package io.hsmbridge.cli;

import io.hsmbridge.client.Hsm;
import java.util.Base64;
import picocli.CommandLine.Model.CommandSpec;

/**
 * A command that runs operations on the cluster with the session of the session file (see
 * {@link BridgeCommand}). A protected command (one with the {@link QuorumOptions} mixin) may instead
 * request a quorum token for its request, or run with approvals: that is handled here, once, for all.
 */
abstract class ClientCommand extends BridgeCommand {

  @Override
  protected final int execute() throws Exception {
    validate();
    QuorumOptions quorum = quorumOptions();
    QuorumOptions.Approved approved = quorum == null ? null : quorum.prepare(this::usage, System.currentTimeMillis());
    try (Hsm hsm = openHsm()) {
      if (quorum != null && quorum.requestsToken()) {
        return quorum.requestToken(hsm, this::run, out());
      }
      return run(approved == null ? hsm : approved.apply(hsm));
    }
  }

  /** Checks the options before connecting, so that a usage error never depends on a running node. */
  protected void validate() {}

  /** Runs the command; a protected command sends its one protected request first of all. */
  protected abstract int run(Hsm hsm) throws Exception;

  /** The quorum options when this is a protected command (it declares the mixin), else null. */
  private QuorumOptions quorumOptions() {
    for (CommandSpec mixin : spec.mixins().values()) {
      if (mixin.userObject() instanceof QuorumOptions q) {
        return q;
      }
    }
    return null;
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
