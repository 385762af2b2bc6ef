package io.hsmbridge.agent.replication;

import io.hsmbridge.pkcs11.ReplicaBlob;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Objects;

/**
 * One entry of the cluster's mutation log: what every HSM applies, in log order. Holds no PIN and no
 * plaintext key material: a replicated key travels only as its {@link ReplicaBlob} fields (the key
 * wrapped under the cluster key, plus metadata).
 *
 * <p>Wire format (big-endian, {@link DataOutputStream}): byte {@link #FORMAT_VERSION}, byte kind, then
 * the kind's fields. Strings are an int length + UTF-8 bytes, byte arrays an int length + bytes (-1 for
 * null), enums by name. A reader refuses an unknown version or kind, and trailing bytes.
 */
public sealed interface Mutation permits Mutation.InstallReplica, Mutation.DeleteKey, Mutation.SetLabel {
  /**
   * The only format version so far. SET_LABEL (kind 3) was added without a new version: every member of a
   * cluster runs the same build (see docs/replication.md), and an older reader refuses kind 3 as unknown.
   */
  byte FORMAT_VERSION = 1;
  /** Upper bound for any length field: a corrupt entry fails fast instead of allocating gigabytes. */
  int MAX_FIELD = 1 << 20;

  /** The kind's tag on the wire. */
  Kind kind();

  enum Kind {
    INSTALL_REPLICA(1), DELETE_KEY(2), SET_LABEL(3);

    final byte tag;

    Kind(int tag) {
      this.tag = (byte) tag;
    }

    static Kind of(byte tag) {
      for (Kind k : values()) {
        if (k.tag == tag) {
          return k;
        }
      }
      throw new IllegalArgumentException("unknown mutation kind " + tag);
    }
  }

  /** Installs a replica of a key (same id and policy) from a blob wrapped under the cluster key. Idempotent. */
  record InstallReplica(String keyId, String label, KeySpec spec, KeyUsage usage, byte[] wrapped, byte[] ecPoint)
      implements Mutation {
    public InstallReplica {
      Objects.requireNonNull(keyId, "keyId");
      Objects.requireNonNull(label, "label");
      Objects.requireNonNull(spec, "spec");
      Objects.requireNonNull(usage, "usage");
      Objects.requireNonNull(wrapped, "wrapped");
      wrapped = wrapped.clone();
      ecPoint = ecPoint == null ? null : ecPoint.clone();
    }

    public static InstallReplica of(ReplicaBlob blob) {
      return new InstallReplica(blob.keyId(), blob.label(), blob.spec(), blob.usage(), blob.wrapped(), blob.ecPoint());
    }

    public ReplicaBlob toBlob() {
      return new ReplicaBlob(keyId, label, spec, usage, wrapped.clone(), ecPoint == null ? null : ecPoint.clone());
    }

    @Override
    public byte[] wrapped() {
      return wrapped.clone();
    }

    @Override
    public byte[] ecPoint() {
      return ecPoint == null ? null : ecPoint.clone();
    }

    @Override
    public Kind kind() {
      return Kind.INSTALL_REPLICA;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof InstallReplica r && keyId.equals(r.keyId) && label.equals(r.label) && spec == r.spec
          && usage == r.usage && Arrays.equals(wrapped, r.wrapped) && Arrays.equals(ecPoint, r.ecPoint);
    }

    @Override
    public int hashCode() {
      return Objects.hash(keyId, label, spec, usage, Arrays.hashCode(wrapped), Arrays.hashCode(ecPoint));
    }

    @Override
    public String toString() {
      return "InstallReplica[" + keyId + ", " + spec + ", " + wrapped.length + " wrapped bytes]";
    }
  }

  /** Deletes a key; deleting a key that is not there is a no-op (so re-applying is harmless). */
  record DeleteKey(String keyId) implements Mutation {
    public DeleteKey {
      Objects.requireNonNull(keyId, "keyId");
    }

    @Override
    public Kind kind() {
      return Kind.DELETE_KEY;
    }
  }

  /** Relabels a key (both halves of a pair); a key that is not there is a no-op, and re-applying is harmless. */
  record SetLabel(String keyId, String label) implements Mutation {
    public SetLabel {
      Objects.requireNonNull(keyId, "keyId");
      Objects.requireNonNull(label, "label");
    }

    @Override
    public Kind kind() {
      return Kind.SET_LABEL;
    }
  }

  /** This mutation as a log entry. */
  default byte[] toBytes() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(FORMAT_VERSION);
      out.writeByte(kind().tag);
      if (this instanceof InstallReplica r) {
        writeString(out, r.keyId);
        writeString(out, r.label);
        writeString(out, r.spec.name());
        writeString(out, r.usage.name());
        writeBytes(out, r.wrapped);
        writeBytes(out, r.ecPoint);
      } else if (this instanceof DeleteKey d) {
        writeString(out, d.keyId());
      } else if (this instanceof SetLabel l) {
        writeString(out, l.keyId());
        writeString(out, l.label());
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  /**
   * Reads a log entry.
   *
   * @throws IllegalArgumentException on an unknown version or kind, a truncated entry or trailing bytes
   */
  static Mutation fromBytes(byte[] data) {
    try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(data))) {
      byte version = in.readByte();
      if (version != FORMAT_VERSION) {
        throw new IllegalArgumentException("unsupported mutation format version " + version);
      }
      Mutation m = switch (Kind.of(in.readByte())) {
        case INSTALL_REPLICA -> new InstallReplica(readString(in), readString(in), KeySpec.valueOf(readString(in)),
            KeyUsage.valueOf(readString(in)), requireBytes(readBytes(in)), readBytes(in));
        case DELETE_KEY -> new DeleteKey(readString(in));
        case SET_LABEL -> new SetLabel(readString(in), readString(in));
      };
      if (in.available() > 0) {
        throw new IllegalArgumentException(in.available() + " trailing bytes after a " + m.kind() + " mutation");
      }
      return m;
    } catch (IOException e) {
      throw new IllegalArgumentException("truncated mutation entry", e);
    }
  }

  private static void writeString(DataOutputStream out, String s) throws IOException {
    writeBytes(out, s.getBytes(StandardCharsets.UTF_8));
  }

  private static void writeBytes(DataOutputStream out, byte[] b) throws IOException {
    if (b == null) {
      out.writeInt(-1);
      return;
    }
    out.writeInt(b.length);
    out.write(b);
  }

  private static String readString(DataInputStream in) throws IOException {
    return new String(requireBytes(readBytes(in)), StandardCharsets.UTF_8);
  }

  private static byte[] requireBytes(byte[] b) {
    if (b == null) {
      throw new IllegalArgumentException("missing field in mutation entry");
    }
    return b;
  }

  private static byte[] readBytes(DataInputStream in) throws IOException {
    int n = in.readInt();
    if (n == -1) {
      return null;
    }
    if (n < 0 || n > MAX_FIELD) {
      throw new IllegalArgumentException("bad field length " + n + " in mutation entry");
    }
    byte[] b = in.readNBytes(n);
    if (b.length != n) {
      throw new java.io.EOFException("field of " + n + " bytes truncated to " + b.length);
    }
    return b;
  }
}
