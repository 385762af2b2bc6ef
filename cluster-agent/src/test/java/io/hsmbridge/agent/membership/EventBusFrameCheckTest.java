package io.hsmbridge.agent.membership;

import static org.junit.jupiter.api.Assertions.*;

import io.vertx.core.buffer.Buffer;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The event-bus framing as the guard follows it: lengths checked at the header, bytes charged until a frame ends. */
class EventBusFrameCheckTest {
  private static Buffer frame(int length, int bodyBytes) {
    return Buffer.buffer().appendInt(length).appendBytes(new byte[bodyBytes]);
  }

  @Test
  void framesWithinTheLimitPassWhateverTheChunking() {
    AtomicLong budget = new AtomicLong(100);
    EventBusFrameCheck check = new EventBusFrameCheck(50, budget);
    Buffer two = frame(50, 50).appendBuffer(frame(1, 1));
    for (int i = 0; i < two.length(); i++) { // one byte at a time: headers split across chunks
      assertNull(check.admit(two.slice(i, i + 1)), "byte " + i);
    }
    assertNull(check.admit(two), "both frames in one chunk");
    assertEquals(100, budget.get(), "complete frames hold nothing");
    assertFalse(check.frameOlderThan(0, System.nanoTime()), "between frames");
  }

  @Test
  void aLengthOverTheLimitOrUnderOneIsRefusedAtItsHeader() {
    assertNotNull(new EventBusFrameCheck(50, new AtomicLong(100)).admit(Buffer.buffer().appendInt(51)));
    assertNotNull(new EventBusFrameCheck(50, new AtomicLong(100)).admit(Buffer.buffer().appendInt(0)));
    assertNotNull(new EventBusFrameCheck(50, new AtomicLong(100)).admit(Buffer.buffer().appendInt(-1)));
    assertTrue(new EventBusFrameCheck(50, new AtomicLong(100)).admit(Buffer.buffer().appendInt(Integer.MIN_VALUE))
        .contains("2147483648"));
    EventBusFrameCheck check = new EventBusFrameCheck(50, new AtomicLong(100));
    assertNull(check.admit(frame(10, 10)));
    assertNotNull(check.admit(frame(51, 0)), "a later frame too");
  }

  @Test
  void unfinishedFramesShareOneBudgetAndGiveItBackWhenTheirLinkCloses() {
    AtomicLong budget = new AtomicLong(100);
    EventBusFrameCheck first = new EventBusFrameCheck(80, budget);
    EventBusFrameCheck second = new EventBusFrameCheck(80, budget);
    assertNull(first.admit(frame(80, 60)));
    assertEquals(40, budget.get());
    assertTrue(first.frameOlderThan(-1, System.nanoTime()), "a frame is under way");
    assertNull(second.admit(frame(80, 40)));
    assertNotNull(second.admit(Buffer.buffer(new byte[1])), "one byte over the shared budget");
    assertEquals(0, budget.get());
    first.release();
    second.release();
    assertEquals(100, budget.get(), "closed links hold nothing");
  }
}
