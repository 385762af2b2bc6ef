package io.hsmbridge.agent.membership;

import java.nio.charset.StandardCharsets;

/**
 * The destination address at the start of an event-bus frame's body, read as it arrives (vertx-core 5.1.6
 * {@code ClusteredMessage.readFromWire}): a version byte, a codec byte (-1: then a length-prefixed codec
 * name), a send/publish byte, then the length-prefixed address. Only these first bytes are kept, at most
 * {@link #MAX_PREFIX_BYTES}.
 */
final class FrameAddress {
  static final int MAX_CODEC_NAME_BYTES = 256;
  static final int MAX_ADDRESS_BYTES = 1024;
  static final int MAX_PREFIX_BYTES = 2 + 4 + MAX_CODEC_NAME_BYTES + 1 + 4 + MAX_ADDRESS_BYTES;

  private final byte[] prefix = new byte[MAX_PREFIX_BYTES];
  private int have;
  private String address;

  /** Bytes still needed before the address is known (at least 1 while it is not); 0 once it is. */
  int missing() {
    return address != null ? 0 : needed() - have;
  }

  /**
   * Takes the next body byte; the address once it is complete, else null.
   *
   * @throws IllegalArgumentException when a length in the prefix is out of bounds
   */
  String feed(byte b) {
    prefix[have++] = b;
    int needed = needed();
    if (have == needed && addressFrom >= 0) {
      address = new String(prefix, addressFrom, needed - addressFrom, StandardCharsets.UTF_8);
    }
    return address;
  }

  String address() {
    return address;
  }

  /** Where the address starts in the prefix, once its length has arrived; else -1 (set by {@link #needed}). */
  private int addressFrom = -1;

  /** How many prefix bytes are needed, given what has arrived so far. */
  private int needed() {
    addressFrom = -1;
    if (have < 2) {
      return 2;
    }
    int afterCodec = 2;
    if (prefix[1] == -1) { // a codec of the application's, named
      if (have < 6) {
        return 6;
      }
      int nameLength = intAt(2);
      if (nameLength < 0 || nameLength > MAX_CODEC_NAME_BYTES) {
        throw new IllegalArgumentException("a codec name of " + nameLength + " bytes");
      }
      afterCodec = 6 + nameLength;
    }
    int lengthAt = afterCodec + 1; // after the send/publish byte
    if (have < lengthAt + 4) {
      return lengthAt + 4;
    }
    int length = intAt(lengthAt);
    if (length < 0 || length > MAX_ADDRESS_BYTES) {
      throw new IllegalArgumentException("an address of " + length + " bytes");
    }
    addressFrom = lengthAt + 4;
    return addressFrom + length;
  }

  private int intAt(int at) {
    return ((prefix[at] & 0xff) << 24) | ((prefix[at + 1] & 0xff) << 16) | ((prefix[at + 2] & 0xff) << 8)
        | (prefix[at + 3] & 0xff);
  }
}
