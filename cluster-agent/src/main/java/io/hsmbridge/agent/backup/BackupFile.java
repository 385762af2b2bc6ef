package io.hsmbridge.agent.backup;

import io.hsmbridge.pkcs11.BackupKeys;
import io.hsmbridge.pkcs11.HsmException;
import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The bytes of a backup file, format 1 (docs/backups.md): parsed and written here, authenticated by the
 * HSM ({@link BackupMaker}, {@link BackupRestorer}). Layout, integers big-endian:
 * <pre>
 *   "HSMBKUP1"                         8 bytes
 *   u16 n, header                      JSON, UTF-8 (format, backupId, cluster, sourceHsm, createdAt,
 *                                      appliedIndex, keys = how many key blobs follow the manifest;
 *                                      appliedTerm = the Raft term of the entry at appliedIndex, optional)
 *   u32 n, wrapped EBK                 under the cluster's PBK (AES key wrap with padding)
 *   u32 n, wrapped manifest key        under the EBK
 *   u32 n, GCM nonce
 *   u32 n, sealed manifest             AES-GCM over magic, header and wrapped EBK ({@link #aad})
 *   keys x (u32 n, key blob)           each wrapped under the EBK (or the export key); the manifest holds
 *                                      the SHA-256 of each, in this order
 * </pre>
 * Nothing may follow the last blob. Parsing checks structure only (lengths, bounds, counts) and never
 * trusts a length beyond the bytes present: a lying length is a malformed file, not an allocation.
 */
public record BackupFile(byte[] headerBytes, JsonObject header, byte[] wrappedEbk, BackupKeys.Sealed manifest,
    List<byte[]> keyBlobs) {
  static final byte[] MAGIC = "HSMBKUP1".getBytes(StandardCharsets.US_ASCII);
  public static final int FORMAT = 1;
  /** Bounds no honest file exceeds: a header of 64 KiB, one blob of 1 MiB, 1,000,000 keys. */
  private static final int MAX_HEADER = 64 * 1024;
  private static final int MAX_FIELD = 1 << 20;
  private static final int MAX_MANIFEST = 256 << 20;
  static final int MAX_KEYS = 1_000_000;

  public String backupId() {
    return header.getString("backupId");
  }

  public String cluster() {
    return header.getString("cluster");
  }

  /** The Raft term of the entry at {@link #appliedIndex()}, or -1 when the file does not say (older files). */
  public long appliedTerm() {
    return header.getLong("appliedTerm", -1L);
  }

  public long appliedIndex() {
    return header.getLong("appliedIndex");
  }

  /**
   * The manifest's GCM additional data: magic, header and wrapped EBK (as they are laid out, with empty
   * fields in place of the manifest key and nonce). Those two need no AAD: an altered manifest key does
   * not unwrap (key wrap with padding checks itself), and an altered nonce fails the tag.
   */
  public byte[] aad() {
    return aad(headerBytes, wrappedEbk);
  }

  static byte[] aad(byte[] headerBytes, byte[] wrappedEbk) {
    return prefix(headerBytes, wrappedEbk, new byte[0], new byte[0]);
  }

  private static byte[] prefix(byte[] headerBytes, byte[] wrappedEbk, byte[] wrappedManifestKey, byte[] iv) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.write(MAGIC);
      out.writeShort(headerBytes.length);
      out.write(headerBytes);
      field(out, wrappedEbk);
      field(out, wrappedManifestKey);
      field(out, iv);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  /** The whole file. */
  public byte[] toBytes() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.write(prefix(headerBytes, wrappedEbk, manifest.wrappedKey(), manifest.iv()));
      field(out, manifest.ciphertext());
      for (byte[] blob : keyBlobs) {
        field(out, blob);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  private static void field(DataOutputStream out, byte[] value) throws IOException {
    out.writeInt(value.length);
    out.write(value);
  }

  /**
   * Reads a file's structure.
   *
   * @throws HsmException INVALID_PARAMETER naming what is malformed (nothing about the content is trusted yet)
   */
  public static BackupFile parse(byte[] file) {
    ByteBuffer in = ByteBuffer.wrap(file);
    byte[] magic = take(in, MAGIC.length, "magic");
    if (!Arrays.equals(magic, MAGIC)) {
      throw malformed("not an hsmbridge backup file (format 1)");
    }
    int headerLength = Short.toUnsignedInt(need(in, 2, "header length").getShort());
    if (headerLength == 0 || headerLength > MAX_HEADER) {
      throw malformed("header length " + headerLength + " out of range");
    }
    byte[] headerBytes = take(in, headerLength, "header");
    JsonObject header;
    try {
      header = new JsonObject(new String(headerBytes, StandardCharsets.UTF_8));
    } catch (RuntimeException e) {
      throw malformed("the header is not JSON");
    }
    checkHeader(header);
    byte[] wrappedEbk = field(in, "wrapped backup key", MAX_FIELD);
    byte[] wrappedManifestKey = field(in, "wrapped manifest key", MAX_FIELD);
    byte[] iv = field(in, "manifest nonce", 64);
    byte[] sealedManifest = field(in, "manifest", MAX_MANIFEST);
    int keys = header.getInteger("keys");
    List<byte[]> blobs = new ArrayList<>(Math.min(keys, 1024));
    for (int i = 0; i < keys; i++) {
      blobs.add(field(in, "key blob " + i, MAX_FIELD));
    }
    if (in.hasRemaining()) {
      throw malformed(in.remaining() + " bytes after the last key blob");
    }
    return new BackupFile(headerBytes, header, wrappedEbk, new BackupKeys.Sealed(wrappedManifestKey, iv, sealedManifest), blobs);
  }

  private static void checkHeader(JsonObject h) {
    try {
      if (h.getInteger("format") == null || h.getInteger("format") != FORMAT) {
        throw malformed("format " + h.getValue("format") + " is not supported (this build reads format " + FORMAT + ")");
      }
      for (String name : List.of("backupId", "cluster", "sourceHsm")) {
        if (h.getString(name) == null || h.getString(name).isEmpty()) {
          throw malformed("the header has no " + name);
        }
      }
      if (!io.hsmbridge.agent.backup.store.BackupId.isValid(h.getString("backupId"))) {
        throw malformed("the header's backupId is not a backup id");
      }
      Integer keys = h.getInteger("keys");
      if (keys == null || keys < 0 || keys > MAX_KEYS || h.getLong("appliedIndex") == null || h.getLong("appliedIndex") < 0
          || h.getLong("createdAt") == null) {
        throw malformed("the header's keys, appliedIndex or createdAt is missing or out of range");
      }
      if (h.containsKey("appliedTerm") && (h.getLong("appliedTerm") == null || h.getLong("appliedTerm") < 0)) {
        throw malformed("the header's appliedTerm is out of range");
      }
    } catch (ClassCastException e) {
      throw malformed("a header field has the wrong type");
    }
  }

  private static byte[] field(ByteBuffer in, String what, int max) {
    int n = need(in, 4, what + " length").getInt();
    if (n < 0 || n > max) {
      throw malformed(what + " length " + n + " out of range");
    }
    return take(in, n, what);
  }

  private static ByteBuffer need(ByteBuffer in, int n, String what) {
    if (in.remaining() < n) {
      throw malformed("truncated in the " + what);
    }
    return in;
  }

  private static byte[] take(ByteBuffer in, int n, String what) {
    byte[] out = new byte[n];
    need(in, n, what).get(out);
    return out;
  }

  static HsmException malformed(String why) {
    return HsmException.badParam("backup file malformed: " + why);
  }

  @Override
  public String toString() {
    return "BackupFile[" + header.encode() + "]";
  }
}
