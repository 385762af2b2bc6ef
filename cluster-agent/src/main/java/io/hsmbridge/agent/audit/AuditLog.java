package io.hsmbridge.agent.audit;

import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.util.HexFormat;
import java.util.List;

/**
 * One HSM's audit log: JSON lines, one per operation or management event, each chained to the one
 * before by an HMAC computed inside the HSM ({@link ChainMac}, the token's audit key). An entry deleted,
 * edited or reordered breaks the chain at that line, and whoever can edit the file cannot recompute the
 * chain without the HSM. Entries hold no secret: who, which role, which operation, which key id, and the
 * result code.
 *
 * <p>Line: {@code {"seq":n,"time":ISO-8601,"user":..,"role":..,"op":..,"keyId":..|null,"result":"OK"|CODE,
 * "prev":hex,"mac":hex}}; {@code mac = HMAC(prev || seq || time || user || role || op || keyId || result)}
 * over a length-prefixed encoding, {@code prev} = the previous line's mac (64 zeros for the first).
 *
 * <p>Not covered by the chain alone: cutting entries off the END of the file (the last remaining line
 * still verifies). Compare the count and last mac with an independent copy (export) to catch that.
 * Thread-safe: appends are serialised.
 */
public final class AuditLog implements AutoCloseable {
  /** The HSM-side MAC the chain uses (the token's audit key). */
  @FunctionalInterface
  public interface ChainMac {
    byte[] mac(byte[] data);
  }

  /** What {@link #verify} found. {@code badLine} (1-based) and {@code problem} are null when intact. */
  public record Report(boolean intact, long entries, Long badLine, String problem, String lastMac) {}

  static final String GENESIS = "0".repeat(64);
  private static final HexFormat HEX = HexFormat.of();

  private final Path file;
  private final ChainMac mac;
  private final Clock clock;
  private final BufferedWriter out;
  private long seq;
  private String prev;

  private AuditLog(Path file, ChainMac mac, Clock clock, BufferedWriter out, long seq, String prev) {
    this.file = file;
    this.mac = mac;
    this.clock = clock;
    this.out = out;
    this.seq = seq;
    this.prev = prev;
  }

  /** Opens (or creates, mode 0600) the log and continues its chain after its last line. */
  public static AuditLog open(Path file, ChainMac mac, Clock clock) {
    try {
      long seq = 0;
      String prev = GENESIS;
      if (Files.exists(file)) {
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        if (!lines.isEmpty() && !readable(lines.get(lines.size() - 1))) {
          lines = setTornLineAside(file, lines);
        }
        if (!lines.isEmpty()) {
          JsonObject last = new JsonObject(lines.get(lines.size() - 1));
          seq = last.getLong("seq");
          prev = last.getString("mac");
        }
      } else {
        Files.createFile(file, java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
            java.nio.file.attribute.PosixFilePermissions.fromString("rw-------")));
      }
      BufferedWriter out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.APPEND);
      return new AuditLog(file, mac, clock, out, seq, prev);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot open the audit log " + file, e);
    } catch (DecodeException | ClassCastException | NullPointerException e) {
      throw new IllegalStateException("the audit log " + file + " ends with an unreadable line; run audit verify", e);
    }
  }

  private static boolean readable(String line) {
    try {
      JsonObject e = new JsonObject(line);
      return e.getLong("seq") != null && e.getString("mac") != null;
    } catch (DecodeException | ClassCastException e) {
      return false;
    }
  }

  /**
   * A process killed while appending can leave a torn last line, which is not an entry (it was never
   * completed). It is moved to {@code <file>.torn-<millis>} for the record, and the chain continues from
   * the last whole entry; a torn line anywhere else is left for {@link #verify} to report.
   */
  private static List<String> setTornLineAside(Path file, List<String> lines) throws IOException {
    String torn = lines.get(lines.size() - 1);
    List<String> kept = lines.subList(0, lines.size() - 1);
    Files.writeString(file.resolveSibling(file.getFileName() + ".torn-" + System.currentTimeMillis()), torn + "\n",
        StandardCharsets.UTF_8);
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    Files.write(tmp, kept, StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
    Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    java.util.logging.Logger.getLogger(AuditLog.class.getName()).warning("audit log " + file
        + " ended with a torn line (a crash while appending); set aside, the chain continues after entry " + kept.size());
    return kept;
  }

  /** Appends one entry (buffered: {@link #flush} or {@link #close} writes it out); returns the entry as written. */
  public synchronized JsonObject append(String user, String role, String op, String keyId, String result) {
    long next = seq + 1;
    String time = clock.instant().toString();
    String m = HEX.formatHex(mac.mac(canonical(prev, next, time, user, role, op, keyId, result)));
    JsonObject line = new JsonObject().put("seq", next).put("time", time).put("user", user).put("role", role)
        .put("op", op).put("keyId", keyId).put("result", result).put("prev", prev).put("mac", m);
    try {
      out.write(line.encode());
      out.write('\n');
    } catch (IOException e) {
      throw new UncheckedIOException("cannot append to the audit log " + file, e);
    }
    seq = next;
    prev = m;
    return line;
  }

  /** Recomputes the chain of {@code file} with the HSM's MAC; stops at the first broken line. */
  public static Report verify(Path file, ChainMac mac) {
    List<String> lines;
    try {
      lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the audit log " + file, e);
    }
    String prev = GENESIS;
    for (int i = 0; i < lines.size(); i++) {
      long lineNo = i + 1L;
      JsonObject e;
      try {
        e = new JsonObject(lines.get(i));
      } catch (DecodeException x) {
        return new Report(false, i, lineNo, "not a JSON object", prev);
      }
      String problem = check(e, prev, lineNo, mac);
      if (problem != null) {
        return new Report(false, i, lineNo, problem, prev);
      }
      prev = e.getString("mac");
    }
    return new Report(true, lines.size(), null, null, prev);
  }

  private static String check(JsonObject e, String prev, long lineNo, ChainMac mac) {
    try {
      if (e.getLong("seq") != lineNo) {
        return "sequence " + e.getLong("seq") + " where " + lineNo + " was expected (an entry was removed or moved)";
      }
      if (!prev.equals(e.getString("prev"))) {
        return "does not follow the previous entry (an entry was removed, moved or edited)";
      }
      byte[] expected = mac.mac(canonical(prev, e.getLong("seq"), e.getString("time"), e.getString("user"),
          e.getString("role"), e.getString("op"), e.getString("keyId"), e.getString("result")));
      if (!java.security.MessageDigest.isEqual(expected, HEX.parseHex(e.getString("mac")))) {
        return "its MAC does not match its content (the entry was edited)";
      }
      return null;
    } catch (ClassCastException | NullPointerException | IllegalArgumentException x) {
      return "a field is missing or malformed";
    }
  }

  /** Length-prefixed fields, so that no choice of values can make two entries encode alike. */
  static byte[] canonical(String prev, long seq, String time, String user, String role, String op, String keyId,
      String result) {
    String[] fields = {prev, Long.toString(seq), time, user, role, op, keyId, result};
    int size = 0;
    byte[][] encoded = new byte[fields.length][];
    for (int i = 0; i < fields.length; i++) {
      encoded[i] = fields[i] == null ? new byte[0] : fields[i].getBytes(StandardCharsets.UTF_8);
      size += 5 + encoded[i].length;
    }
    ByteBuffer b = ByteBuffer.allocate(size);
    for (int i = 0; i < fields.length; i++) {
      b.put((byte) (fields[i] == null ? 0 : 1)).putInt(encoded[i].length).put(encoded[i]);
    }
    return b.array();
  }

  /** Writes buffered entries to the file (no fsync). */
  public synchronized void flush() {
    try {
      out.flush();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the audit log " + file, e);
    }
  }

  public synchronized long lastSeq() {
    return seq;
  }

  @Override
  public synchronized void close() {
    try {
      out.close();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot close the audit log " + file, e);
    }
  }
}
