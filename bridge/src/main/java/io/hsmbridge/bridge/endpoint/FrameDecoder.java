package io.hsmbridge.bridge.endpoint;

import io.vertx.core.buffer.Buffer;
import java.util.function.Consumer;

/**
 * Splits a connection's bytes into frames of the TCP event-bus bridge protocol: a 4-byte big-endian
 * length, then that many bytes. The length is checked against the cap as soon as its 4 bytes are in,
 * before a byte of the body is kept: an oversized (or negative) length fails the decoder for good and
 * nothing is buffered for it. A body is buffered only up to what actually arrived.
 *
 * <p>Not thread-safe: one instance per connection, fed on the connection's event loop.
 */
final class FrameDecoder {
  /** Why the decoder stopped; the connection must be closed. */
  enum Failure { FRAME_TOO_LARGE }

  private final int maxFrameBytes;
  private final Consumer<Buffer> frames;
  private final byte[] header = new byte[4];
  private int headerLen;
  private int expected = -1;
  private Buffer body;
  private Failure failure;
  /** The announced length that made it fail (for the log: a size, never content). */
  private long refusedLength;

  FrameDecoder(int maxFrameBytes, Consumer<Buffer> frames) {
    this.maxFrameBytes = maxFrameBytes;
    this.frames = frames;
  }

  /**
   * Takes bytes off the wire; hands every complete frame's body to the consumer, in order.
   *
   * @return null, or the failure that ended the stream (nothing after it is read)
   */
  Failure feed(Buffer data) {
    int pos = 0;
    int len = data.length();
    while (pos < len && failure == null) {
      if (expected < 0) {
        while (headerLen < 4 && pos < len) {
          header[headerLen++] = data.getByte(pos++);
        }
        if (headerLen < 4) {
          break;
        }
        long n = ((header[0] & 0xffL) << 24) | ((header[1] & 0xffL) << 16) | ((header[2] & 0xffL) << 8) | (header[3] & 0xffL);
        headerLen = 0;
        if (n > maxFrameBytes) {
          refusedLength = n;
          failure = Failure.FRAME_TOO_LARGE;
          body = null;
          return failure;
        }
        expected = (int) n;
        body = Buffer.buffer(Math.min(expected, 64 * 1024));
      }
      int take = Math.min(expected - body.length(), len - pos);
      if (take > 0) {
        body.appendBuffer(data, pos, take);
        pos += take;
      }
      if (body.length() == expected) {
        Buffer frame = body;
        body = null;
        expected = -1;
        frames.accept(frame);
      }
    }
    return failure;
  }

  /** True while a frame has started (header or body bytes in) but is not complete. */
  boolean inFrame() {
    return headerLen > 0 || expected >= 0;
  }

  /** Bytes held for the frame in progress (header included). */
  int buffered() {
    return headerLen + (body == null ? 0 : body.length());
  }

  long refusedLength() {
    return refusedLength;
  }
}
