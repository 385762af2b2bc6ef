package io.hsmbridge.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.vertx.core.json.JsonObject;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class FrameCodecTest {

  private static DataInputStream in(byte[] b) {
    return new DataInputStream(new ByteArrayInputStream(b));
  }

  @Test
  void encodesBigEndianLengthThenUtf8Json() {
    byte[] frame = FrameCodec.encode(new JsonObject().put("k", "é"));
    byte[] json = "{\"k\":\"é\"}".getBytes(StandardCharsets.UTF_8);
    assertEquals(4 + json.length, frame.length);
    assertArrayEquals(new byte[] {0, 0, 0, (byte) json.length}, Arrays.copyOf(frame, 4));
    assertArrayEquals(json, Arrays.copyOfRange(frame, 4, frame.length));
  }

  @Test
  void roundTripsSeveralFramesThenCleanEnd() throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    JsonObject a = new JsonObject().put("type", "send").put("body", new JsonObject().put("n", 1));
    JsonObject b = new JsonObject().put("big", "x".repeat(70_000));
    FrameCodec.write(out, a);
    FrameCodec.write(out, b);
    DataInputStream in = in(out.toByteArray());
    assertEquals(a, FrameCodec.read(in));
    assertEquals(b, FrameCodec.read(in));
    assertNull(FrameCodec.read(in));
  }

  @Test
  void lengthAbove255UsesAllHeaderBytes() {
    byte[] frame = FrameCodec.encode(new JsonObject().put("s", "y".repeat(0x1_0203)));
    int n = frame.length - 4;
    assertEquals((byte) (n >>> 16), frame[1]);
    assertEquals((byte) (n >>> 8), frame[2]);
    assertEquals((byte) n, frame[3]);
  }

  @Test
  void truncatedHeaderIsAnError() {
    assertThrows(EOFException.class, () -> FrameCodec.read(in(new byte[] {0, 0})));
  }

  @Test
  void truncatedBodyIsAnError() {
    byte[] frame = FrameCodec.encode(new JsonObject().put("a", 1));
    assertThrows(EOFException.class, () -> FrameCodec.read(in(Arrays.copyOf(frame, frame.length - 1))));
  }

  @Test
  void oversizedOrNegativeLengthIsRejectedBeforeAllocating() {
    assertThrows(IOException.class, () -> FrameCodec.read(in(new byte[] {0x7f, 0, 0, 0})));
    assertThrows(IOException.class, () -> FrameCodec.read(in(new byte[] {(byte) 0x80, 0, 0, 0})));
  }

  @Test
  void bodyThatIsNotAJsonObjectIsRejected() {
    byte[] json = "[1,2]".getBytes(StandardCharsets.UTF_8);
    byte[] frame = new byte[4 + json.length];
    frame[3] = (byte) json.length;
    System.arraycopy(json, 0, frame, 4, json.length);
    assertThrows(IOException.class, () -> FrameCodec.read(in(frame)));
  }
}
