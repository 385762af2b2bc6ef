package io.hsmbridge.agent.membership;

import io.vertx.core.buffer.Buffer;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

/**
 * The framing of one inbound event-bus connection, followed byte by byte before Vert.x sees a chunk: every
 * frame is a 4-byte big-endian length, then that many bytes (vertx-core 5.1.6 {@code InboundConnection}).
 * Vert.x buffers a frame whole before decoding it, so a frame's announced length is what it will hold in
 * memory: this check refuses a length under 1 or over the limit at its header, and charges the bytes a
 * frame has received so far to a budget shared by all connections (what Vert.x holds at this moment) until
 * the frame is complete. With an address rule (links of members that may not send everywhere), each frame's
 * destination is read from its first bytes ({@link FrameAddress}) and a frame to an address the rule refuses
 * is refused before its last byte, so before Vert.x could deliver it. Not thread-safe: one connection's chunks
 * arrive on its event loop, one at a time.
 */
final class EventBusFrameCheck {
  private final int maxFrameBytes;
  private final AtomicLong budget;
  /** Which addresses frames may go to; null: any. */
  private final Predicate<String> allowedAddress;
  /** The current frame's address while it is still arriving (with an address rule), else null. */
  private FrameAddress pendingAddress;
  private int headerBytesRead;
  private int header;
  /** Bytes of the current frame's body still to come; 0 between frames. */
  private int bodyLeft;
  /** Bytes of the current frame received and charged to the budget. */
  private long charged;
  /** When the current frame's header arrived (System.nanoTime), or 0 between frames. */
  private volatile long frameStartedNanos;

  EventBusFrameCheck(int maxFrameBytes, AtomicLong budget) {
    this(maxFrameBytes, budget, null);
  }

  EventBusFrameCheck(int maxFrameBytes, AtomicLong budget, Predicate<String> allowedAddress) {
    this.maxFrameBytes = maxFrameBytes;
    this.budget = budget;
    this.allowedAddress = allowedAddress;
  }

  /**
   * Follows {@code chunk}; null when it keeps within the limits (Vert.x may have it), else why not (the
   * connection must then be closed, and nothing of the chunk handed on).
   */
  String admit(Buffer chunk) {
    int n = chunk.length();
    int i = 0;
    while (i < n) {
      if (bodyLeft > 0) {
        int take = Math.min(bodyLeft, n - i);
        if (pendingAddress != null) {
          take = Math.min(take, pendingAddress.missing());
        }
        if (!charge(take)) {
          return "the event-bus frames being received would hold more than their shared budget (this frame had "
              + charged + " of its bytes)";
        }
        if (pendingAddress != null) {
          String refusal = readAddress(chunk, i, take);
          if (refusal != null) {
            return refusal;
          }
        }
        i += take;
        bodyLeft -= take;
        if (bodyLeft == 0) {
          if (pendingAddress != null) {
            return "a frame that ends before its address";
          }
          endFrame();
        }
        continue;
      }
      header = (header << 8) | (chunk.getByte(i++) & 0xff);
      if (++headerBytesRead == 4) {
        int length = header;
        headerBytesRead = 0;
        header = 0;
        if (length < 1 || length > maxFrameBytes) {
          return "a frame of " + Integer.toUnsignedString(length) + " bytes announced, over the event-bus limit of "
              + maxFrameBytes + " bytes";
        }
        bodyLeft = length;
        frameStartedNanos = System.nanoTime();
        pendingAddress = allowedAddress == null ? null : new FrameAddress();
      }
    }
    return null;
  }

  /** Reads {@code count} bytes of the current frame's address prefix; null, or why the frame is refused. */
  private String readAddress(Buffer chunk, int from, int count) {
    for (int k = from; k < from + count; k++) {
      String address;
      try {
        address = pendingAddress.feed(chunk.getByte(k));
      } catch (IllegalArgumentException e) {
        return "a frame with " + e.getMessage();
      }
      if (address != null) {
        pendingAddress = null;
        if (!allowedAddress.test(address)) {
          return "a frame to " + (address.length() > 100 ? address.substring(0, 100) + "..." : address)
              + ", an address this member may not send to";
        }
      }
    }
    return null;
  }

  /** Whether a frame has been arriving for longer than {@code timeoutNanos} (checked from any thread). */
  boolean frameOlderThan(long timeoutNanos, long nowNanos) {
    long started = frameStartedNanos;
    return started != 0 && nowNanos - started > timeoutNanos;
  }

  /** The connection closed: what its unfinished frame held goes back to the budget. */
  void release() {
    budget.addAndGet(charged);
    charged = 0;
  }

  private boolean charge(int bytes) {
    if (budget.addAndGet(-bytes) < 0) {
      budget.addAndGet(bytes);
      return false;
    }
    charged += bytes;
    return true;
  }

  private void endFrame() {
    release();
    frameStartedNanos = 0;
  }
}
