package io.hsmbridge.cli;

import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.HsmBridgeException;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A cluster in a fresh temporary data directory, never the user's, started as {@code up --hsms N --port 0}
 * does (the same {@link LocalCluster} code: N agent processes, each a front door, and a bridge) and
 * activated with passwords that live only in this JVM ({@link ThrowawayUsers}). {@code demo} and {@code bench}
 * run on it, so they take the path a deployment takes. {@link #close} stops it as {@code down} does and
 * deletes the directory; a shutdown hook does the same when the JVM is interrupted (Ctrl-C): the detached
 * nodes must not outlive it.
 */
final class ThrowawayCluster implements AutoCloseable {
  private final LocalCluster local;
  private final Path dir;
  private final PrintStream progress;
  private final Thread hook;
  private final ClusterRecord rec;
  private final LocalCluster.Ready ready;
  private final double startSeconds;
  private final ThrowawayUsers.Logins logins;
  private final Home home;

  private ThrowawayCluster(LocalCluster local, Home home, Path dir, PrintStream progress, Thread hook,
      ClusterRecord rec, LocalCluster.Ready ready, double startSeconds, ThrowawayUsers.Logins logins) {
    this.local = local;
    this.home = home;
    this.dir = dir;
    this.progress = progress;
    this.hook = hook;
    this.rec = rec;
    this.ready = ready;
    this.startSeconds = startSeconds;
    this.logins = logins;
  }

  /**
   * Starts a cluster of {@code hsms} HSMs and waits until every HSM serves and a request reaches one.
   *
   * @param plaintextListener also open the bridge's plaintext listener on 127.0.0.1 (benchmark rows)
   * @param progress where a failed start prints the log tail that shows why
   */
  static ThrowawayCluster start(int hsms, Path library, PrintStream progress, boolean plaintextListener)
      throws IOException {
    Path dir = Files.createTempDirectory("hsmbridge-throwaway-");
    Home home = new Home(dir);
    LocalCluster local = new LocalCluster(home);
    Thread hook = new Thread(() -> cleanUp(local, dir, progress), "hsmbridge-throwaway-cleanup");
    Runtime.getRuntime().addShutdownHook(hook);
    boolean started = false;
    try {
      ClusterRecord rec = ClusterLayout.newRecord(hsms, 0, ClusterCommands.DEFAULT_DURABILITY);
      ClusterLayout.write(home, rec, library);
      if (plaintextListener) {
        Files.writeString(home.bridge().nodeProperties(), "bridge.tcp.loopbackPlaintextPort=0\n", StandardOpenOption.APPEND);
      }
      long t0 = System.nanoTime();
      List<LocalNode.Spawned> spawned = local.startMissing(rec);
      LocalCluster.Ready ready;
      try {
        ready = local.awaitServing(spawned, rec.hsmIds());
      } catch (NodeFailure f) {
        ClusterCommands.printTail(progress, f);
        throw f;
      }
      double startSeconds = (System.nanoTime() - t0) / 1e9;
      awaitAnswering(ready.bridge());
      ThrowawayUsers.Logins logins;
      try (Hsm hsm = Hsm.owning(ready.bridge().connect(BridgeClient.DEFAULT_TIMEOUT))) {
        logins = ThrowawayUsers.activate(hsm);
      }
      ThrowawayCluster c = new ThrowawayCluster(local, home, dir, progress, hook, rec, ready, startSeconds, logins);
      started = true;
      return c;
    } finally {
      if (!started) {
        cleanUp(local, dir, progress);
        removeHook(hook);
      }
    }
  }

  /**
   * Waits (at most 60 s) until a request through the bridge reaches an HSM: on a loaded host the bridge
   * can report an HSM SERVING (heartbeats) a moment before it can route to it (measured: the first
   * request failed NO_HSM_AVAILABLE "after 1 attempt(s)").
   */
  private static void awaitAnswering(Endpoint bridge) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (true) {
      try (BridgeClient c = bridge.connect(Duration.ofSeconds(10))) {
        c.request(new JsonObject().put("op", "health"));
        return;
      } catch (HsmBridgeException e) {
        if (System.nanoTime() - deadline > 0) {
          throw e;
        }
        LocalNode.sleep(500);
      }
    }
  }

  /** The standalone bridge's client endpoint (TLS, pinning the cluster CA). */
  Endpoint bridge() {
    return ready.bridge();
  }

  /** The client endpoint (TLS, pinning the cluster CA) of the front door in {@code hsmId}'s agent process. */
  Endpoint frontDoor(String hsmId) throws IOException {
    Endpoint ep = Endpoint.read(home.hsm(hsmId).endpointJson()).filter(Endpoint::tls)
        .orElseThrow(() -> new CliException(hsmId + " serves no TLS client endpoint (front door)"));
    return ep.withCa(ready.bridge().ca());
  }

  /** The bridge's plaintext listener on 127.0.0.1 (only when started with {@code plaintextListener}). */
  int plaintextPort() throws IOException {
    return new JsonObject(Files.readString(home.bridge().endpointJson())).getInteger("loopbackPlaintextPort");
  }

  List<String> hsmIds() {
    return rec.hsmIds();
  }

  ClusterStatus status() {
    return ready.status();
  }

  /** Seconds from spawning the processes until every HSM served. */
  double startSeconds() {
    return startSeconds;
  }

  /** The admin's and the crypto user's sessions (passwords never left this JVM). */
  ThrowawayUsers.Logins logins() {
    return logins;
  }

  Path dir() {
    return dir;
  }

  @Override
  public void close() {
    cleanUp(local, dir, progress);
    removeHook(hook);
  }

  /** Stops every node and deletes the directory; idempotent. */
  private static synchronized void cleanUp(LocalCluster local, Path dir, PrintStream progress) {
    try {
      local.stop();
    } catch (IOException | RuntimeException e) {
      progress.println("warning: could not stop the throwaway cluster in " + dir + ": " + e.getMessage());
      return; // keep the directory: its node.pid files are how 'down --home' finds the nodes
    }
    try {
      DemoCommand.deleteTree(dir);
    } catch (IOException e) {
      progress.println("warning: could not delete " + dir + ": " + e.getMessage());
    }
  }

  /** Removes a shutdown hook that has not run; when the JVM is already shutting down it runs anyway. */
  static void removeHook(Thread hook) {
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException shuttingDown) {
      // the hook runs anyway; cleanUp is idempotent
    }
  }
}
