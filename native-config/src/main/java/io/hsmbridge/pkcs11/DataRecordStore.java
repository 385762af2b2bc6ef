package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.logging.Logger;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * Named records kept as private CKO_DATA token objects: CKA_APPLICATION = the store's application
 * name, CKA_LABEL = the record's name, CKA_VALUE = {@code format (1 byte, = 1) | generation (8 bytes)
 * | the codec's fields}. One object per name; what {@link UserRecords} and {@link KeyAcls} are built on.
 *
 * <p><b>Replace = create, then destroy.</b> SoftHSM2 2.6.1 refuses C_SetAttributeValue of CKA_VALUE on
 * data objects (CKR_ATTRIBUTE_READ_ONLY, see {@link AppliedIndexRecord}), so {@link #put} creates the
 * new object with a generation one above the highest found for that name and only then destroys the
 * old ones: there is never a moment without a record, and after a crash in between the reader takes
 * the highest generation (ties, which only a foreign writer can make, go to the larger CKA_VALUE, so
 * every reader agrees). The next put or delete of that name removes the leftovers.
 *
 * <p><b>Cache.</b> All records are read on first use (one C_FindObjects pass) and then served from
 * memory with their object handles; every put/delete through this store updates the cache under
 * {@link KeyManager}'s object-write lock, so neither reads nor writes search the token (C_FindObjects
 * costs grow with the token's object count: 19 ms per search at 1000 objects on SoftHSM2, measured). A
 * cached handle is checked before a write uses it (an SO login kills handles to private objects) and
 * the name is searched again when it no longer names the record. A change made behind this process's
 * back (another process on the token, a restore) is seen after {@link #rescan()}. A failed write drops
 * the cache, so the next access re-reads the token. Objects that cannot be decoded, or whose encoded
 * name differs from their label, are not records (warning that names no value), but the next put or
 * delete of their name removes them.
 */
final class DataRecordStore<T> {
  private static final Logger LOG = Logger.getLogger(DataRecordStore.class.getName());
  static final byte FORMAT = 1;
  /** Upper bound for any length field inside a record. */
  static final int MAX_FIELD = 64 * 1024;

  /** The fields of one kind of record (after format and generation). */
  interface Codec<T> {
    String nameOf(T value);

    void write(DataOutputStream out, T value) throws IOException;

    /** Reads the fields; may throw IOException (truncated), IllegalArgumentException or HsmException (invalid). */
    T read(DataInputStream in) throws IOException;

    /**
     * The record name an object's CKA_LABEL stands for. The identity by default; a store whose names
     * became canonical (user names in lowercase) maps labels written before that onto the canonical name,
     * so those records are found, and replaced under the canonical label at their next write.
     */
    default String nameOfLabel(String label) {
      return label;
    }
  }

  /** A decoded record with its generation and raw value (for the tie-break). */
  record Stored<T>(long generation, T value, byte[] raw) {
    boolean newerThan(Stored<T> other) {
      return other == null || generation > other.generation
          || (generation == other.generation && Arrays.compare(raw, other.raw) > 0);
    }
  }

  /**
   * What the token holds for one name: the newest readable value (null when every object of the name is
   * unreadable), its generation (0 when none) and the handles of all objects of the name.
   */
  record Entry<T>(T value, long generation, long[] handles) {}

  private final String application;
  private final KeyManager keys;
  private final Codec<T> codec;
  /** Name -> entry, sorted by name; null until loaded (or after a failed write). */
  private volatile ConcurrentSkipListMap<String, Entry<T>> cache;
  /** Change numbers, as in KeyCache: per name for put and delete, and one for a whole (re)load. */
  private final java.util.concurrent.atomic.AtomicLong changes = new java.util.concurrent.atomic.AtomicLong();
  private final Map<String, Long> changedAt = new java.util.concurrent.ConcurrentHashMap<>();
  private volatile long loadedAt;
  /** Differences from the token seen once, adopted when seen again (guarded by the object-write lock). */
  private final DriftSuspicions<Entry<T>> suspicions;

  DataRecordStore(String application, KeyManager keys, Codec<T> codec) {
    this.application = application;
    this.keys = keys;
    this.codec = codec;
    this.suspicions = keys.driftSuspicions();
  }

  Optional<T> get(String name) {
    Entry<T> e = cache().get(name);
    return Optional.ofNullable(e == null ? null : e.value());
  }

  List<T> list() {
    List<T> out = new ArrayList<>();
    for (Entry<T> e : cache().values()) {
      if (e.value() != null) {
        out.add(e.value());
      }
    }
    return List.copyOf(out);
  }

  /** Creates or replaces the record named {@code codec.nameOf(value)}. */
  void put(T value) {
    String name = codec.nameOf(value);
    write("write " + application + " record", s -> {
      ConcurrentSkipListMap<String, Entry<T>> c = loaded(s);
      Entry<T> known = current(s, c, name);
      long generation = known == null ? 0 : known.generation();
      long made = VerifiedCreation.createObject(s, search(name).private_(true).modifiable(false).value(encode(value, generation + 1)));
      // Only now remove the old object(s): a crash before this point leaves two, and readers take the newer.
      List<Long> left = new ArrayList<>();
      left.add(made);
      for (long h : known == null ? new long[0] : known.handles()) {
        try {
          s.destroyObject(h);
        } catch (TokenException e) {
          left.add(h);
          LOG.warning("could not remove an old " + application + " record of " + name + " (" + e
              + "); the next write of it retries");
        }
      }
      c.put(name, new Entry<>(value, generation + 1, left.stream().mapToLong(Long::longValue).toArray()));
      changedAt.put(name, changes.incrementAndGet());
      return null;
    });
  }

  /** Removes every record named {@code name}; true when there was one on the token. */
  boolean delete(String name) {
    return write("delete " + application + " record", s -> {
      ConcurrentSkipListMap<String, Entry<T>> c = loaded(s);
      Entry<T> known = current(s, c, name);
      if (known == null) {
        return false;
      }
      for (long h : known.handles()) {
        s.destroyObject(h);
      }
      c.remove(name);
      changedAt.put(name, changes.incrementAndGet());
      return known.value() != null;
    });
  }

  /** Re-reads every record from the token. */
  List<T> rescan() {
    keys.writeObjects("read " + application + " records", s -> {
      cache = load(s);
      loadedAt = changes.incrementAndGet();
      return null;
    });
    return list();
  }

  /**
   * Every record on the token now, by name, read in one session without any lock (see
   * {@link KeyManager#scanToken}), with the store's change number before it began.
   */
  RecordScan<T> scanToken() {
    long mark = changes.get();
    ScanGaps gaps = new ScanGaps();
    try {
      Map<String, Entry<T>> entries = keys.readObjects("scan " + application + " records", s -> load(s, gaps));
      return new RecordScan<>(mark, entries, !gaps.any());
    } catch (HsmException e) {
      return new RecordScan<>(mark, Map.of(), false);
    }
  }

  /**
   * The records on the token at this moment, sorted by name, from an earlier {@link #scanToken}, reading
   * nothing from the token: as {@link KeyManager#settle}, the cache is right for the names this process
   * changed since the scan began, the scan for the others; where they disagree about a name nobody here
   * changed, the name is read again, and when a later settle sees the same difference (the token changed
   * behind our back; SoftHSM2 can also miss an object for a moment: {@link DriftSuspicions}) the cache takes
   * the token's view.
   */
  List<T> settle(RecordScan<T> scan) {
    keys.objectWritesLocked(() -> {
      ConcurrentSkipListMap<String, Entry<T>> c = cache;
      if (c == null || loadedAt > scan.mark || !scan.complete) {
        return; // read from the token since the scan began (the cache is what the token holds), or an incomplete scan
      }
      java.util.Set<String> names = new java.util.HashSet<>(scan.entries.keySet());
      names.addAll(c.keySet());
      List<String> drifted = new ArrayList<>();
      for (String name : names) {
        Long at = changedAt.get(name);
        if (at != null && at > scan.mark) {
          continue;
        }
        if (!sameEntry(c.get(name), scan.entries.get(name))) {
          drifted.add(name);
        }
      }
      if (drifted.isEmpty()) {
        suspicions.noDifferences();
        return;
      }
      // Changed behind our back, or only a scan (or a search) that missed an object: see DriftSuspicions.
      write("confirm " + application + " record drift", s -> suspicions.settle(drifted, c::get,
          name -> readName(s, name), this::sameEntry, (name, now) -> {
            if (now == null) {
              c.remove(name);
            } else {
              c.put(name, now);
            }
          }, application + " records"));
    });
    return list();
  }

  /** What the token holds for {@code name} now, searched by its label (and older labels of the name). */
  private Entry<T> readName(Session s, String name) throws TokenException {
    long[] objects = SearchGuard.find(s, search(name));
    return found(s, name, objects.length > 0 ? objects : objectsOf(s, name));
  }

  private boolean sameEntry(Entry<T> a, Entry<T> b) {
    return a == null ? b == null : b != null && sameRecord(a.value(), b.value());
  }

  /** Equal fields (compared encoded, so array fields compare by content); null only equals null. */
  private boolean sameRecord(T a, T b) {
    if (a == null || b == null) {
      return a == b;
    }
    return Arrays.equals(encode(a, 0), encode(b, 0));
  }

  private <R> R write(String what, SessionPool.SessionWork<R> work) {
    try {
      return keys.writeObjects(what, work);
    } catch (RuntimeException e) {
      cache = null; // the token may or may not hold the change: read it again next time
      throw e;
    }
  }

  private ConcurrentSkipListMap<String, Entry<T>> cache() {
    ConcurrentSkipListMap<String, Entry<T>> c = cache;
    if (c != null) {
      return c;
    }
    // Under the write lock, so that a concurrent put cannot slip between the scan and the swap.
    return keys.writeObjects("read " + application + " records", this::loaded);
  }

  /** The cache, loaded with {@code s} if needed; call under the write lock. */
  private ConcurrentSkipListMap<String, Entry<T>> loaded(Session s) throws TokenException {
    ConcurrentSkipListMap<String, Entry<T>> c = cache;
    if (c == null) {
      c = load(s);
      cache = c;
      loadedAt = changes.incrementAndGet();
    }
    return c;
  }

  /**
   * The cached entry of {@code name} when its handles still name its objects (handles of private objects
   * die when the User is logged out, e.g. for SO work); otherwise the token is searched for the name.
   * Null when the cache knows no such name: then nothing is searched (see the class comment).
   */
  private Entry<T> current(Session s, Map<String, Entry<T>> c, String name) throws TokenException {
    Entry<T> known = c.get(name);
    if (known == null) {
      return null;
    }
    for (long h : known.handles()) {
      if (!isRecordOf(s, h, name)) {
        return found(s, name, objectsOf(s, name));
      }
    }
    return known;
  }

  /** The objects whose label stands for {@code name}: its own label, and labels written before it was canonical. */
  private long[] objectsOf(Session s, String name) throws TokenException {
    List<Long> out = new ArrayList<>();
    for (long h : SearchGuard.find(s, all())) {
      String label = s.getAttrValues(h, CKA_LABEL).label();
      if (label != null && name.equals(codec.nameOfLabel(label))) {
        out.add(h);
      }
    }
    return out.stream().mapToLong(Long::longValue).toArray();
  }

  private boolean isRecordOf(Session s, long h, String name) {
    try {
      AttributeVector a = s.getAttrValues(h, CKA_CLASS, CKA_APPLICATION, CKA_LABEL);
      return Long.valueOf(CKO_DATA).equals(a.class_()) && application.equals(a.application()) && a.label() != null
          && name.equals(codec.nameOfLabel(a.label()));
    } catch (TokenException | RuntimeException e) {
      return false;
    }
  }

  private ConcurrentSkipListMap<String, Entry<T>> load(Session s) throws TokenException {
    return load(s, null);
  }

  /** Every record; with {@code gaps} (an unlocked scan) objects that cannot be read are noted and skipped. */
  private ConcurrentSkipListMap<String, Entry<T>> load(Session s, ScanGaps gaps) throws TokenException {
    Map<String, List<Long>> byName = new HashMap<>();
    Map<String, String> labelOf = new HashMap<>();
    for (long h : SearchGuard.find(s, all())) {
      String label = labelIfPresent(s, h, gaps);
      if (label != null) {
        String name = codec.nameOfLabel(label);
        String other = labelOf.putIfAbsent(name, label);
        if (other != null && !other.equals(label)) {
          // Two records stored before names were canonical (e.g. users "Alice" and "alice"): one name now.
          LOG.warning("the " + application + " records labelled " + other + " and " + label + " are one record "
              + name + " now; the newer one is kept, the other is removed at the next write of " + name);
        }
        byName.computeIfAbsent(name, k -> new ArrayList<>()).add(h);
      }
    }
    ConcurrentSkipListMap<String, Entry<T>> out = new ConcurrentSkipListMap<>();
    for (Map.Entry<String, List<Long>> e : byName.entrySet()) {
      out.put(e.getKey(), found(s, e.getKey(), e.getValue().stream().mapToLong(Long::longValue).toArray(), gaps));
    }
    return out;
  }

  /** The entry made of the objects {@code handles} of {@code name}; null when there are none. */
  private Entry<T> found(Session s, String name, long[] handles) throws TokenException {
    return found(s, name, handles, null);
  }

  private Entry<T> found(Session s, String name, long[] handles, ScanGaps gaps) throws TokenException {
    if (handles.length == 0) {
      return null;
    }
    Stored<T> newest = null;
    for (long h : handles) {
      Stored<T> st = decode(s, h, name, gaps);
      if (st != null && st.newerThan(newest)) {
        newest = st;
      }
    }
    return newest == null ? new Entry<>(null, 0, handles) : new Entry<>(newest.value(), newest.generation(), handles);
  }

  /** An object's label; null when it has none, or (with {@code gaps}) when it cannot be read now. */
  private static String labelIfPresent(Session s, long h, ScanGaps gaps) throws TokenException {
    try {
      return s.getAttrValues(h, CKA_LABEL).label();
    } catch (org.xipki.pkcs11.wrapper.PKCS11Exception e) {
      ScanGaps.note(gaps, e);
      return null;
    }
  }

  /** The record in object {@code h} if it decodes and carries {@code label} as its name, else null (logged). */
  private Stored<T> decode(Session s, long h, String label, ScanGaps gaps) throws TokenException {
    byte[] raw;
    try {
      raw = s.getAttrValues(h, CKA_VALUE).value();
    } catch (org.xipki.pkcs11.wrapper.PKCS11Exception e) {
      ScanGaps.note(gaps, e);
      return null;
    }
    try {
      Stored<T> st = decode(raw, codec);
      if (!codec.nameOf(st.value()).equals(codec.nameOfLabel(label))) {
        LOG.warning("ignoring a " + application + " record whose value names another record than its label " + label);
        return null;
      }
      return st;
    } catch (IllegalArgumentException | HsmException e) {
      LOG.warning("ignoring an unreadable " + application + " record labelled " + label + " ("
          + (raw == null ? 0 : raw.length) + " bytes)");
      return null;
    }
  }

  static <T> byte[] encode(T value, long generation, Codec<T> codec) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(FORMAT);
      out.writeLong(generation);
      codec.write(out, value);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  private byte[] encode(T value, long generation) {
    return encode(value, generation, codec);
  }

  /**
   * Decodes a stored value.
   *
   * @throws IllegalArgumentException for an unknown format, a truncated value, trailing bytes or invalid fields
   */
  static <T> Stored<T> decode(byte[] raw, Codec<T> codec) {
    if (raw == null) {
      throw new IllegalArgumentException("no value");
    }
    try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(raw))) {
      byte format = in.readByte();
      if (format != FORMAT) {
        throw new IllegalArgumentException("unknown record format " + format);
      }
      long generation = in.readLong();
      if (generation < 1) {
        throw new IllegalArgumentException("bad generation");
      }
      T value = codec.read(in);
      if (in.available() > 0) {
        throw new IllegalArgumentException("trailing bytes");
      }
      return new Stored<>(generation, value, raw.clone());
    } catch (IOException e) {
      throw new IllegalArgumentException("truncated record", e);
    } catch (HsmException e) {
      throw new IllegalArgumentException("invalid record: " + e.getMessage(), e);
    }
  }

  private AttributeVector all() {
    return new AttributeVector().class_(CKO_DATA).token(true).application(application);
  }

  private AttributeVector search(String name) {
    return all().label(name);
  }

  // Field helpers for codecs: strings as int length + UTF-8, byte arrays as int length + bytes (-1 = null).

  static void writeString(DataOutputStream out, String s) throws IOException {
    writeBytes(out, s.getBytes(StandardCharsets.UTF_8));
  }

  static void writeBytes(DataOutputStream out, byte[] b) throws IOException {
    if (b == null) {
      out.writeInt(-1);
      return;
    }
    out.writeInt(b.length);
    out.write(b);
  }

  static String readString(DataInputStream in) throws IOException {
    byte[] b = readBytes(in);
    if (b == null) {
      throw new IllegalArgumentException("missing field");
    }
    return new String(b, StandardCharsets.UTF_8);
  }

  static byte[] readBytes(DataInputStream in) throws IOException {
    int n = in.readInt();
    if (n == -1) {
      return null;
    }
    if (n < 0 || n > MAX_FIELD) {
      throw new IllegalArgumentException("bad field length " + n);
    }
    byte[] b = in.readNBytes(n);
    if (b.length != n) {
      throw new EOFException("field truncated");
    }
    return b;
  }

  static boolean readBoolean(DataInputStream in) throws IOException {
    byte b = in.readByte();
    if (b != 0 && b != 1) {
      throw new IllegalArgumentException("bad boolean " + b);
    }
    return b == 1;
  }

  /** The string fields of a list with a count in 0..max. */
  static List<String> readStrings(DataInputStream in, int max) throws IOException {
    int n = in.readInt();
    if (n < 0 || n > max) {
      throw new IllegalArgumentException("bad count " + n);
    }
    List<String> out = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      out.add(readString(in));
    }
    return out;
  }
}
