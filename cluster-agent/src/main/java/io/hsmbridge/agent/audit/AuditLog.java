package io.hsmbridge.agent.audit;

import io.hsmbridge.pkcs11.AuditAnchorRecord;
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
import java.util.Optional;
import java.util.Set;
import java.util.logging.Logger;

/**
 * One HSM's audit log: JSON lines, one per operation or management event, each chained to the one
 * before by an HMAC computed inside the HSM ({@link ChainMac}, the token's audit key). An entry deleted,
 * edited, extended by a field or reordered breaks the chain at that line, and whoever can edit the file
 * cannot recompute the chain without the HSM. Entries hold no secret: who, which role, which operation,
 * which key id, and the result code.
 *
 * <p>Line: {@code {"v":3,"seq":n,"time":ISO-8601,"user":..,"role":..,"op":..,"keyId":..|null,
 * "result":"OK"|CODE,"prev":hex,"mac":hex}} or the same with {@code "hash":hex} instead of {@code mac}.
 * {@code mac = HMAC(every other field, sorted by name, each name and JSON value length-prefixed)} in the
 * token; {@code hash = SHA-256} of the same bytes. Either covers the whole line, so a field added to a
 * line breaks it. {@code prev} = the previous line's mac or hash (64 zeros for the first): the link.
 *
 * <p><b>Sealed batches (format 3).</b> Lines are written in batches, and only the last line of a batch
 * carries a token MAC (its seal); the lines before it carry a hash. The seal covers its own line, whose
 * {@code prev} is the hash of the line before, which covers that line and its {@code prev}, and so on back
 * to the previous seal: editing, removing or inserting any line of the batch breaks the seal, and nobody
 * can seal without the HSM. A batch is written only after its seal, so the file ends with a sealed line;
 * lines after the last seal were not written by the agent whole (a kill in the middle of a batch's write)
 * or were added by someone else: {@link #verify} reports them, and {@link #open} sets them aside before
 * the chain goes on, so that no later seal covers them. Why: one token MAC per line was a fifth of an
 * agent's CPU under load (profiled: HMAC requests at 8 client threads); the batch is what the writer
 * found queued, one line when requests are few. Lines of format 2 (each with a MAC) and lines without
 * {@code v} (format 1: their MAC covers the eight named fields, which they must hold exactly) verify as
 * they did.
 *
 * <p>The END of the file is anchored in the token ({@link AnchorStore}, {@code HsmToken.auditAnchor()}):
 * the last sequence and MAC written, updated as lines are written (at most every
 * {@link AuditWriter#ANCHOR_INTERVAL_MILLIS} ms, and at every {@link AuditWriter#sync()} and close).
 * {@link #open} and {@link #verify(Path, ChainMac, java.util.Optional)} compare the file with it, so cutting
 * the last lines (while the agent runs or while it is stopped) and replacing the file by an older copy
 * are found. A file shorter than its anchor at start: the agent starts (an HSM is not taken out of
 * service by whoever can delete a file), logs an ERROR, reports it ({@link #startProblem()}), and
 * continues the chain from the token's anchor, so the gap stays visible to every later verify.
 * Thread-safe: appends are serialised.
 */
public final class AuditLog implements AutoCloseable {
  /** The HSM-side MAC the chain uses (the token's audit key). */
  @FunctionalInterface
  public interface ChainMac {
    byte[] mac(byte[] data);
  }

  /**
   * What {@link #verify} found. {@code badLine} (1-based, null when the problem is not one line) and
   * {@code problem} are null when intact; {@code lastSeq} is the file's last sequence number and
   * {@code anchorSeq} the token's (null when none was compared).
   */
  public record Report(boolean intact, long entries, Long badLine, String problem, String lastMac, long lastSeq,
      Long anchorSeq) {
    public Report(boolean intact, long entries, Long badLine, String problem, String lastMac) {
      this(intact, entries, badLine, problem, lastMac, entries, null);
    }
  }

  /** Where the token keeps the anchor: the last audit line written (sequence and MAC). */
  public interface AnchorStore {
    Optional<AuditAnchorRecord.Anchor> read();

    void write(AuditAnchorRecord.Anchor anchor);

    /** The anchor inside {@code token}. */
    static AnchorStore in(AuditAnchorRecord record) {
      return new AnchorStore() {
        @Override
        public Optional<AuditAnchorRecord.Anchor> read() {
          return record.read();
        }

        @Override
        public void write(AuditAnchorRecord.Anchor anchor) {
          record.write(anchor);
        }
      };
    }

    /** No anchor (tests of the chain alone): truncation at the end is then not found. */
    AnchorStore NONE = new AnchorStore() {
      @Override
      public Optional<AuditAnchorRecord.Anchor> read() {
        return Optional.empty();
      }

      @Override
      public void write(AuditAnchorRecord.Anchor anchor) {
        // nowhere
      }
    };
  }

  static final String GENESIS = "0".repeat(64);
  static final int VERSION = 3;
  /** The format in which every line carries a MAC (still verified). */
  static final int VERSION_EVERY_LINE_MACED = 2;
  /** Lines held for one batch at most: a batch longer than this is sealed and written in parts. */
  static final int MAX_BATCH = 256;
  /** The fields of a line written before the MAC covered whole lines (format 1). */
  private static final Set<String> V1_FIELDS = Set.of("seq", "time", "user", "role", "op", "keyId", "result", "prev", "mac");
  private static final Logger LOG = Logger.getLogger(AuditLog.class.getName());
  private static final HexFormat HEX = HexFormat.of();

  private final Path file;
  private final ChainMac mac;
  private final Clock clock;
  private final BufferedWriter out;
  private final AnchorStore anchors;
  private final String startProblem;
  /** The chain's head: the last line appended (written, or held for the batch) and its link. */
  private long seq;
  private String prev;
  /** The batch's lines before its last, linked by their hash and not yet written. */
  private final StringBuilder batch = new StringBuilder();
  private int batchLines;
  /** The batch's last line, not yet linked: it is hashed when another follows it, sealed when the batch ends. */
  private JsonObject open;
  /** The last sealed line written to the file: what the anchor may record. */
  private long sealedSeq;
  private String sealedMac;
  /** The sequence the token's anchor holds (0: none). */
  private long anchored;

  private AuditLog(Path file, ChainMac mac, Clock clock, BufferedWriter out, long seq, String prev,
      AnchorStore anchors, long anchored, String startProblem) {
    this.file = file;
    this.mac = mac;
    this.clock = clock;
    this.out = out;
    this.seq = seq;
    this.prev = prev;
    this.sealedSeq = seq;
    this.sealedMac = prev;
    this.anchors = anchors;
    this.anchored = anchored;
    this.startProblem = startProblem;
  }

  /** Opens (or creates, mode 0600) the log and continues its chain after its last line, without an anchor. */
  public static AuditLog open(Path file, ChainMac mac, Clock clock) {
    return open(file, mac, clock, AnchorStore.NONE, "this HSM");
  }

  /**
   * Opens (or creates, mode 0600) the log, compares its end with the token's anchor (see the class
   * comment) and continues the chain after its last line, or after the anchor when the file is shorter.
   *
   * @param hsmId names the HSM in what is logged and reported
   */
  public static AuditLog open(Path file, ChainMac mac, Clock clock, AnchorStore anchors, String hsmId) {
    try {
      long seq = 0;
      String prev = GENESIS;
      if (Files.exists(file)) {
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        if (!lines.isEmpty() && !readable(lines.get(lines.size() - 1))) {
          lines = setTornLineAside(file, lines);
        }
        lines = setUnsealedTailAside(file, lines);
        if (!lines.isEmpty()) {
          JsonObject last = new JsonObject(lines.get(lines.size() - 1));
          seq = last.getLong("seq");
          prev = last.getString("mac");
        }
      } else {
        Files.createFile(file, java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
            java.nio.file.attribute.PosixFilePermissions.fromString("rw-------")));
      }
      Optional<AuditAnchorRecord.Anchor> anchor = anchors.read();
      String problem = null;
      long anchored = anchor.map(AuditAnchorRecord.Anchor::seq).orElse(0L);
      if (anchor.isPresent()) {
        problem = compareWithAnchor(file, seq, anchor.get());
        if (problem != null) {
          LOG.severe("AUDIT LOG TAMPERED on HSM " + hsmId + ": " + problem);
          if (seq < anchor.get().seq()) {
            // Continue from the token's anchor: the next line says seq anchor+1, so the gap stays visible.
            seq = anchor.get().seq();
            prev = anchor.get().mac();
          }
        }
      } else if (seq > 0) {
        LOG.info("audit log " + file + " of HSM " + hsmId + " had no anchor in the token yet (written before anchors);"
            + " anchored at its last entry " + seq);
        anchors.write(new AuditAnchorRecord.Anchor(seq, prev));
        anchored = seq;
      }
      BufferedWriter out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.APPEND);
      return new AuditLog(file, mac, clock, out, seq, prev, anchors, anchored,
          problem == null ? null : "HSM " + hsmId + ": " + problem);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot open the audit log " + file, e);
    } catch (DecodeException | ClassCastException | NullPointerException e) {
      throw new IllegalStateException("the audit log " + file + " ends with an unreadable line; run audit verify", e);
    }
  }

  /** Whether {@code line} is an entry that carries a MAC (its own seal, or a line of formats 1 and 2). */
  private static boolean sealed(String line) {
    return isEntry(line, e -> e.getString("mac") != null);
  }

  /** Whether {@code line} is a whole entry: a sequence and a link (sealed or hashed). */
  private static boolean readable(String line) {
    return isEntry(line, e -> e.getString("mac") != null || e.getString("hash") != null);
  }

  /** Whether {@code line} is a JSON object with a numeric seq that passes {@code link}; a field of the wrong type fails. */
  private static boolean isEntry(String line, java.util.function.Predicate<JsonObject> link) {
    try {
      JsonObject e = new JsonObject(line);
      return e.getLong("seq") != null && link.test(e);
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
    List<String> kept = setAside(file, lines, lines.size() - 1, ".torn-");
    LOG.warning("audit log " + file + " ended with a torn line (a crash while appending); set aside, the chain"
        + " continues after entry " + kept.size());
    return kept;
  }

  /** Moves lines {@code from..} of {@code file} to {@code <file><suffix><millis>} (kept for the record); returns the rest. */
  private static List<String> setAside(Path file, List<String> lines, int from, String suffix) throws IOException {
    List<String> kept = lines.subList(0, from);
    Files.write(file.resolveSibling(file.getFileName() + suffix + System.currentTimeMillis()),
        lines.subList(from, lines.size()), StandardCharsets.UTF_8);
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    Files.write(tmp, kept, StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
    Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    return kept;
  }

  /**
   * Lines after the last sealed one (format 3 lines with a hash, or lines that are no entry at all; see the
   * class comment): a batch cut by a kill while it was written, or lines someone else added. Continuing the
   * chain after them would let the next seal cover them, so they are moved to {@code <file>.unsealed-<millis>}
   * for the record and the chain continues from the last seal. {@link #verify} reports the same lines while
   * they are in the file. Lines that are no entry go too: whoever can write the file must not be able to
   * stop the agent from starting (an unreadable last line would).
   */
  private static List<String> setUnsealedTailAside(Path file, List<String> lines) throws IOException {
    int end = lines.size();
    while (end > 0 && !sealed(lines.get(end - 1))) {
      end--;
    }
    if (end == lines.size()) {
      return lines;
    }
    List<String> kept = setAside(file, lines, end, ".unsealed-");
    LOG.warning("audit log " + file + " ended with " + (lines.size() - end) + " line(s) no seal covers (a kill while"
        + " a batch was written, or lines added by someone else); set aside, the chain continues after entry " + end);
    return kept;
  }

  /**
   * What the file's end says against the token's anchor, or null when it agrees: the file must reach the
   * anchor's sequence, and its line there must carry the anchor's MAC (a file may go further: lines
   * written after the last anchor update, before a crash).
   */
  private static String compareWithAnchor(Path file, long lastSeq, AuditAnchorRecord.Anchor anchor) throws IOException {
    if (lastSeq < anchor.seq()) {
      return "the audit log " + file + " ends at sequence " + lastSeq + " but the token's anchor says entries up to "
          + anchor.seq() + " were written: entries " + (lastSeq + 1) + ".." + anchor.seq()
          + " were removed (the end cut off, or the file replaced by an older copy)";
    }
    String at = macAt(file, anchor.seq());
    if (!anchor.mac().equals(at)) {
      return "the audit log " + file + " holds another entry " + anchor.seq() + " than the one the token's anchor"
          + " records: the file was replaced";
    }
    return null;
  }

  /** The mac of the line with sequence {@code seq}, or null when there is none. */
  private static String macAt(Path file, long seq) throws IOException {
    List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    for (int i = lines.size() - 1; i >= 0; i--) {
      try {
        JsonObject e = new JsonObject(lines.get(i));
        Long s = e.getLong("seq");
        if (s != null && s == seq) {
          return e.getString("mac");
        }
      } catch (DecodeException | ClassCastException x) {
        // not an entry
      }
    }
    return null;
  }

  /** What the comparison with the token's anchor found at start, naming the HSM; null when the file agreed. */
  public String startProblem() {
    return startProblem;
  }

  /**
   * Records the last entry appended in the token's anchor (after {@link #flush}: the anchor must never be
   * ahead of the file). A failed write is logged; the next one tries again.
   */
  public synchronized void anchor() {
    if (sealedSeq == anchored || sealedSeq == 0) {
      return;
    }
    try {
      anchors.write(new AuditAnchorRecord.Anchor(sealedSeq, sealedMac));
      anchored = sealedSeq;
    } catch (RuntimeException e) {
      LOG.log(java.util.logging.Level.SEVERE, "cannot record the audit anchor in the token", e);
    }
  }

  /**
   * Appends one entry to the current batch: {@link #flush} (or {@link #close}) seals the batch and writes it
   * out. Returns the entry, which gets its {@code hash} or {@code mac} when the next entry or the seal comes.
   */
  public synchronized JsonObject append(String user, String role, String op, String keyId, String result) {
    if (open != null) {
      if (batchLines + 1 >= MAX_BATCH) {
        writeBatch();
      } else {
        String h = HEX.formatHex(sha256(canonical(open)));
        open.put("hash", h);
        batch.append(open.encode()).append('\n');
        batchLines++;
        prev = h;
      }
    }
    long next = seq + 1;
    JsonObject line = new JsonObject().put("v", VERSION).put("seq", next).put("time", clock.instant().toString())
        .put("user", user).put("role", role).put("op", op).put("keyId", keyId).put("result", result).put("prev", prev);
    open = line;
    seq = next;
    return line;
  }

  /** Seals the batch's last line with the token's MAC and hands the batch to the file's buffer. */
  private void writeBatch() {
    if (open == null) {
      return;
    }
    String m = HEX.formatHex(mac.mac(canonical(open)));
    open.put("mac", m);
    batch.append(open.encode()).append('\n');
    try {
      out.write(batch.toString());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot append to the audit log " + file, e);
    } finally {
      // Written or not, these lines are gone from memory: a retry would write them twice. A failed write
      // leaves a gap or a torn line that verify and the next open report.
      batch.setLength(0);
      batchLines = 0;
      open = null;
    }
    prev = m;
    sealedSeq = seq;
    sealedMac = m;
  }

  private static byte[] sha256(byte[] data) {
    try {
      return java.security.MessageDigest.getInstance("SHA-256").digest(data);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }

  /**
   * Recomputes the chain of {@code file} with the HSM's MAC (stops at the first broken line), then
   * compares its end with the token's anchor: a file that stops short of it was cut (or replaced by an
   * older copy), one whose entry at the anchor's sequence is another was replaced.
   */
  public static Report verify(Path file, ChainMac mac, Optional<AuditAnchorRecord.Anchor> anchor) {
    Chain c = chain(file, mac);
    Report chain = c.report();
    // An unsealed tail alone still lets the anchor say whether sealed lines were cut, which is the news.
    if (!chain.intact() && !c.unsealedTail() || anchor.isEmpty()) {
      return new Report(chain.intact(), chain.entries(), chain.badLine(), chain.problem(), chain.lastMac(),
          chain.lastSeq(), anchor.map(AuditAnchorRecord.Anchor::seq).orElse(null));
    }
    String problem;
    try {
      problem = compareWithAnchor(file, chain.lastSeq(), anchor.get());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the audit log " + file, e);
    }
    if (c.unsealedTail()) {
      problem = problem == null ? chain.problem() : problem + "; " + chain.problem();
    }
    return new Report(problem == null, chain.entries(), chain.badLine(), problem, chain.lastMac(), chain.lastSeq(),
        anchor.get().seq());
  }

  /** What {@link #chain} found: the report, and whether its one problem is lines after the last seal. */
  private record Chain(Report report, boolean unsealedTail) {}

  /** Recomputes the chain of {@code file} with the HSM's MAC; stops at the first broken line. */
  public static Report verify(Path file, ChainMac mac) {
    return chain(file, mac).report();
  }

  private static Chain chain(Path file, ChainMac mac) {
    List<String> lines;
    try {
      lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the audit log " + file, e);
    }
    String prev = GENESIS;
    long seq = 0;
    /** The last line a MAC covers (its own, or a later seal's through the links), and its MAC. */
    long sealedSeq = 0;
    String sealedMac = GENESIS;
    for (int i = 0; i < lines.size(); i++) {
      long lineNo = i + 1L;
      JsonObject e;
      try {
        e = new JsonObject(lines.get(i));
      } catch (DecodeException x) {
        return new Chain(new Report(false, i, lineNo, "line " + lineNo + " is not a JSON object", prev, seq, null), false);
      }
      String problem = check(e, prev, seq + 1, mac);
      if (problem != null) {
        return new Chain(new Report(false, i, lineNo, "line " + lineNo + ": " + problem, prev, seq, null), false);
      }
      seq++;
      if (e.getString("mac") != null) {
        prev = e.getString("mac");
        sealedSeq = seq;
        sealedMac = prev;
      } else {
        prev = e.getString("hash");
      }
    }
    if (sealedSeq < seq) {
      return new Chain(new Report(false, sealedSeq, sealedSeq + 1, "entries " + (sealedSeq + 1) + ".." + seq
          + " at the end are covered by no seal (the HSM's MAC): added by someone else, or the agent was killed"
          + " while writing them; the agent sets them aside when it starts", sealedMac, sealedSeq, null), true);
    }
    return new Chain(new Report(true, lines.size(), null, null, prev, seq, null), false);
  }

  private static String check(JsonObject e, String prev, long expectedSeq, ChainMac mac) {
    try {
      long seq = e.getLong("seq");
      if (seq != expectedSeq) {
        return "sequence " + seq + " where " + expectedSeq + " was expected ("
            + (seq > expectedSeq ? "entries " + expectedSeq + ".." + (seq - 1) + " were removed" : "an entry was moved or repeated")
            + ")";
      }
      if (!prev.equals(e.getString("prev"))) {
        return "entry " + seq + " does not follow the previous entry (an entry was removed, moved or edited)";
      }
      byte[] expected;
      if (e.containsKey("v")) {
        int v = e.getInteger("v");
        boolean hashed = e.containsKey("hash");
        if (v != VERSION && v != VERSION_EVERY_LINE_MACED || hashed && (v != VERSION || e.containsKey("mac"))) {
          return "entry " + seq + " has an unknown format version";
        }
        JsonObject covered = e.copy();
        covered.remove(hashed ? "hash" : "mac");
        if (hashed) {
          return java.security.MessageDigest.isEqual(sha256(canonical(covered)), HEX.parseHex(e.getString("hash")))
              ? null : "the hash of entry " + seq + " does not match its content (the entry was edited, or a field added)";
        }
        expected = mac.mac(canonical(covered));
      } else {
        if (!V1_FIELDS.equals(e.fieldNames())) {
          return "entry " + seq + " has fields added or removed (" + e.fieldNames() + ")";
        }
        expected = mac.mac(canonical(prev, seq, e.getString("time"), e.getString("user"),
            e.getString("role"), e.getString("op"), e.getString("keyId"), e.getString("result")));
      }
      if (!java.security.MessageDigest.isEqual(expected, HEX.parseHex(e.getString("mac")))) {
        return "the MAC of entry " + seq + " does not match its content (the entry was edited, or a field added)";
      }
      return null;
    } catch (ClassCastException | NullPointerException | IllegalArgumentException x) {
      return "a field is missing or malformed";
    }
  }

  /**
   * A whole line without its mac: every field, sorted by name, as name and JSON-encoded value, each
   * length-prefixed, so that no field can be added, dropped or changed without changing the bytes.
   */
  static byte[] canonical(JsonObject fields) {
    java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
    for (String name : new java.util.TreeSet<>(fields.fieldNames())) {
      byte[] n = name.getBytes(StandardCharsets.UTF_8);
      byte[] v = io.vertx.core.json.Json.encode(fields.getValue(name)).getBytes(StandardCharsets.UTF_8);
      bytes.writeBytes(ByteBuffer.allocate(4).putInt(n.length).array());
      bytes.writeBytes(n);
      bytes.writeBytes(ByteBuffer.allocate(4).putInt(v.length).array());
      bytes.writeBytes(v);
    }
    return bytes.toByteArray();
  }

  /** Format 1 (lines without "v"): length-prefixed fields, so that no choice of values can make two entries encode alike. */
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

  /** Seals the current batch and writes it and everything buffered to the file (no fsync). */
  public synchronized void flush() {
    writeBatch();
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
      writeBatch();
    } finally {
      closeFile();
    }
  }

  private void closeFile() {
    try {
      out.close();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot close the audit log " + file, e);
    }
  }
}
