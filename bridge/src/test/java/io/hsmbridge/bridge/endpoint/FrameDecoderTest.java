package io.hsmbridge.bridge.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class FrameDecoderTest {
  private final List<String> frames = new ArrayList<>();
  private final FrameDecoder decoder = new FrameDecoder(1024, b -> frames.add(b.toString(StandardCharsets.UTF_8)));

  private static Buffer frame(String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    return Buffer.buffer().appendInt(b.length).appendBytes(b);
  }

  @Test
  void framesSplitAnywhereAndSeveralInOneReadComeOutWholeAndInOrder() {
    Buffer all = Buffer.buffer().appendBuffer(frame("{\"a\":1}")).appendBuffer(frame("{}")).appendBuffer(frame("x".repeat(1024)));
    for (int i = 0; i < all.length(); i++) {
      assertNull(decoder.feed(all.slice(i, i + 1).copy()));
    }
    assertEquals(List.of("{\"a\":1}", "{}", "x".repeat(1024)), frames);
    assertFalse(decoder.inFrame());
    assertNull(decoder.feed(Buffer.buffer().appendBuffer(frame("1")).appendBuffer(frame("2"))));
    assertEquals(5, frames.size());
  }

  @Test
  void anOversizedLengthFailsAtTheHeaderAndNothingAfterItIsRead() {
    Buffer b = Buffer.buffer().appendInt(1 << 30).appendBytes(new byte[4096]).appendBuffer(frame("{}"));
    assertEquals(FrameDecoder.Failure.FRAME_TOO_LARGE, decoder.feed(b));
    assertEquals(1L << 30, decoder.refusedLength());
    assertEquals(0, decoder.buffered(), "nothing of the body was kept");
    assertEquals(FrameDecoder.Failure.FRAME_TOO_LARGE, decoder.feed(frame("{}")));
    assertTrue(frames.isEmpty());
  }

  @Test
  void aLengthWithTheTopBitSetIsTooLargeNotNegative() {
    assertEquals(FrameDecoder.Failure.FRAME_TOO_LARGE, decoder.feed(Buffer.buffer().appendInt(-1)));
    assertEquals(0xffffffffL, decoder.refusedLength());
  }

  @Test
  void aFrameInProgressIsReportedWithWhatItBuffered() {
    assertNull(decoder.feed(Buffer.buffer().appendInt(100).appendBytes(new byte[10])));
    assertTrue(decoder.inFrame());
    assertEquals(10, decoder.buffered());
    assertTrue(frames.isEmpty());
  }
}
