package io.hsmbridge.cli;

import io.hsmbridge.client.Hsm;
import io.hsmbridge.protocol.Op;
import io.vertx.core.json.JsonObject;

/**
 * {@code backup rotate-key} and {@code cluster rotate-key}: one HSM makes the next generation of the key
 * inside its token and the mutation log installs it on every HSM (docs/backups.md, docs/replication.md).
 * CO only, under the admin quorum (the mixin of each subclass); prints the reply, and on standard error what
 * to do next.
 */
abstract class KeyRotationCommand extends ClientCommand {
  abstract Op op();

  /** What the operator should do once the new generation is in place (standard error). */
  abstract String next(Object generation);

  @Override
  protected int run(Hsm hsm) {
    JsonObject reply = hsm.send(new JsonObject().put("op", op().wire()));
    out().println(reply.encodePrettily());
    cli().err().println(next(reply.getValue("generation", "?")));
    return ExitCodes.OK;
  }
}
