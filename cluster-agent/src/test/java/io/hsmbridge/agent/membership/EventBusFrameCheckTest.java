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

  /** The start of a frame's body as Vert.x writes it: version, codec (-1: named), send, address. */
  private static Buffer body(String codecName, String address, int padding) {
    Buffer b = Buffer.buffer().appendByte((byte) 2);
    if (codecName == null) {
      b.appendByte((byte) 9);
    } else {
      byte[] name = codecName.getBytes(java.nio.charset.StandardCharsets.UTF_8);
      b.appendByte((byte) -1).appendInt(name.length).appendBytes(name);
    }
    byte[] a = address.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    return b.appendByte((byte) 1).appendInt(a.length).appendBytes(a).appendBytes(new byte[padding]);
  }

  private static Buffer framed(Buffer body) {
    return Buffer.buffer().appendInt(body.length()).appendBuffer(body);
  }

  @Test
  void theAddressIsReadFromTheFramesFirstBytesWhateverTheCodecAndChunking() {
    for (String codec : new String[] {null, "payments-codec"}) {
      FrameAddress reading = new FrameAddress();
      Buffer b = body(codec, "hsmbridge.v1.heartbeat", 30);
      String address = null;
      int fed = 0;
      while (address == null) {
        assertTrue(reading.missing() > 0);
        address = reading.feed(b.getByte(fed++));
      }
      assertEquals("hsmbridge.v1.heartbeat", address);
      assertEquals(0, reading.missing());
      assertEquals(b.length() - 30, fed, "no byte past the address is needed");
    }
    FrameAddress tooLong = new FrameAddress();
    Buffer lying = Buffer.buffer().appendByte((byte) 2).appendByte((byte) 9).appendByte((byte) 1).appendInt(1 << 20);
    assertThrows(IllegalArgumentException.class, () -> {
      for (int i = 0; i < lying.length(); i++) {
        tooLong.feed(lying.getByte(i));
      }
    });
  }

  @Test
  void withAnAddressRuleAFrameToAnAddressItRefusesIsRefusedBeforeItsLastByte() {
    java.util.function.Predicate<String> rule = a -> !a.startsWith("hsmbridge.") || a.equals("hsmbridge.v1.client");
    Buffer toClient = framed(body(null, "hsmbridge.v1.client", 100));
    Buffer own = framed(body("c", "payments.own", 5));
    Buffer ping = framed(body(null, "__vertx_ping", 1));
    EventBusFrameCheck check = new EventBusFrameCheck(1000, new AtomicLong(10_000), rule);
    Buffer all = toClient.copy().appendBuffer(own).appendBuffer(ping);
    for (int i = 0; i < all.length(); i += 7) {
      assertNull(check.admit(all.slice(i, Math.min(all.length(), i + 7))), "chunk at " + i);
    }
    Buffer heartbeat = framed(body(null, "hsmbridge.v1.heartbeat", 50));
    EventBusFrameCheck refusing = new EventBusFrameCheck(1000, new AtomicLong(10_000), rule);
    String refusal = refusing.admit(heartbeat.slice(0, heartbeat.length() - 1));
    assertNotNull(refusal, "refused with the address, before the frame's last byte");
    assertTrue(refusal.contains("hsmbridge.v1.heartbeat"), refusal);
    EventBusFrameCheck noRule = new EventBusFrameCheck(1000, new AtomicLong(10_000));
    assertNull(noRule.admit(heartbeat), "agents and front doors send anywhere");
    assertNotNull(new EventBusFrameCheck(1000, new AtomicLong(10_000), rule).admit(Buffer.buffer().appendInt(3)
        .appendBytes(new byte[] {2, 9, 1})), "a frame that ends before its address");
  }
}
