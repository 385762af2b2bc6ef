package io.hsmbridge.agent.cluster;

import java.time.Duration;

/**
 * The last mutation-log index applied to this agent's token, and a way to wait for it to reach a
 * given index. Advanced by the applier's listener (Ratis's state-machine thread); awaited by request
 * threads that must not answer before their own mutation is applied here.
 */
public final class AppliedWatch {
  private long applied;

  public AppliedWatch(long initial) {
    this.applied = initial;
  }

  public synchronized void advance(long index) {
    if (index > applied) {
      applied = index;
      notifyAll();
    }
  }

  public synchronized long applied() {
    return applied;
  }

  /** Waits until {@code index} is applied; false on timeout. */
  public synchronized boolean await(long index, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (applied < index) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        return false;
      }
      wait(Math.max(1, left / 1_000_000));
    }
    return true;
  }
}
