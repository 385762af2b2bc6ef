package io.hsmbridge.agent.replication;

import static org.junit.jupiter.api.Assertions.fail;

import io.hsmbridge.agent.node.LoopbackPorts;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.function.BooleanSupplier;

/** N in-JVM Ratis peers on loopback, each with its own free port, storage directory and applier. */
final class TestCluster implements AutoCloseable {
  final List<MutationLog.Peer> peers = new ArrayList<>();
  final List<Applier> appliers;
  final MutationLog[] logs;
  final Path root;
  final UUID groupId = UUID.randomUUID();
  /** The group's CA: every peer has an agent certificate of it (the log never runs without mutual TLS). */
  final TestPki pki = TestPki.create();

  TestCluster(Path root, List<? extends Applier> appliers) {
    this.root = root;
    this.appliers = new ArrayList<>(appliers);
    this.logs = new MutationLog[appliers.size()];
    for (int i = 0; i < appliers.size(); i++) {
      peers.add(MutationLog.Peer.loopback("hsm-" + (i + 1), LoopbackPorts.one()));
    }
  }

  TestCluster startAll() {
    for (int i = 0; i < logs.length; i++) {
      start(i);
    }
    return this;
  }

  MutationLog start(int i) {
    if (logs[i] != null) {
      throw new IllegalStateException("peer " + i + " already running");
    }
    logs[i] = MutationLog.start(peers.get(i).id(), peers, groupId, root.resolve(peers.get(i).id()), appliers.get(i),
        pki.agentTls(peers.get(i).id()), LogEvents.NONE);
    return logs[i];
  }

  /** Gives a stopped peer another applier (e.g. a wiped token) for its next start. */
  void replaceApplier(int i, Applier applier) {
    if (logs[i] != null) {
      throw new IllegalStateException("peer " + i + " is running");
    }
    appliers.set(i, applier);
  }

  void stop(int i) {
    logs[i].close();
    logs[i] = null;
  }

  /** The index of the current leader among the running peers, waiting for one to be elected. */
  int leader() {
    long deadline = System.nanoTime() + 20_000_000_000L;
    while (System.nanoTime() < deadline) {
      for (int i = 0; i < logs.length; i++) {
        if (logs[i] != null && logs[i].isLeader()) {
          return i;
        }
      }
      sleep(50);
    }
    return fail("no leader elected within 20 s");
  }

  @Override
  public void close() {
    for (int i = 0; i < logs.length; i++) {
      if (logs[i] != null) {
        stop(i);
      }
    }
  }

  static void await(String what, long timeoutMillis, BooleanSupplier condition) {
    long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("timed out after " + timeoutMillis + " ms waiting for: " + what);
      }
      sleep(20);
    }
  }

  static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
