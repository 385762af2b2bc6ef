package io.hsmbridge.agent;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class TokenWorkersTest {

  @Test
  void runsUpToThreadCountInParallel() throws Exception {
    try (TokenWorkers workers = new TokenWorkers("t", 3, 0)) {
      CountDownLatch started = new CountDownLatch(3);
      CountDownLatch release = new CountDownLatch(1);
      for (int i = 0; i < 3; i++) {
        workers.execute(() -> {
          started.countDown();
          await(release);
        });
      }
      assertTrue(started.await(5, TimeUnit.SECONDS), "3 tasks must run at once on 3 threads");
      release.countDown();
    }
  }

  @Test
  void tasksBeyondThreadCountQueueInOrder() throws Exception {
    try (TokenWorkers workers = new TokenWorkers("t", 1, 0)) {
      CountDownLatch release = new CountDownLatch(1);
      List<Integer> order = Collections.synchronizedList(new ArrayList<>());
      CountDownLatch done = new CountDownLatch(5);
      workers.execute(() -> await(release));
      for (int i = 0; i < 5; i++) {
        int n = i;
        workers.execute(() -> {
          order.add(n);
          done.countDown();
        });
      }
      assertTrue(order.isEmpty(), "the only thread is busy");
      release.countDown();
      assertTrue(done.await(5, TimeUnit.SECONDS));
      assertEquals(List.of(0, 1, 2, 3, 4), order);
    }
  }

  @Test
  void sequentialTasksStayOnOneWarmThread() throws Exception {
    for (long spin : new long[] {0, 200_000}) {
      try (TokenWorkers workers = new TokenWorkers("warm", 4, spin)) {
        Set<String> threads = new HashSet<>();
        Thread.sleep(50); // every thread has started and parked: steady state
        for (int i = 0; i < 50; i++) {
          CountDownLatch done = new CountDownLatch(1);
          workers.execute(() -> {
            threads.add(Thread.currentThread().getName());
            done.countDown();
          });
          assertTrue(done.await(5, TimeUnit.SECONDS));
          Thread.sleep(1); // let the worker go back to idle (and, with spin, past its spin window sometimes)
        }
        assertEquals(1, threads.size(), "LIFO hand-off must reuse the same thread (spin " + spin + "): " + threads);
      }
    }
  }

  @Test
  void closeRefusesNewTasksButRunsQueuedOnes() throws Exception {
    TokenWorkers workers = new TokenWorkers("t", 1, 0);
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch queuedRan = new CountDownLatch(1);
    workers.execute(() -> await(release));
    workers.execute(queuedRan::countDown);
    workers.close();
    assertThrows(RejectedExecutionException.class, () -> workers.execute(() -> { }));
    release.countDown();
    assertTrue(queuedRan.await(5, TimeUnit.SECONDS), "a task accepted before close still runs");
  }

  @Test
  void aThrowingTaskDoesNotKillItsThread() throws Exception {
    try (TokenWorkers workers = new TokenWorkers("t", 1, 0)) {
      workers.execute(() -> {
        throw new IllegalStateException("boom");
      });
      CountDownLatch after = new CountDownLatch(1);
      workers.execute(after::countDown);
      assertTrue(after.await(5, TimeUnit.SECONDS));
    }
  }

  @Test
  void workerCountDefaultsToCoresAndNeverExceedsSessions() {
    int cores = Runtime.getRuntime().availableProcessors();
    assertEquals(Math.min(cores, 8), AgentVerticle.workerThreads(0, 8));
    assertEquals(1, AgentVerticle.workerThreads(0, 1));
    assertEquals(6, AgentVerticle.workerThreads(6, 8));
    assertEquals(8, AgentVerticle.workerThreads(64, 8), "capped by the session count");
  }

  private static void await(CountDownLatch latch) {
    try {
      latch.await(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
