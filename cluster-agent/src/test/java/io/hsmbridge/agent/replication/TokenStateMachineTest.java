package io.hsmbridge.agent.replication;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.util.List;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;
import org.junit.jupiter.api.Test;

class TokenStateMachineTest {
  private static byte[] delete(String id) {
    return new Mutation.DeleteKey(id).toBytes();
  }

  @Test
  void appliesInOrderAndReapplyingAnAppliedIndexIsANoOp() {
    RecordingApplier r = new RecordingApplier();
    TokenStateMachine sm = new TokenStateMachine(r);
    sm.apply(1, 1, delete("a"));
    sm.apply(1, 2, delete("b"));
    assertEquals(2, r.lastApplied());
    assertEquals(2, sm.getLastAppliedTermIndex().getIndex());
    // A restarted peer's log is replayed from its start: what the applier already has is skipped.
    TokenStateMachine restarted = new TokenStateMachine(r);
    restarted.apply(1, 1, delete("a"));
    restarted.apply(1, 2, delete("b"));
    restarted.apply(2, 3, delete("c"));
    assertEquals(List.of(new Mutation.DeleteKey("a"), new Mutation.DeleteKey("b"), new Mutation.DeleteKey("c")), r.mutations());
    assertEquals(3, r.lastApplied());
    assertEquals(3, restarted.getLastAppliedTermIndex().getIndex());
    assertEquals(2, restarted.getLastAppliedTermIndex().getTerm());
  }

  @Test
  void anEntryThatCannotBeAppliedIsNotSkipped() {
    RecordingApplier r = new RecordingApplier();
    Applier failing = new Applier() {
      @Override
      public void apply(long index, Mutation mutation) {
        throw new IllegalStateException("token unavailable");
      }

      @Override
      public long lastApplied() {
        return r.lastApplied();
      }

      @Override
      public void applied(long index) {
        r.applied(index);
      }
    };
    TokenStateMachine sm = new TokenStateMachine(failing);
    assertThrows(IllegalStateException.class, () -> sm.apply(1, 1, delete("a")));
    assertEquals(0, r.lastApplied(), "not recorded as applied");
    assertInstanceOf(IllegalStateException.class, sm.failure());
    // Retried after a restart: applied then.
    new TokenStateMachine(r).apply(1, 1, delete("a"));
    assertEquals(1, r.lastApplied());
  }

  @Test
  void aReadOnlyQueryAnswersTheAppliedIndexAsEightBytesBigEndian() throws Exception {
    RecordingApplier r = new RecordingApplier();
    TokenStateMachine sm = new TokenStateMachine(r);
    Message query = Message.valueOf(ByteString.copyFrom(TokenStateMachine.APPLIED_INDEX_QUERY));
    assertArrayEquals(new byte[8], sm.query(query).get().getContent().toByteArray());
    sm.apply(1, 7, delete("a"));
    sm.apply(1, (1L << 33) + 1, delete("b"));
    assertArrayEquals(ByteBuffer.allocate(8).putLong((1L << 33) + 1).array(), sm.query(query).get().getContent().toByteArray());
    assertTrue(sm.query(Message.valueOf("something else")).isCompletedExceptionally());
  }

  /** Records what the state machine reports. */
  static final class RecordingEvents implements LogEvents {
    final List<String> lines = new java.util.ArrayList<>();

    @Override
    public void refused(long index, String kind, String reason) {
      lines.add("refused " + index + " " + kind + ": " + reason);
    }

    @Override
    public void configurationChanged(long index, List<String> peers, List<String> oldPeers) {
      lines.add("configuration " + index + " " + peers + " " + oldPeers);
    }
  }

  @Test
  void anEntryThatDoesNotDecodeIsSkippedCountedAndReportedAndLaterEntriesAreApplied() {
    RecordingApplier r = new RecordingApplier();
    RecordingEvents events = new RecordingEvents();
    TokenStateMachine sm = new TokenStateMachine(r, events);
    sm.apply(1, 1, delete("a"));
    sm.apply(1, 2, new byte[] {1, 99, 0, 0}); // a 4-byte entry of an unknown kind
    byte[] truncated = java.util.Arrays.copyOf(delete("b"), 5);
    sm.apply(1, 3, truncated);
    sm.apply(1, 4, delete("c"));
    assertNull(sm.failure(), "never a reason to stop");
    assertEquals(List.of(new Mutation.DeleteKey("a"), new Mutation.DeleteKey("c")), r.mutations());
    assertEquals(4, r.lastApplied(), "the applied index moved past the refused entries");
    assertEquals(2, sm.refusedEntries());
    assertEquals(3, sm.lastRefusal().index());
    assertEquals("unknown", sm.lastRefusal().kind());
    assertEquals(List.of("refused 2 unknown: unknown mutation kind 99", "refused 3 unknown: truncated mutation entry"),
        events.lines);
    // A restart replays the log: the refused entries are behind the applied index, not refused again.
    TokenStateMachine restarted = new TokenStateMachine(r, events);
    for (long i = 1; i <= 4; i++) {
      restarted.apply(1, i, i == 2 ? new byte[] {1, 99, 0, 0} : i == 3 ? truncated : delete("x"));
    }
    assertEquals(0, restarted.refusedEntries());
    assertEquals(2, events.lines.size());
  }

  @Test
  void anEntryTheApplierRefusesIsSkippedOnEveryPeerAlikeAndNotRetried() {
    RecordingApplier r = new RecordingApplier();
    java.util.concurrent.atomic.AtomicInteger calls = new java.util.concurrent.atomic.AtomicInteger();
    Applier refusing = new Applier() {
      @Override
      public void apply(long index, Mutation mutation) {
        calls.incrementAndGet();
        if (mutation instanceof Mutation.DeleteKey d && d.keyId().equals("forbidden")) {
          throw new RefusedEntryException("principal bob may not delete this key");
        }
        r.apply(index, mutation);
      }

      @Override
      public long lastApplied() {
        return r.lastApplied();
      }

      @Override
      public void applied(long index) {
        r.applied(index);
      }
    };
    RecordingEvents events = new RecordingEvents();
    TokenStateMachine sm = new TokenStateMachine(refusing, events);
    sm.apply(1, 1, delete("forbidden"));
    sm.apply(1, 2, delete("fine"));
    assertNull(sm.failure());
    assertEquals(2, calls.get(), "the refused entry is tried once, not retried");
    assertEquals(List.of(new Mutation.DeleteKey("fine")), r.mutations());
    assertEquals(2, r.lastApplied());
    assertEquals(1, sm.refusedEntries());
    assertEquals(new TokenStateMachine.Refusal(1, "DELETE_KEY", "principal bob may not delete this key"), sm.lastRefusal());
    assertEquals(List.of("refused 1 DELETE_KEY: principal bob may not delete this key"), events.lines);
  }

  @Test
  void aReasonIsCutAndKeptOnOneLine() {
    String reason = TokenStateMachine.reason(new RefusedEntryException("a\nb" + "x".repeat(500)));
    assertEquals(TokenStateMachine.MAX_REASON + 3, reason.length());
    assertFalse(reason.contains("\n"));
  }

  @Test
  void onlyRealMembershipChangesAreReportedAndRecordedAsApplied() {
    RecordingApplier r = new RecordingApplier();
    RecordingEvents events = new RecordingEvents();
    TokenStateMachine sm = new TokenStateMachine(r, events);
    sm.notifyConfigurationChanged(1, 0, conf(List.of("hsm-1", "hsm-2", "hsm-3"), List.of()));
    sm.apply(1, 1, delete("a"));
    // A new leader logs the same membership again: nothing to report.
    sm.notifyConfigurationChanged(2, 2, conf(List.of("hsm-1", "hsm-2", "hsm-3"), List.of()));
    sm.notifyConfigurationChanged(2, 3, conf(List.of("hsm-1", "hsm-2"), List.of("hsm-1", "hsm-2", "hsm-3")));
    sm.notifyConfigurationChanged(2, 4, conf(List.of("hsm-2", "hsm-1"), List.of()));
    assertEquals(List.of("configuration 3 [hsm-1, hsm-2] [hsm-1, hsm-2, hsm-3]", "configuration 4 [hsm-1, hsm-2] []"),
        events.lines);
    assertEquals(4, r.lastApplied());
    // Replayed after a restart: behind the applied index, not reported again.
    TokenStateMachine restarted = new TokenStateMachine(r, events);
    restarted.notifyConfigurationChanged(1, 0, conf(List.of("hsm-1", "hsm-2", "hsm-3"), List.of()));
    restarted.notifyConfigurationChanged(2, 3, conf(List.of("hsm-1", "hsm-2"), List.of("hsm-1", "hsm-2", "hsm-3")));
    restarted.notifyConfigurationChanged(2, 4, conf(List.of("hsm-1", "hsm-2"), List.of()));
    assertEquals(2, events.lines.size());
  }

  private static org.apache.ratis.proto.RaftProtos.RaftConfigurationProto conf(List<String> peers, List<String> old) {
    var b = org.apache.ratis.proto.RaftProtos.RaftConfigurationProto.newBuilder();
    peers.forEach(p -> b.addPeers(peer(p)));
    old.forEach(p -> b.addOldPeers(peer(p)));
    return b.build();
  }

  private static org.apache.ratis.proto.RaftProtos.RaftPeerProto peer(String id) {
    return org.apache.ratis.proto.RaftProtos.RaftPeerProto.newBuilder().setId(ByteString.copyFromUtf8(id))
        .setAddress("127.0.0.1:1").build();
  }
}
