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

  @Test
  void aCorruptEntryIsNotSkippedEither() {
    RecordingApplier r = new RecordingApplier();
    TokenStateMachine sm = new TokenStateMachine(r);
    assertThrows(IllegalArgumentException.class, () -> sm.apply(1, 1, new byte[] {9, 9}));
    assertEquals(0, r.lastApplied());
    assertNotNull(sm.failure());
  }
}
