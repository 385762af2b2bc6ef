package io.hsmbridge.cli.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import org.HdrHistogram.Histogram;

/**
 * Runs one operation from N threads for a warm-up then a measured period, bounded in time and count,
 * and records every measured call's latency. Each thread gets its own worker (session or connection).
 */
final class Measurement {
  /** One thread's worker: does one operation per call. */
  interface Worker extends AutoCloseable {
    void runOnce() throws Exception;

    /** Called after a call made inside the measured window has been recorded (not during warm-up). */
    default void measured() {}

    @Override
    void close();
  }

  /** Makes one worker per thread. */
  interface WorkerFactory {
    Worker create() throws Exception;
  }

  /** Throughput and latency of one run. */
  record Result(double opsPerSecond, long count, double p50Micros, double p99Micros) {}

  /** Safety cap on calls per thread, so a run is bounded even on very fast paths. */
  private static final long MAX_OPS_PER_THREAD = 20_000_000L;

  private Measurement() {}

  static Result run(WorkerFactory factory, int threads, long warmupMillis, long measureMillis) throws Exception {
    List<Worker> workers = new ArrayList<>();
    try {
      for (int i = 0; i < threads; i++) {
        workers.add(factory.create());
      }
      Histogram total = new Histogram(60_000_000_000L, 3);
      long[] counts = new long[threads];
      AtomicReference<Throwable> failure = new AtomicReference<>();
      CountDownLatch start = new CountDownLatch(1);
      long[] window = new long[2];
      List<Thread> running = new ArrayList<>();
      List<Histogram> histograms = new ArrayList<>();
      for (int i = 0; i < threads; i++) {
        Worker w = workers.get(i);
        Histogram h = new Histogram(60_000_000_000L, 3);
        histograms.add(h);
        int index = i;
        Thread t = new Thread(() -> {
          try {
            start.await();
            long measureFrom = window[0];
            long measureTo = window[1];
            long n = 0;
            while (n < MAX_OPS_PER_THREAD) {
              long t0 = System.nanoTime();
              if (t0 >= measureTo) {
                break;
              }
              w.runOnce();
              long t1 = System.nanoTime();
              if (t0 >= measureFrom) {
                h.recordValue(t1 - t0);
                n++;
                w.measured();
              }
            }
            counts[index] = n;
          } catch (Throwable e) {
            failure.compareAndSet(null, e);
          }
        }, "bench-" + i);
        running.add(t);
        t.start();
      }
      long now = System.nanoTime();
      window[0] = now + warmupMillis * 1_000_000L;
      window[1] = window[0] + measureMillis * 1_000_000L;
      start.countDown();
      for (Thread t : running) {
        t.join();
      }
      if (failure.get() != null) {
        throw new IllegalStateException("benchmark worker failed: " + failure.get(), failure.get());
      }
      long count = 0;
      for (int i = 0; i < threads; i++) {
        total.add(histograms.get(i));
        count += counts[i];
      }
      double seconds = measureMillis / 1000.0;
      return new Result(count / seconds, count, total.getValueAtPercentile(50) / 1000.0,
          total.getValueAtPercentile(99) / 1000.0);
    } finally {
      for (Worker w : workers) {
        w.close();
      }
    }
  }
}
