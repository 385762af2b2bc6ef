package io.hsmbridge.client;

import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Op;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.EnumSet;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import java.util.logging.Logger;

/**
 * Gives every mutation a {@code requestId} (unless the caller chose one) and, when a request fails without
 * a definite answer, sends it again — the same body, the same requestId — until it gets one, within a
 * budget. Only what {@link Op#isRetrySafe()} allows is sent again: reads, key creations (the key id derives
 * from the requestId, so a retry returns the key the first attempt made), deletes and relabels. A delete
 * whose retry finds the key gone was done by an earlier attempt and is reported deleted.
 *
 * <p>"Without a definite answer": {@code TIMEOUT}, {@code OUTCOME_UNKNOWN} (the cluster's log did not
 * confirm in time, or the connection was lost in flight), {@code NO_HSM_AVAILABLE},
 * {@code HSM_NOT_READY}, {@code KEY_AVAILABILITY} (too few HSMs now). Any other error is the answer.
 * A mutation that is not retry-safe is never sent twice: its ambiguous failure reaches the caller with
 * its requestId. Thread-safe when the inner sender is.
 */
public final class RetryingSender implements RequestSender {
  private static final Logger LOG = Logger.getLogger(RetryingSender.class.getName());
  public static final Duration DEFAULT_BUDGET = Duration.ofSeconds(90);
  private static final Set<ErrorCode> NO_DEFINITE_ANSWER = EnumSet.of(ErrorCode.TIMEOUT, ErrorCode.OUTCOME_UNKNOWN,
      ErrorCode.NO_HSM_AVAILABLE, ErrorCode.HSM_NOT_READY, ErrorCode.KEY_AVAILABILITY);
  private static final long FIRST_PAUSE_MS = 100;
  private static final long MAX_PAUSE_MS = 2_000;

  private final RequestSender inner;
  private final Duration budget;

  public RetryingSender(RequestSender inner) {
    this(inner, DEFAULT_BUDGET);
  }

  /** @param budget how long one request may be tried in all (its last attempt may end after it) */
  public RetryingSender(RequestSender inner, Duration budget) {
    this.inner = Objects.requireNonNull(inner, "inner");
    this.budget = Objects.requireNonNull(budget, "budget");
  }

  @Override
  public JsonObject request(JsonObject body) {
    Op op = body.getValue("op") instanceof String w ? Op.fromWire(w) : null;
    if (op != null && op.isMutation() && body.getValue("requestId") == null) {
      body = body.copy().put("requestId", UUID.randomUUID().toString());
    }
    long deadline = System.nanoTime() + budget.toNanos();
    long pause = FIRST_PAUSE_MS;
    HsmBridgeException ambiguous = null;
    for (int attempt = 1; ; attempt++) {
      try {
        return inner.request(body);
      } catch (HsmBridgeException e) {
        if (ambiguous != null && op == Op.KEY_DELETE && e.code() == ErrorCode.UNKNOWN_KEY) {
          // An earlier attempt of this delete may have run; either way the key is gone.
          return new JsonObject().put("keyId", body.getString("keyId")).put("deleted", true)
              .put("requestId", body.getString("requestId"));
        }
        boolean retry = op != null && op.isRetrySafe() && NO_DEFINITE_ANSWER.contains(e.code())
            && System.nanoTime() + pause * 1_000_000 < deadline;
        if (!retry) {
          throw e;
        }
        if (e.code() == ErrorCode.TIMEOUT || e.code() == ErrorCode.OUTCOME_UNKNOWN
            || (e.code() == ErrorCode.NO_HSM_AVAILABLE && !e.getMessage().contains(FailoverSender.NOTHING_SENT))) {
          ambiguous = e; // the bridge's NO_HSM_AVAILABLE may follow an HSM that died with the request
        }
        int n = attempt;
        LOG.fine(() -> "attempt " + n + " of " + op.wire() + " failed (" + e.getMessage() + "); sending it again");
        sleep(pause);
        pause = Math.min(pause * 2, MAX_PAUSE_MS);
      }
    }
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new HsmBridgeException(ErrorCode.TIMEOUT, "interrupted while waiting to send a request again");
    }
  }
}
