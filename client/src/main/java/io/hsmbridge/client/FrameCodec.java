package io.hsmbridge.client;

import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * The Vert.x TCP event-bus bridge framing: a 4-byte big-endian length, then that many bytes of UTF-8
 * JSON. Stateless; callers serialise access to the streams.
 */
public final class FrameCodec {
  /** Largest frame accepted or sent (the protocol's payloads are at most ~90 KiB base64). */
  public static final int MAX_FRAME_BYTES = 16 * 1024 * 1024;
  /**
   * Largest request frame a client sends: the endpoint's default {@code bridge.tcp.maxFrameBytes}. The
   * endpoint closes a connection that announces a larger frame; the client refuses it locally instead
   * (INPUT_TOO_LARGE), so that one oversized request does not cost the connection.
   */
  public static final int MAX_REQUEST_FRAME_BYTES = 256 * 1024;

  private FrameCodec() {}

  /** Encodes one frame: length prefix plus JSON bytes. */
  public static byte[] encode(JsonObject frame) {
    byte[] json = frame.encode().getBytes(StandardCharsets.UTF_8);
    if (json.length > MAX_FRAME_BYTES) {
      throw new IllegalArgumentException("frame too large: " + json.length + " bytes");
    }
    byte[] out = new byte[4 + json.length];
    int n = json.length;
    out[0] = (byte) (n >>> 24);
    out[1] = (byte) (n >>> 16);
    out[2] = (byte) (n >>> 8);
    out[3] = (byte) n;
    System.arraycopy(json, 0, out, 4, n);
    return out;
  }

  /** Writes one frame and flushes. */
  public static void write(OutputStream out, JsonObject frame) throws IOException {
    out.write(encode(frame));
    out.flush();
  }

  /**
   * Reads one frame.
   *
   * @return the frame, or null on a clean end of stream before a frame started
   * @throws IOException on a truncated frame, an oversized length or a body that is not a JSON object
   */
  public static JsonObject read(DataInputStream in) throws IOException {
    int b0 = in.read();
    if (b0 < 0) {
      return null;
    }
    int n;
    try {
      n = (b0 << 24) | (in.readUnsignedByte() << 16) | (in.readUnsignedByte() << 8) | in.readUnsignedByte();
    } catch (EOFException e) {
      throw new EOFException("stream ended inside a frame header");
    }
    if (n < 0 || n > MAX_FRAME_BYTES) {
      throw new IOException("invalid frame length " + Integer.toUnsignedString(n));
    }
    byte[] body = new byte[n];
    try {
      in.readFully(body);
    } catch (EOFException e) {
      throw new EOFException("stream ended inside a frame of " + n + " bytes");
    }
    return decode(body);
  }

  /** Decodes a frame's body (without the length prefix). */
  static JsonObject decode(byte[] body) throws IOException {
    try {
      return new JsonObject(new String(body, StandardCharsets.UTF_8));
    } catch (DecodeException | ClassCastException e) {
      throw new IOException("frame is not a JSON object");
    }
  }
}
