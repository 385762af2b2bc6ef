package io.hsmbridge.cli.bench;

import io.hsmbridge.protocol.Addresses;
import io.vertx.core.Context;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.HdrHistogram.Histogram;

/**
 * Measures the event-bus path the way a Vert.x service in the cluster uses it: from an event-loop
 * context, without blocking a thread, keeping {@code concurrency} requests in flight (each reply sends
 * the next request). Bounded by time and by a cap on requests per chain.
 */
final class AsyncBusMeasurement {
  private static final long MAX_REQUESTS_PER_CHAIN = 20_000_000L;

  private AsyncBusMeasurement() {}

  static Measurement.Result run(Vertx vertx, Supplier<JsonObject> request, int concurrency, long warmupMillis,
      long measureMillis) throws Exception {
    Histogram histogram = new Histogram(60_000_000_000L, 3);
    long[] counted = new long[1];
    Promise<Void> done = Promise.promise();
    Context context = vertx.getOrCreateContext();
    long measureFrom = System.nanoTime() + warmupMillis * 1_000_000L;
    long measureTo = measureFrom + measureMillis * 1_000_000L;
    context.runOnContext(v -> {
      int[] running = {concurrency};
      for (int i = 0; i < concurrency; i++) {
        chain(vertx, request, measureFrom, measureTo, histogram, counted, new long[1], () -> {
          if (--running[0] == 0) {
            done.tryComplete();
          }
        }, done);
      }
    });
    done.future().toCompletionStage().toCompletableFuture().get(warmupMillis + measureMillis + 60_000, TimeUnit.MILLISECONDS);
    double seconds = measureMillis / 1000.0;
    return new Measurement.Result(counted[0] / seconds, counted[0], histogram.getValueAtPercentile(50) / 1000.0,
        histogram.getValueAtPercentile(99) / 1000.0);
  }

  /** One chain of requests, each sent when the previous one's reply arrives (all on the same context). */
  private static void chain(Vertx vertx, Supplier<JsonObject> request, long measureFrom, long measureTo,
      Histogram histogram, long[] counted, long[] sent, Runnable finished, Promise<Void> failed) {
    long t0 = System.nanoTime();
    if (t0 >= measureTo || sent[0]++ >= MAX_REQUESTS_PER_CHAIN) {
      finished.run();
      return;
    }
    vertx.eventBus().request(Addresses.BRIDGE_REQUEST, request.get()).onComplete(ar -> {
      if (ar.failed()) {
        failed.tryFail(ar.cause());
        return;
      }
      long t1 = System.nanoTime();
      if (t0 >= measureFrom) {
        histogram.recordValue(t1 - t0);
        counted[0]++;
      }
      chain(vertx, request, measureFrom, measureTo, histogram, counted, sent, finished, failed);
    });
  }
}
