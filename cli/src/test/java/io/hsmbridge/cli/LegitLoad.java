package io.hsmbridge.cli;

import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.HsmBridgeException;
import io.vertx.core.json.JsonObject;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

/**
 * A legitimate client that keeps being served while an attack runs: one TLS connection (pinning the
 * cluster CA) from 127.0.0.1, {@code random} requests with a crypto user's session (each goes through the
 * bridge to an HSM), one after another until stopped; every failure is counted. Test code only.
 */
final class LegitLoad implements AutoCloseable {
  private final AtomicInteger ok = new AtomicInteger();
  private final AtomicInteger errors = new AtomicInteger();
  private final AtomicReference<String> firstError = new AtomicReference<>();
  private final Thread thread;
  private volatile boolean stop;

  LegitLoad(Supplier<BridgeClient> connect, String session) {
    thread = new Thread(() -> run(connect, session), "legit-client");
    thread.setDaemon(true);
    thread.start();
  }

  private void run(Supplier<BridgeClient> connect, String session) {
    BridgeClient client = null;
    long deadline = System.currentTimeMillis() + 300_000; // bounded whatever the test does
    while (!stop && System.currentTimeMillis() < deadline) {
      try {
        if (client == null) {
          client = connect.get();
        }
        JsonObject r = client.request(new JsonObject().put("op", "random").put("length", 16).put("session", session));
        if (r.getString("random") == null) {
          throw new IllegalStateException("no random in " + r.encode());
        }
        ok.incrementAndGet();
        Thread.sleep(20);
      } catch (HsmBridgeException | IllegalStateException e) {
        errors.incrementAndGet();
        firstError.compareAndSet(null, e.toString());
        if (client != null && !client.isOpen()) {
          client = null;
        }
      } catch (InterruptedException e) {
        break;
      }
    }
    if (client != null) {
      client.close();
    }
  }

  /** Waits until at least {@code n} more requests succeeded (bounded), so a check sees the client served. */
  void awaitServed(int n, long maxMillis) throws InterruptedException {
    int target = ok.get() + n;
    long deadline = System.currentTimeMillis() + maxMillis;
    while (ok.get() < target && System.currentTimeMillis() < deadline && errors.get() == 0) {
      Thread.sleep(20);
    }
  }

  int ok() {
    return ok.get();
  }

  int errors() {
    return errors.get();
  }

  String firstError() {
    return firstError.get();
  }

  @Override
  public void close() throws InterruptedException {
    stop = true;
    thread.join(30_000);
  }

  @Override
  public String toString() {
    return "legitimate client: " + ok.get() + " served, " + errors.get() + " errors"
        + (firstError.get() == null ? "" : " (first: " + firstError.get() + ")");
  }
}
