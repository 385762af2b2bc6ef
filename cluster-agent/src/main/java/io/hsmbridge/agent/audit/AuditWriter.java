package io.hsmbridge.agent.audit;

import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Appends audit entries on one thread of its own, so request threads never wait for the chain's HMAC
 * (a token call) or the file: appending in the request path serialised every request of the HSM on the
 * log's lock (measured: RSA-2048 sign through a 2-HSM cluster at 8 threads fell from 2,557 to 1,500
 * op/s). A request does not wake the writer either: it only adds its entry to a lock-free queue, and the
 * writer, when it finds the queue empty, parks for {@value #IDLE_PARK_MICROS} µs before it looks again,
 * {@value #IDLE_LONG_PARK_MILLIS} ms once nothing came for a second (waking a parked thread on every
 * request cost the request path 25 µs at p50 on the host path, docs/benchmarks.md). Entries keep their order; the file is flushed whenever the queue runs empty. A full
 * queue (65,536 entries) makes requests wait rather than drop entries. What is still queued when the
 * process is killed is lost: at most the last few milliseconds of requests.
 *
 * <p>After a flush, the token's anchor ({@link AuditLog#anchor()}) is moved to the last line written, at
 * most every {@value #ANCHOR_INTERVAL_MILLIS} ms (a token write costs a few ms), and always at
 * {@link #sync()} and {@link #close()}: lines reported as written (a verify, a clean stop) are covered.
 * An agent killed outright leaves at most the last {@value #ANCHOR_INTERVAL_MILLIS} ms of lines beyond
 * the anchor: cutting those off is the one truncation the anchor cannot see.
 */
public final class AuditWriter implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(AuditWriter.class.getName());
  private static final int CAPACITY = 65_536;
  /** The longest the anchor lags the file while lines are written. */
  public static final long ANCHOR_INTERVAL_MILLIS = 200;

  private record Pending(String user, String role, String op, String keyId, String result,
      java.util.concurrent.CountDownLatch synced) {}

  private static final Pending STOP = new Pending(null, null, null, null, null, null);

  /** How long the writer parks when it found nothing to write (how long an entry may wait while requests come). */
  static final long IDLE_PARK_MICROS = 1_000;
  /** How long it parks once nothing came for a second. */
  static final long IDLE_LONG_PARK_MILLIS = 20;

  private final AuditLog log;
  private final ConcurrentLinkedQueue<Pending> queue = new ConcurrentLinkedQueue<>();
  /** Entries queued and not yet taken: the bound that makes requests wait instead of growing the queue. */
  private final AtomicInteger queued = new AtomicInteger();
  private final Thread thread;

  public AuditWriter(AuditLog log, String name) {
    this.log = log;
    this.thread = new Thread(this::run, name);
    thread.setDaemon(true);
    thread.start();
  }

  /** Queues one entry; waits only when the queue is full. */
  public void append(String user, String role, String op, String keyId, String result) {
    offer(new Pending(user, role, op, keyId, result, null), false);
  }

  /** Adds {@code p}; waits while the queue is full. {@code wake}: the writer is wanted now (a sync, the stop). */
  private void offer(Pending p, boolean wake) {
    while (queued.get() >= CAPACITY) {
      LockSupport.unpark(thread);
      LockSupport.parkNanos(TimeUnit.MICROSECONDS.toNanos(IDLE_PARK_MICROS));
      if (Thread.currentThread().isInterrupted() || !thread.isAlive()) {
        return;
      }
    }
    queued.incrementAndGet();
    queue.add(p);
    if (wake) {
      LockSupport.unpark(thread);
    }
  }

  /** The next entry, or null once the writer waited {@code maxWaitMillis} for one (negative: no limit). */
  private Pending next(long maxWaitMillis) throws InterruptedException {
    long start = System.nanoTime();
    while (true) {
      Pending p = queue.poll();
      if (p != null) {
        queued.decrementAndGet();
        return p;
      }
      if (Thread.interrupted()) {
        throw new InterruptedException();
      }
      long waited = System.nanoTime() - start;
      if (maxWaitMillis >= 0 && waited >= TimeUnit.MILLISECONDS.toNanos(maxWaitMillis)) {
        return null;
      }
      // A second without requests: look less often (an idle agent should not wake a thousand times a second).
      LockSupport.parkNanos(waited > TimeUnit.SECONDS.toNanos(1) ? TimeUnit.MILLISECONDS.toNanos(IDLE_LONG_PARK_MILLIS)
          : TimeUnit.MICROSECONDS.toNanos(IDLE_PARK_MICROS));
    }
  }

  private void run() {
    long anchoredAt = 0;
    boolean unanchored = false;
    try {
      while (true) {
        Pending p = next(unanchored ? Math.max(1, anchoredAt + ANCHOR_INTERVAL_MILLIS - System.currentTimeMillis()) : -1);
        if (p == STOP) {
          break;
        }
        if (p == null || p.synced() != null) {
          // The interval passed with lines written since the last anchor, or a caller waits for them.
          flush();
          log.anchor();
          anchoredAt = System.currentTimeMillis();
          unanchored = false;
          if (p != null) {
            p.synced().countDown();
          }
          continue;
        }
        write(p);
        boolean due = System.currentTimeMillis() - anchoredAt >= ANCHOR_INTERVAL_MILLIS;
        if (queue.isEmpty() || due) {
          // The batch ends here: the log seals it with one token MAC (AuditLog, "sealed batches").
          flush();
          unanchored = true;
          if (due) {
            log.anchor();
            anchoredAt = System.currentTimeMillis();
            unanchored = false;
          }
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      flush();
      log.anchor();
    }
  }

  /**
   * Seals and writes the batch. A failure is logged: when the token's MAC failed the batch stays for the next
   * try; when the write failed its lines are lost (AuditLog#writeBatch), which verify shows as a gap.
   */
  private void flush() {
    try {
      log.flush();
    } catch (RuntimeException e) {
      LOG.log(Level.SEVERE, "cannot seal or write the audit log", e);
    }
  }

  private void write(Pending p) {
    try {
      log.append(p.user(), p.role(), p.op(), p.keyId(), p.result());
    } catch (RuntimeException e) {
      // The token or the disk failed: say so loudly; the next entry tries again.
      LOG.log(Level.SEVERE, "cannot append to the audit log", e);
    }
  }

  /** What the comparison of the file with the token's anchor found at start (naming the HSM), or null. */
  public String startProblem() {
    return log.startProblem();
  }

  /** Waits (bounded) until everything queued so far is in the file and anchored in the token, e.g. before verifying it. */
  public void sync() {
    java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
    try {
      offer(new Pending(null, null, null, null, null, done), true);
      done.await(10, java.util.concurrent.TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** Writes everything queued, then stops the thread (bounded wait). */
  @Override
  public void close() {
    try {
      offer(STOP, true);
      thread.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    log.close();
  }
}
