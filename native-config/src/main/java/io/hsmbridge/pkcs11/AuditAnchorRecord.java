package io.hsmbridge.pkcs11;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.HexFormat;
import java.util.Optional;

/**
 * Where this HSM's audit log had got to, kept INSIDE the token: the sequence number and chain MAC of the
 * last audit line known to be written. The file can be cut, deleted or replaced by an older copy by
 * whoever can write the disk; this record cannot be rewritten without the token's User PIN, so the
 * agent compares the file with it at start and at {@code audit verify} (cluster-agent's {@code AuditLog}).
 *
 * <p>One private CKO_DATA token object, CKA_APPLICATION {@value #APPLICATION}, CKA_LABEL
 * {@value #NAME}, CKA_VALUE = {@code 1 | generation | seq (8 bytes) | mac (hex string)}; replaced as
 * {@link DataRecordStore} does (create, then destroy). The record is not secret (a MAC is not a key), it
 * is private so that only the agent can change it. Thread-safe.
 */
public final class AuditAnchorRecord {
  static final String APPLICATION = "hsmbridge.audit-anchor";
  static final String NAME = "anchor";
  /** An audit chain MAC: 64 lowercase hex characters (HMAC-SHA-256). */
  private static final int MAC_HEX = 64;

  /**
   * The anchor: the last audit line covered.
   *
   * @param seq the line's sequence number, at least 1
   * @param mac its chain MAC, 64 lowercase hex characters
   */
  public record Anchor(long seq, String mac) {
    public Anchor {
      if (seq < 1) {
        throw HsmException.badParam("audit anchor sequence must be at least 1");
      }
      if (mac == null || mac.length() != MAC_HEX || !mac.equals(mac.toLowerCase(java.util.Locale.ROOT))) {
        throw HsmException.badParam("audit anchor MAC must be " + MAC_HEX + " lowercase hex characters");
      }
      HexFormat.of().parseHex(mac);
    }
  }

  static final DataRecordStore.Codec<Anchor> CODEC = new DataRecordStore.Codec<>() {
    @Override
    public String nameOf(Anchor a) {
      return NAME;
    }

    @Override
    public void write(DataOutputStream out, Anchor a) throws IOException {
      out.writeLong(a.seq());
      DataRecordStore.writeString(out, a.mac());
    }

    @Override
    public Anchor read(DataInputStream in) throws IOException {
      return new Anchor(in.readLong(), DataRecordStore.readString(in));
    }
  };

  private final DataRecordStore<Anchor> store;

  AuditAnchorRecord(KeyManager keys) {
    this.store = new DataRecordStore<>(APPLICATION, keys, CODEC);
  }

  /** The anchor, or empty when this token never anchored an audit line (a new token, or one from before anchors). */
  public Optional<Anchor> read() {
    return store.get(NAME);
  }

  /** Records {@code anchor} (callers only move it forward). */
  public void write(Anchor anchor) {
    store.put(java.util.Objects.requireNonNull(anchor, "anchor"));
  }

  /** Re-reads the anchor from the token (what a restarted agent sees). */
  public Optional<Anchor> rescan() {
    store.rescan();
    return store.get(NAME);
  }
}
