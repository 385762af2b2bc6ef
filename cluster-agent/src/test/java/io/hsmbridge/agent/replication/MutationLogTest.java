package io.hsmbridge.agent.replication;

import static io.hsmbridge.agent.replication.TestCluster.await;
import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Three Ratis peers in one JVM on loopback, each applying to a recording in-memory applier. */
class MutationLogTest {
  private static final long COMMIT_TIMEOUT_S = 20;

  @TempDir
  Path dir;

  private static List<RecordingApplier> appliers(int n) {
    List<RecordingApplier> list = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      list.add(new RecordingApplier());
    }
    return list;
  }

  private static Mutation mutation(int i) {
    return new Mutation.DeleteKey(String.format("%032x", i));
  }

  private static long commit(MutationLog log, Mutation m) throws Exception {
    return log.submit(m).get(COMMIT_TIMEOUT_S, TimeUnit.SECONDS);
  }

  @Test
  @Timeout(90)
  void everyPeerAppliesTheSameOrderAndALaggingPeerCatchesUp() throws Exception {
    List<RecordingApplier> a = appliers(3);
    try (TestCluster c = new TestCluster(dir, a).startAll()) {
      List<Mutation> submitted = new ArrayList<>();
      List<Long> indexes = new ArrayList<>();
      for (int i = 0; i < 50; i++) {
        Mutation m = mutation(i);
        submitted.add(m);
        indexes.add(commit(c.logs[i % 3], m));
      }
      for (int i = 1; i < indexes.size(); i++) {
        assertTrue(indexes.get(i) > indexes.get(i - 1), "committed indexes increase: " + indexes);
      }
      for (RecordingApplier r : a) {
        await("50 applied", 20_000, () -> r.count() == 50);
        assertEquals(submitted, r.mutations());
        assertEquals(indexes, r.entries().stream().map(RecordingApplier.Applied::index).toList());
      }

      // Stop the leader: the two others elect a new one and still commit (2 of 3).
      int down = c.leader();
      c.stop(down);
      MutationLog up = c.logs[(down + 1) % 3];
      for (int i = 50; i < 60; i++) {
        Mutation m = mutation(i);
        submitted.add(m);
        commit(up, m);
      }
      for (int i = 0; i < 3; i++) {
        if (i != down) {
          RecordingApplier r = a.get(i);
          await("60 applied on a running peer", 20_000, () -> r.count() == 60);
          assertEquals(submitted, r.mutations());
        }
      }
      assertEquals(50, a.get(down).count(), "a stopped peer applies nothing");

      // Restart it over its log (its applier kept its index, as a token will): it catches up, in order, once each.
      c.start(down);
      RecordingApplier lagging = a.get(down);
      await("the restarted peer catches up", 30_000, () -> lagging.count() >= 60);
      TestCluster.sleep(500);
      assertEquals(submitted, lagging.mutations(), "caught up in order, nothing applied twice");
      assertEquals(a.get((down + 1) % 3).entries(), lagging.entries());
      assertEquals(c.logs[down].appliedIndex(), c.logs[(down + 1) % 3].appliedIndex());
    }
  }

  /**
   * A peer whose Raft port another process holds fails its start with the port named, and this JVM lives on:
   * Ratis called System.exit there (its gRPC server's bind failure), which ended an agent with no error of
   * its own, and ended this test JVM. Once the port is free, the same peer starts.
   */
  @Test
  @Timeout(60)
  void aTakenRaftPortFailsTheStartWithoutEndingTheJvm() throws Exception {
    List<RecordingApplier> a = appliers(1);
    TestCluster c = new TestCluster(dir, a);
    MutationLog.Peer self = c.peers.get(0);
    try (java.net.ServerSocket taken = new java.net.ServerSocket(self.port(), 1, java.net.InetAddress.getByName(self.host()))) {
      java.io.UncheckedIOException e = org.junit.jupiter.api.Assertions.assertThrows(java.io.UncheckedIOException.class,
          () -> c.start(0));
      assertTrue(e.getMessage().contains("cannot listen on " + self.address()), e.getMessage());
    }
    try (c) {
      c.start(0);
      assertTrue(commit(c.logs[0], mutation(1)) > 0, "the peer started on the freed port commits");
    }
  }

  /**
   * A follower that was down for a while is reached soon after it listens again: the leader does not wait
   * Ratis's default 5 s between attempts (MutationLog.APPENDER_RETRY_POLICY). Down 8 s with entries committed
   * meanwhile (the leader's attempts at it fail all that time), then restarted: it has applied them within
   * 3 s of its start returning; with Ratis's default policy the leader's next attempt could come up to 7.5 s
   * later.
   */
  @Test
  @Timeout(90)
  void aRestartedFollowerIsReachedSoonAfterItListens() throws Exception {
    assertNotNull(org.apache.ratis.retry.MultipleLinearRandomRetry.parseCommaSeparated(MutationLog.APPENDER_RETRY_POLICY),
        "Ratis parses the appender's retry policy");
    List<RecordingApplier> a = appliers(3);
    try (TestCluster c = new TestCluster(dir, a).startAll()) {
      int leader = c.leader();
      int down = (leader + 1) % 3;
      c.stop(down);
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(8);
      int submitted = 0;
      while (System.nanoTime() < until) {
        commit(c.logs[leader], mutation(submitted++));
        TestCluster.sleep(100);
      }
      int total = submitted;
      c.start(down);
      long started = System.nanoTime();
      RecordingApplier restarted = a.get(down);
      await("the restarted follower applies what it missed", 30_000, () -> restarted.count() >= total);
      long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
      System.out.println("a follower down 8 s (" + total + " entries meanwhile) applied them " + millis + " ms after its start");
      assertTrue(millis < 3_000, "the restarted follower caught up only " + millis + " ms after its start");
    }
  }

  /**
   * Told that the leader's process left the membership (AgentNode hears it from the membership links), the
   * survivor whose id sorts first stands at once and the other leaves it to that one; a peer told of a
   * departure that was not its leader's does nothing. In one JVM a peer cannot be SIGKILLed (a closed
   * leader hands its leadership over by itself), so the leader here is alive: the case of a membership link
   * that broke while the process runs. The standing survivor still wins, at the next term (the other votes
   * for a higher term and an equal log), the old leader steps down, and the group commits. FrontDoorsTest
   * checks the SIGKILL case on real processes.
   */
  @Test
  @Timeout(90)
  void whenTheLeadersProcessLeavesTheFirstSurvivorStandsAtOnceAndLeads() throws Exception {
    List<RecordingApplier> a = appliers(3);
    try (TestCluster c = new TestCluster(dir, a).startAll()) {
      commit(c.logs[0], mutation(0));
      for (RecordingApplier r : a) {
        await("first entry applied", 20_000, () -> r.count() == 1);
      }
      int leader = c.leader();
      String leaderId = c.peers.get(leader).id();
      List<Integer> survivors = new ArrayList<>(List.of(0, 1, 2));
      survivors.remove(Integer.valueOf(leader));
      int standing = survivors.get(0); // ids hsm-1..3 sort as the indexes do
      int other = survivors.get(1);
      String notLeader = c.logs[standing].leaderProcessLeft(c.peers.get(other).id());
      assertTrue(notLeader.startsWith(MutationLog.NOT_THE_LEADER), notLeader);
      assertTrue(c.logs[leader].leaderProcessLeft(c.peers.get(other).id()).startsWith(MutationLog.NOT_THE_LEADER));

      assertEquals(c.peers.get(standing).id() + " stands", c.logs[other].leaderProcessLeft(leaderId));
      String outcome = c.logs[standing].leaderProcessLeft(leaderId);
      assertTrue(outcome.startsWith("election started at "), outcome);
      await("the standing survivor leads", 20_000, () -> c.logs[standing].isLeader());
      await("the others follow it", 20_000,
          () -> java.util.Optional.of(c.peers.get(standing).id()).equals(c.logs[other].leaderId())
              && java.util.Optional.of(c.peers.get(standing).id()).equals(c.logs[leader].leaderId()));
      long index = commit(c.logs[leader], mutation(1));
      for (RecordingApplier r : a) {
        await("the entry is applied everywhere", 20_000, () -> r.count() == 2);
        assertEquals(index, r.entries().get(1).index());
      }
    }
  }

  @Test
  @Timeout(90)
  void aMinorityCannotCommitAndCommitsOnceAMajorityIsBack() throws Exception {
    List<RecordingApplier> a = appliers(3);
    try (TestCluster c = new TestCluster(dir, a).startAll()) {
      commit(c.logs[0], mutation(0));
      for (RecordingApplier r : a) {
        await("first entry applied", 20_000, () -> r.count() == 1);
      }
      c.stop(1);
      c.stop(2);

      CompletableFuture<Long> pending = c.logs[0].submit(mutation(1));
      assertThrows(TimeoutException.class, () -> pending.get(4, TimeUnit.SECONDS), "one peer of three must not commit");
      assertEquals(1, a.get(0).count(), "nothing applied without a majority");

      c.start(1);
      long index = pending.get(COMMIT_TIMEOUT_S, TimeUnit.SECONDS);
      for (int i : new int[] {0, 1}) {
        RecordingApplier r = a.get(i);
        await("the entry is applied once a majority is back", 20_000, () -> r.count() == 2);
        assertEquals(List.of(mutation(0), mutation(1)), r.mutations());
        assertEquals(index, r.entries().get(1).index());
      }
    }
  }

  @Test
  @Timeout(90)
  void aWholeClusterRestartReappliesNothingAndAFreshApplierGetsTheWholeLog() throws Exception {
    List<RecordingApplier> a = appliers(3);
    try (TestCluster c = new TestCluster(dir, a).startAll()) {
      for (int i = 0; i < 5; i++) {
        commit(c.logs[0], mutation(i));
      }
      for (RecordingApplier r : a) {
        await("5 applied", 20_000, () -> r.count() == 5);
      }
      c.close();
      // All restart over their logs; peer 3 comes back with an empty applier (a wiped token) and gets the whole log.
      RecordingApplier fresh = new RecordingApplier();
      c.replaceApplier(2, fresh);
      c.startAll();
      commit(c.logs[0], mutation(5));
      List<Mutation> expected = new ArrayList<>();
      for (int i = 0; i < 6; i++) {
        expected.add(mutation(i));
      }
      for (RecordingApplier r : List.of(a.get(0), a.get(1), fresh)) {
        await("6 applied", 20_000, () -> r.count() >= 6);
      }
      TestCluster.sleep(300);
      assertEquals(expected, a.get(0).mutations(), "entries 1-5 were not applied again");
      assertEquals(expected, a.get(1).mutations());
      assertEquals(expected, fresh.mutations());
    }
  }

  @Test
  @Timeout(90)
  void aPeerThatCannotApplyAnEntryStopsAndAppliesItAfterARestart() throws Exception {
    List<RecordingApplier> a = appliers(3);
    RecordingApplier third = a.get(2);
    java.util.concurrent.atomic.AtomicBoolean tokenDown = new java.util.concurrent.atomic.AtomicBoolean(true);
    Applier flaky = new Applier() {
      @Override
      public void apply(long index, Mutation mutation) {
        if (tokenDown.get()) {
          throw new IllegalStateException("token unavailable");
        }
        third.apply(index, mutation);
      }

      @Override
      public long lastApplied() {
        return third.lastApplied();
      }

      @Override
      public void applied(long index) {
        third.applied(index);
      }
    };
    List<Applier> withFlaky = List.of(a.get(0), a.get(1), flaky);
    try (TestCluster c = new TestCluster(dir, withFlaky).startAll()) {
      commit(c.logs[0], mutation(0));
      commit(c.logs[0], mutation(1));
      await("the failure is recorded", 20_000, () -> c.logs[2].failure() != null);
      await("the others applied both", 20_000, () -> a.get(0).count() == 2 && a.get(1).count() == 2);
      TestCluster.sleep(500);
      assertEquals(0, third.count(), "nothing applied past the failed entry");
      assertTrue(c.logs[0].isAlive());
      await("Ratis stops the division whose state machine failed", 20_000, () -> !c.logs[2].isAlive());

      c.stop(2);
      tokenDown.set(false);
      c.start(2);
      await("the restarted peer applies from the failed entry on", 30_000, () -> third.count() == 2);
      assertEquals(List.of(mutation(0), mutation(1)), third.mutations());
    }
  }
}
