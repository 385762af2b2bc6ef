package io.hsmbridge.agent;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.locks.LockSupport;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The threads that make PKCS#11 calls for one agent: a fixed pool (see AgentVerticle#workerThreads).
 *
 * <p>Why not a plain thread pool: a ThreadPoolExecutor hands each task to the thread that has waited
 * longest, so consecutive requests rotate over every thread and each runs on a cold thread (measured
 * here: ~30 us more per RSA-2048 signature than on a warm thread). This pool hands a task to the most
 * recently idle thread (LIFO), so under light load the same warm thread serves request after request,
 * and under heavy load every thread is busy anyway. Tasks beyond the thread count wait in FIFO order.
 *
 * <p>Waking a parked thread costs ~60 us on a 2-core VM (measured: bridge dispatch to worker start),
 * more than 10% of an RSA-2048 signature. So the most recently idle worker first spins for a short,
 * bounded time ({@code spinNanos}, yielding its CPU to anything runnable) before it parks: under
 * steady load the next request finds it awake. At most one worker spins at a time; 0 disables it.
 *
 * <p>Thread-safe. Tasks must not throw (the agent catches and replies); a throw is logged.
 */
final class TokenWorkers implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(TokenWorkers.class.getName());

  private final Object lock = new Object();
  private final Deque<Worker> idle = new ArrayDeque<>();
  private final Deque<Runnable> backlog = new ArrayDeque<>();
  private final Worker[] workers;
  private final long spinNanos;
  /** The worker currently spinning, if any (guarded by lock). */
  private Worker spinner;
  private volatile boolean closed;

  TokenWorkers(String name, int threads, long spinNanos) {
    this.spinNanos = spinNanos;
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be >= 1");
    }
    workers = new Worker[threads];
    for (int i = 0; i < threads; i++) {
      workers[i] = new Worker(name + "-" + i);
      workers[i].thread.start();
    }
  }

  void execute(Runnable task) {
    Worker w;
    synchronized (lock) {
      if (closed) {
        throw new RejectedExecutionException("token workers are closed");
      }
      // The spinning worker first (it is awake), else the most recently parked one.
      w = spinner != null && idle.remove(spinner) ? spinner : idle.pollFirst();
      if (w == null) {
        backlog.addLast(task);
        return;
      }
      w.task = task;
      if (w == spinner) {
        return; // it sees the task without being woken
      }
    }
    LockSupport.unpark(w.thread);
  }

  /** Refuses new tasks; queued tasks still run (their requests get replies), then the threads end. */
  @Override
  public void close() {
    synchronized (lock) {
      closed = true;
    }
    for (Worker w : workers) {
      w.thread.interrupt();
    }
  }

  private final class Worker implements Runnable {
    final Thread thread;
    /** The task handed to this worker while it was idle; written under {@code lock}, volatile for the spin. */
    volatile Runnable task;

    Worker(String name) {
      thread = new Thread(this, name);
      thread.setDaemon(true);
    }

    @Override
    public void run() {
      Runnable next = null;
      while (true) {
        if (next == null) {
          next = awaitTask();
          if (next == null) {
            return;
          }
        }
        try {
          next.run();
        } catch (Throwable e) {
          LOG.log(Level.SEVERE, "token worker task failed", e);
        }
        synchronized (lock) {
          next = backlog.pollFirst();
        }
      }
    }

    /** Waits on the idle stack until handed a task (spinning first if no one else is); null on close. */
    private Runnable awaitTask() {
      boolean spin;
      synchronized (lock) {
        // Tasks queued while no worker was idle (e.g. before this thread first got here) come first.
        Runnable queued = backlog.pollFirst();
        if (queued != null) {
          return queued;
        }
        if (closed) {
          return null;
        }
        idle.addFirst(this);
        spin = spinNanos > 0 && spinner == null;
        if (spin) {
          spinner = this;
        }
      }
      if (spin) {
        Runnable t = spinForTask();
        if (t != null) {
          return t;
        }
      }
      while (true) {
        synchronized (lock) {
          if (task != null) {
            Runnable t = task;
            task = null;
            return t;
          }
          if (closed) {
            idle.remove(this);
            return null;
          }
        }
        LockSupport.park(this);
      }
    }

    /** Spins up to spinNanos for a task, yielding the CPU every few rounds; then stops spinning. */
    private Runnable spinForTask() {
      long deadline = System.nanoTime() + spinNanos;
      for (int round = 0; ; round++) {
        if (task != null || closed || System.nanoTime() - deadline > 0) {
          synchronized (lock) {
            spinner = null;
            Runnable t = task;
            task = null;
            return t;
          }
        }
        if ((round & 7) == 7) {
          Thread.yield();
        } else {
          Thread.onSpinWait();
        }
      }
    }
  }
}
