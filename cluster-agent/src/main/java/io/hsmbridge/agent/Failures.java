package io.hsmbridge.agent;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.eventbus.Message;
import io.vertx.core.json.JsonObject;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Turns exceptions into event-bus failures: the stable error code as the {@code ReplyException}
 * failure code and a one-line, secret-free {@code CODE: message}. Server-side detail (CKR names,
 * stack traces of unexpected errors) goes to the log only.
 */
public final class Failures {
  private static final Logger LOG = Logger.getLogger(Failures.class.getName());

  private Failures() {}

  public static void reply(Message<?> message, Throwable cause) {
    if (cause instanceof HsmException) {
      HsmException e = (HsmException) cause;
      if (e.serverDetail() != null) {
        LOG.log(e.code().isClientError() ? Level.FINE : Level.WARNING, () -> e.code() + " " + e.serverDetail());
      }
      message.fail(e.code().code(), e.clientMessage());
    } else {
      LOG.log(Level.SEVERE, "unexpected failure", cause);
      message.fail(ErrorCode.INTERNAL.code(), ErrorCode.INTERNAL.name() + ": " + ErrorCode.INTERNAL.summary());
    }
  }

  /**
   * The request body as a JSON object, or null after replying BAD_REQUEST. Consumers are typed
   * {@code Object}: a sender may put anything on the bus, and a failed cast on the event loop would
   * leave it without a reply until its timeout.
   */
  public static JsonObject jsonBodyOrFail(Message<Object> message) {
    if (message.body() instanceof JsonObject) {
      return (JsonObject) message.body();
    }
    reply(message, ErrorCode.BAD_REQUEST, "request body must be a JSON object");
    return null;
  }

  public static void reply(Message<?> message, ErrorCode code, String detail) {
    message.fail(code.code(), code.name() + ": " + detail);
  }
}
