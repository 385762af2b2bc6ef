package io.hsmbridge.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Blocking callers read replies themselves (leader/follower): many threads on one connection, a
 * leader delivering other threads' replies, the hand-back to the background reader for asynchronous
 * requests, timeouts, connection loss and close while a caller is reading.
 */
class BridgeClientLeaderTest extends LoopbackPeerTest {
  private final List<Thread> started = new ArrayList<>();

  @AfterEach
  void noThreadLeftHanging() throws Exception {
    if (client != null) {
      client.close();
    }
    for (Thread t : started) {
      t.join(TimeUnit.SECONDS.toMillis(WAIT_S));
      assertFalse(t.isAlive(), "thread left hanging: " + t.getName());
    }
  }


  private JsonObject received() throws IOException {
    return FrameCodec.read(peerIn);
  }

  private void echo(JsonObject request) throws IOException {
    FrameCodec.write(peerOut, new JsonObject().put("type", "message")
        .put("address", request.getString("replyAddress")).put("body", request.getJsonObject("body")));
  }

  private Thread spawn(String name, Runnable r) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    started.add(t);
    t.start();
    return t;
  }

  /** Echoes every request; replies to whatever has arrived so far in reverse order. */
  private void startShufflingEcho() {
    spawn("echo", () -> {
      try {
        List<JsonObject> batch = new ArrayList<>();
        JsonObject f;
        while ((f = received()) != null) {
          batch.add(f);
          if (peerIn.available() == 0 || batch.size() >= 8) {
            for (int i = batch.size() - 1; i >= 0; i--) {
              echo(batch.get(i));
            }
            batch.clear();
          }
        }
      } catch (IOException e) {
        // the connection went away: the test is over
      }
    });
  }

  private static void waitUntil(java.util.function.BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_S);
    while (!condition.getAsBoolean()) {
      assertTrue(System.nanoTime() < deadline, "condition not met in time");
      Thread.sleep(5);
    }
  }

  @Test
  void manyThreadsManyBlockingRequestsOnOneConnection() throws Exception {
    connect(Duration.ofSeconds(WAIT_S));
    startShufflingEcho();
    BlockingQueue<Throwable> errors = new LinkedBlockingQueue<>();
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < 12; t++) {
      int id = t;
      threads.add(spawn("caller-" + t, () -> {
        for (int i = 0; i < 300; i++) {
          try {
            JsonObject body = new JsonObject().put("t", id).put("i", i).put("pad", "p".repeat(i % 7 * 50));
            assertEquals(body, client.request(body));
          } catch (Throwable e) {
            errors.add(e);
          }
        }
      }));
    }
    for (Thread th : threads) {
      th.join(TimeUnit.SECONDS.toMillis(WAIT_S * 3));
      assertFalse(th.isAlive(), "caller hangs: " + th.getName());
    }
    assertTrue(errors.isEmpty(), () -> "errors: " + errors);
  }

  @Test
  void mixedBlockingAndAsyncRequests() throws Exception {
    connect(Duration.ofSeconds(WAIT_S));
    startShufflingEcho();
    BlockingQueue<Throwable> errors = new LinkedBlockingQueue<>();
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < 8; t++) {
      int id = t;
      threads.add(spawn("caller-" + t, () -> {
        for (int i = 0; i < 200; i++) {
          try {
            JsonObject body = new JsonObject().put("t", id).put("i", i);
            if ((id + i) % 3 == 0) {
              List<CompletableFuture<JsonObject>> fs = new ArrayList<>();
              for (int k = 0; k < 3; k++) {
                fs.add(client.requestAsync(body.copy().put("k", k)));
              }
              for (int k = 0; k < 3; k++) {
                assertEquals(body.copy().put("k", k), fs.get(k).get(WAIT_S, TimeUnit.SECONDS));
              }
            } else {
              assertEquals(body, client.request(body));
            }
          } catch (Throwable e) {
            errors.add(e);
          }
        }
      }));
    }
    for (Thread th : threads) {
      th.join(TimeUnit.SECONDS.toMillis(WAIT_S * 3));
      assertFalse(th.isAlive(), "caller hangs: " + th.getName());
    }
    assertTrue(errors.isEmpty(), () -> "errors: " + errors);
  }

  @Test
  void aReplyForAnotherThreadReadByTheLeaderIsDelivered() throws Exception {
    connect(Duration.ofSeconds(WAIT_S));
    CompletableFuture<JsonObject> a = new CompletableFuture<>();
    Thread ta = spawn("a", () -> {
      try {
        a.complete(client.request(new JsonObject().put("who", "a")));
      } catch (Throwable e) {
        a.completeExceptionally(e);
      }
    });
    JsonObject fa = received();
    // a is now reading the socket itself (nobody else is: no asynchronous request is pending).
    waitUntil(() -> ta.getState() == Thread.State.RUNNABLE || ta.getState() == Thread.State.TIMED_WAITING);
    Thread.sleep(50);
    CompletableFuture<JsonObject> b = new CompletableFuture<>();
    spawn("b", () -> {
      try {
        b.complete(client.request(new JsonObject().put("who", "b")));
      } catch (Throwable e) {
        b.completeExceptionally(e);
      }
    });
    JsonObject fb = received();
    echo(fb);
    assertEquals("b", b.get(WAIT_S, TimeUnit.SECONDS).getString("who"));
    assertFalse(a.isDone());
    echo(fa);
    assertEquals("a", a.get(WAIT_S, TimeUnit.SECONDS).getString("who"));
  }

  @Test
  void asyncRequestsCompleteAfterTheBlockingCallerLeaves() throws Exception {
    connect(Duration.ofSeconds(WAIT_S));
    CompletableFuture<JsonObject> a = new CompletableFuture<>();
    spawn("a", () -> {
      try {
        a.complete(client.request(new JsonObject().put("who", "a")));
      } catch (Throwable e) {
        a.completeExceptionally(e);
      }
    });
    JsonObject fa = received();
    Thread.sleep(50);
    CompletableFuture<JsonObject> x = client.requestAsync(new JsonObject().put("who", "x"));
    JsonObject fx = received();
    echo(fa);
    assertEquals("a", a.get(WAIT_S, TimeUnit.SECONDS).getString("who"));
    Thread.sleep(50); // nobody is in request() now: the background reader must take over
    echo(fx);
    assertEquals("x", x.get(WAIT_S, TimeUnit.SECONDS).getString("who"));
    // And again with the background reader idle first.
    CompletableFuture<JsonObject> y = client.requestAsync(new JsonObject().put("who", "y"));
    echo(received());
    assertEquals("y", y.get(WAIT_S, TimeUnit.SECONDS).getString("who"));
  }

  @Test
  void blockingRequestsTimeOutWhetherReadingOrWaiting() throws Exception {
    connect(Duration.ofMillis(300));
    List<CompletableFuture<HsmBridgeException>> outcomes = new ArrayList<>();
    for (int t = 0; t < 3; t++) {
      CompletableFuture<HsmBridgeException> o = new CompletableFuture<>();
      outcomes.add(o);
      spawn("caller-" + t, () -> {
        long t0 = System.nanoTime();
        try {
          client.request(new JsonObject());
          o.completeExceptionally(new AssertionError("no reply was sent"));
        } catch (HsmBridgeException e) {
          long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
          if (ms > 2000) {
            o.completeExceptionally(new AssertionError("timed out only after " + ms + " ms"));
          }
          o.complete(e);
        }
      });
    }
    List<JsonObject> sent = new ArrayList<>();
    for (int t = 0; t < 3; t++) {
      sent.add(received());
    }
    for (CompletableFuture<HsmBridgeException> o : outcomes) {
      assertEquals(ErrorCode.TIMEOUT, o.get(WAIT_S, TimeUnit.SECONDS).code());
    }
    // Late replies are ignored and the connection is still usable.
    for (JsonObject f : sent) {
      echo(f);
    }
    spawn("echo", () -> {
      try {
        echo(received());
      } catch (IOException ignored) {
        // reported by the request failing
      }
    });
    assertEquals(new JsonObject().put("n", 1), client.request(new JsonObject().put("n", 1)));
    assertTrue(client.isOpen());
  }

  @Test
  void aFrameSplitAcrossReadersIsReadWhole() throws Exception {
    connect(Duration.ofMillis(300));
    CompletableFuture<HsmBridgeException> first = new CompletableFuture<>();
    spawn("first", () -> {
      try {
        client.request(new JsonObject().put("n", 1));
      } catch (HsmBridgeException e) {
        first.complete(e);
      }
    });
    JsonObject f1 = received();
    byte[] late = FrameCodec.encode(new JsonObject().put("type", "message")
        .put("address", f1.getString("replyAddress")).put("body", new JsonObject()));
    peerOut.write(late, 0, 7); // a header and a bit, then nothing until the caller timed out
    peerOut.flush();
    assertEquals(ErrorCode.TIMEOUT, first.get(WAIT_S, TimeUnit.SECONDS).code());
    CompletableFuture<JsonObject> second = new CompletableFuture<>();
    spawn("second", () -> {
      try {
        second.complete(client.request(new JsonObject().put("n", 2)));
      } catch (Throwable e) {
        second.completeExceptionally(e);
      }
    });
    JsonObject f2 = received();
    peerOut.write(late, 7, late.length - 7);
    echo(f2);
    assertEquals(new JsonObject().put("n", 2), second.get(WAIT_S, TimeUnit.SECONDS));
  }

  @Test
  void connectionLossFailsEveryWaitingCallerPromptly() throws Exception {
    connect(Duration.ofSeconds(60));
    List<CompletableFuture<Throwable>> outcomes = new ArrayList<>();
    for (int t = 0; t < 6; t++) {
      CompletableFuture<Throwable> o = new CompletableFuture<>();
      outcomes.add(o);
      spawn("caller-" + t, () -> {
        try {
          client.request(new JsonObject());
          o.complete(new AssertionError("no reply was sent"));
        } catch (Throwable e) {
          o.complete(e);
        }
      });
    }
    CompletableFuture<JsonObject> async = client.requestAsync(new JsonObject());
    for (int t = 0; t < 7; t++) {
      received();
    }
    peer.close();
    for (CompletableFuture<Throwable> o : outcomes) {
      Throwable e = o.get(WAIT_S, TimeUnit.SECONDS);
      assertTrue(e instanceof HsmBridgeException, () -> "got " + e);
      assertEquals(ErrorCode.NO_HSM_AVAILABLE, ((HsmBridgeException) e).code());
    }
    ExecutionException e = assertThrows(ExecutionException.class, () -> async.get(WAIT_S, TimeUnit.SECONDS));
    assertEquals(ErrorCode.NO_HSM_AVAILABLE, ((HsmBridgeException) e.getCause()).code());
    assertFalse(client.isOpen());
    HsmBridgeException later = assertThrows(HsmBridgeException.class, () -> client.request(new JsonObject()));
    assertEquals(ErrorCode.NO_HSM_AVAILABLE, later.code());
  }

  @Test
  void closeWhileACallerIsReading() throws Exception {
    connect(Duration.ofSeconds(60));
    CompletableFuture<Throwable> leader = new CompletableFuture<>();
    CompletableFuture<Throwable> follower = new CompletableFuture<>();
    spawn("leader", () -> {
      try {
        client.request(new JsonObject());
        leader.complete(new AssertionError("no reply was sent"));
      } catch (Throwable e) {
        leader.complete(e);
      }
    });
    received();
    Thread.sleep(50);
    spawn("follower", () -> {
      try {
        client.request(new JsonObject());
        follower.complete(new AssertionError("no reply was sent"));
      } catch (Throwable e) {
        follower.complete(e);
      }
    });
    received();
    Thread.sleep(50);
    long t0 = System.nanoTime();
    client.close();
    for (CompletableFuture<Throwable> o : List.of(leader, follower)) {
      Throwable e = o.get(WAIT_S, TimeUnit.SECONDS);
      assertTrue(e instanceof HsmBridgeException, () -> "got " + e);
      assertEquals(ErrorCode.NO_HSM_AVAILABLE, ((HsmBridgeException) e).code());
    }
    assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) < 2000);
  }

  @Test
  void anInterruptedReaderHandsTheRoleOn() throws Exception {
    connect(Duration.ofSeconds(60));
    CompletableFuture<Throwable> a = new CompletableFuture<>();
    Thread ta = spawn("a", () -> {
      try {
        client.request(new JsonObject().put("who", "a"));
        a.complete(new AssertionError("no reply was sent"));
      } catch (Throwable e) {
        a.complete(e);
      }
    });
    received();
    Thread.sleep(50);
    CompletableFuture<JsonObject> b = new CompletableFuture<>();
    spawn("b", () -> {
      try {
        b.complete(client.request(new JsonObject().put("who", "b")));
      } catch (Throwable e) {
        b.completeExceptionally(e);
      }
    });
    JsonObject fb = received();
    Thread.sleep(50);
    ta.interrupt();
    Throwable e = a.get(WAIT_S, TimeUnit.SECONDS);
    assertTrue(e instanceof HsmBridgeException, () -> "got " + e);
    assertEquals(ErrorCode.INTERNAL, ((HsmBridgeException) e).code());
    echo(fb);
    assertEquals("b", b.get(WAIT_S, TimeUnit.SECONDS).getString("who"));
  }

  @Test
  void aBlockingRequestFromACompletionCallbackWorks() throws Exception {
    connect(Duration.ofSeconds(WAIT_S));
    startShufflingEcho();
    CompletableFuture<JsonObject> nested = client.requestAsync(new JsonObject().put("n", 1))
        .thenApply(r -> client.request(new JsonObject().put("n", r.getInteger("n") + 1)));
    assertEquals(new JsonObject().put("n", 2), nested.get(WAIT_S, TimeUnit.SECONDS));
    assertEquals(new JsonObject().put("n", 3), client.request(new JsonObject().put("n", 3)));
  }
}
