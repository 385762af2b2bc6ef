package io.hsmbridge.agent.audit;

import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Appends audit entries on one thread of its own, so request threads never wait for the chain's HMAC
 * (a token call) or the file: appending in the request path serialised every request of the HSM on the
 * log's lock (measured: RSA-2048 sign through a 2-HSM cluster at 8 threads fell from 2,557 to 1,500
 * op/s). Entries keep their order; the file is flushed whenever the queue runs empty. A full queue
 * (65,536 entries) makes requests wait rather than drop entries. What is still queued when the process
 * is killed is lost: at most the last few milliseconds of requests.
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

  private final AuditLog log;
  private final BlockingQueue<Pending> queue = new ArrayBlockingQueue<>(CAPACITY);
  private final Thread thread;

  public AuditWriter(AuditLog log, String name) {
    this.log = log;
    this.thread = new Thread(this::run, name);
    thread.setDaemon(true);
    thread.start();
  }

  /** Queues one entry; waits only when the queue is full. */
  public void append(String user, String role, String op, String keyId, String result) {
    try {
      queue.put(new Pending(user, role, op, keyId, result, null));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void run() {
    long anchoredAt = 0;
    boolean unanchored = false;
    try {
      while (true) {
        Pending p = unanchored
            ? queue.poll(Math.max(1, anchoredAt + ANCHOR_INTERVAL_MILLIS - System.currentTimeMillis()), TimeUnit.MILLISECONDS)
            : queue.take();
        if (p == STOP) {
          break;
        }
        if (p == null || p.synced() != null) {
          // The interval passed with lines written since the last anchor, or a caller waits for them.
          log.flush();
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
          log.flush();
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
      log.flush();
      log.anchor();
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
      queue.put(new Pending(null, null, null, null, null, done));
      done.await(10, java.util.concurrent.TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** Writes everything queued, then stops the thread (bounded wait). */
  @Override
  public void close() {
    try {
      queue.put(STOP);
      thread.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    log.close();
  }
}
