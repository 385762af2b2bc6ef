package io.hsmbridge.agent.membership;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.ProtocolException;

/**
 * The membership link's framing: a type byte, a 4-byte big-endian length, then the body. A sender pushes
 * {@link #STATE} (its whole {@link MemberState}, every heartbeat) and finally {@link #LEAVE}; the receiver
 * answers each state with {@link #ACK} (the version it applied). The length is checked against the
 * type's bound before a byte of the body is read, so a lying header costs the reader nothing.
 */
final class MemberFrames {
  static final byte STATE = 1;
  static final byte LEAVE = 2;
  static final byte ACK = 3;

  record Frame(byte type, byte[] body) {}

  private MemberFrames() {}

  static void write(DataOutputStream out, byte type, byte[] body) throws IOException {
    synchronized (out) {
      out.writeByte(type);
      out.writeInt(body.length);
      out.write(body);
      out.flush();
    }
  }

  static void writeAck(DataOutputStream out, long version) throws IOException {
    write(out, ACK, java.nio.ByteBuffer.allocate(8).putLong(version).array());
  }

  static long ackVersion(Frame ack) throws ProtocolException {
    if (ack.type() != ACK || ack.body().length != 8) {
      throw new ProtocolException("expected an acknowledgement, got frame type " + ack.type());
    }
    return java.nio.ByteBuffer.wrap(ack.body()).getLong();
  }

  /** Reads one frame; an unknown type or a length over the type's bound is a ProtocolException. */
  static Frame read(DataInputStream in) throws IOException {
    byte type = in.readByte();
    int length = in.readInt();
    int max = switch (type) {
      case STATE -> MemberState.MAX_ENCODED_BYTES;
      case LEAVE -> 0;
      case ACK -> 8;
      default -> throw new ProtocolException("unknown membership frame type " + type);
    };
    if (length < 0 || length > max) {
      throw new ProtocolException("membership frame of type " + type + " announces " + length
          + " bytes (at most " + max + ")");
    }
    byte[] body = new byte[length];
    in.readFully(body);
    return new Frame(type, body);
  }
}
