package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import java.nio.ByteBuffer;
import java.util.logging.Logger;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * The index of the last mutation-log entry this HSM applied, kept INSIDE the token so that it survives
 * agent restarts and travels with the token's objects (a restored or copied token knows how far it got).
 *
 * <p>Stored in two private CKO_DATA token objects ("slots"), CKA_APPLICATION {@value #NAME}, each holding an
 * index in its CKA_LABEL ({@code hsmbridge.applied-index=<decimal>}); the higher one counts. A write
 * updates the label of the slot holding the LOWER index in place (C_SetAttributeValue): a write cut short
 * by a crash can only spoil that slot, and the other still holds the index before (one entry is applied
 * again: mutations are idempotent). Why labels and two slots: SoftHSM2 2.6.1 refuses to update CKA_VALUE
 * of a data object (CKR_ATTRIBUTE_READ_ONLY even with CKA_MODIFIABLE true) but allows CKA_LABEL, and the
 * alternative, a new object per write and the old one destroyed, costs what C_DestroyObject costs there:
 * time linear in the token's object count (measured: 3.4 ms at ~0, 59 ms at ~3,000, 181 ms at ~9,000
 * objects, against 0.25 ms for the label at every count), paid on every applied entry.
 *
 * <p>A token that refuses label updates too falls back to that replacement (a new record, then the old
 * ones destroyed: a crash in between leaves two, and {@link #read()} takes the higher). Records of older
 * builds (label {@value #NAME}, the index as 8 bytes big-endian in CKA_VALUE) are read, and become slots.
 * A write lower than the recorded index (a reset to 0, to re-apply the whole log) writes both slots.
 *
 * <p>PKCS#11 has no transactions: the record cannot be written atomically with the objects a mutation
 * made, so a crash between the two re-applies one entry (mutations are idempotent). A record lost to a
 * crash (an unreadable object file moved away by {@link IntegrityScan}) reads as the other slot, or 0
 * when both are gone: the whole log is re-applied, which is slow but correct. Thread-safe.
 */
public final class AppliedIndexRecord {
  static final String NAME = "hsmbridge.applied-index";
  private static final String LABEL_PREFIX = NAME + "=";
  private static final Logger LOG = Logger.getLogger(AppliedIndexRecord.class.getName());

  private final SessionPool pool;
  private final KeyManager keys;
  /**
   * The slots' handles and indexes, to avoid a C_FindObjects per write (slow on a token with many objects).
   * Checked before each use: handles to private objects die when the User is logged out (SO work does that).
   */
  private volatile Slot[] slots;
  /** Whether the token may still be asked to update a label in place. */
  private volatile boolean inPlace = true;

  private record Slot(long handle, long index) {}

  AppliedIndexRecord(SessionPool pool, KeyManager keys) {
    this.pool = pool;
    this.keys = keys;
  }

  /** The recorded index, or 0 when the token holds none. */
  public long read() {
    return pool.call("read applied index", s -> {
      Slot[] found = find(s);
      return highest(found);
    });
  }

  /**
   * Records {@code index} (at least 0) as the last applied entry. Goes through the key manager's
   * object-write lock: token-object writes must be serialised on SoftHSM2.
   */
  public void write(long index) {
    if (index < 0) {
      throw HsmException.badParam("applied index must not be negative");
    }
    keys.writeObjects("write applied index", s -> {
      Slot[] current = slots;
      if (current == null || !allRecords(s, current)) {
        current = find(s);
      }
      if (inPlace) {
        Slot[] written = writeInPlace(s, current, index);
        if (written != null) {
          slots = written;
          return null;
        }
      }
      long made = VerifiedCreation.createObject(s, template().private_(true).modifiable(true).label(LABEL_PREFIX + index));
      // Only now remove the old record(s): a crash before this point leaves two, and read() takes the higher.
      for (Slot old : current) {
        s.destroyObject(old.handle());
      }
      slots = new Slot[] {new Slot(made, index)};
      return null;
    });
  }

  /** The two slots after writing {@code index} in place; null when the token refuses label updates. */
  private Slot[] writeInPlace(Session s, Slot[] current, long index) throws TokenException {
    if (current.length > 2) {
      // Leftovers of interrupted replacements (older builds): keep the two highest.
      java.util.Arrays.sort(current, java.util.Comparator.comparingLong(Slot::index).reversed());
      for (int i = 2; i < current.length; i++) {
        s.destroyObject(current[i].handle());
      }
      current = java.util.Arrays.copyOf(current, 2);
    }
    if (current.length < 2) {
      // A second slot (creating is cheap; only destroying is slow), then the write goes to the older one.
      long made = VerifiedCreation.createObject(s, template().private_(true).modifiable(true).label(LABEL_PREFIX + index));
      return current.length == 0 ? new Slot[] {new Slot(made, index)} : new Slot[] {current[0], new Slot(made, index)};
    }
    int older = current[0].index() <= current[1].index() ? 0 : 1;
    int newer = 1 - older;
    if (!setLabel(s, current[older].handle(), index)) {
      return null;
    }
    Slot[] written = current.clone();
    written[older] = new Slot(current[older].handle(), index);
    if (index < current[newer].index()) {
      // Lower than recorded (a reset): the other slot must not keep the higher index.
      if (!setLabel(s, current[newer].handle(), index)) {
        return null;
      }
      written[newer] = new Slot(current[newer].handle(), index);
    }
    return written;
  }

  /** Updates the label in place; false (and never tried again) when the token says it is read-only. */
  private boolean setLabel(Session s, long h, long index) throws TokenException {
    try {
      s.setAttributeValues(h, new AttributeVector().label(LABEL_PREFIX + index));
      return true;
    } catch (PKCS11Exception e) {
      if (e.getErrorCode() == CKR_ATTRIBUTE_READ_ONLY || e.getErrorCode() == CKR_ACTION_PROHIBITED) {
        inPlace = false;
        LOG.fine("the token refuses to update a data object's label: the applied index is rewritten as a new object");
        return false;
      }
      throw e;
    }
  }

  /** Every record on the token with its index (a search: C_FindObjects). */
  private Slot[] find(Session s) throws TokenException {
    long[] handles = SearchGuard.find(s, template());
    Slot[] found = new Slot[handles.length];
    for (int i = 0; i < handles.length; i++) {
      found[i] = new Slot(handles[i], valueOf(s, handles[i]));
    }
    return found;
  }

  private static long highest(Slot[] found) {
    long best = 0;
    for (Slot slot : found) {
      best = Math.max(best, slot.index());
    }
    return best;
  }

  /** Whether every cached handle still names a record (an SO login kills handles of private objects). */
  private static boolean allRecords(Session s, Slot[] cached) {
    for (Slot slot : cached) {
      try {
        AttributeVector a = s.getAttrValues(slot.handle(), CKA_CLASS, CKA_APPLICATION);
        if (!Long.valueOf(CKO_DATA).equals(a.class_()) || !NAME.equals(a.application())) {
          return false;
        }
      } catch (TokenException | RuntimeException e) {
        return false;
      }
    }
    return true;
  }

  /**
   * A record's index: from its label ({@code hsmbridge.applied-index=<n>}), or, for a record of an older
   * build, from its CKA_VALUE (8 bytes big-endian). One that reads as neither counts as 0 (everything is
   * re-applied, idempotently).
   */
  private static long valueOf(Session s, long h) throws TokenException {
    String label = s.getAttrValues(h, CKA_LABEL).label();
    if (label != null && label.startsWith(LABEL_PREFIX)) {
      try {
        long index = Long.parseLong(label.substring(LABEL_PREFIX.length()));
        if (index >= 0) {
          return index;
        }
      } catch (NumberFormatException e) {
        // below
      }
    } else if (NAME.equals(label)) {
      byte[] v = s.getAttrValues(h, CKA_VALUE).value();
      if (v != null && v.length == Long.BYTES && ByteBuffer.wrap(v).getLong() >= 0) {
        return ByteBuffer.wrap(v).getLong();
      }
    }
    LOG.warning("ignoring an unreadable applied-index record");
    return 0;
  }

  private static AttributeVector template() {
    return new AttributeVector().class_(CKO_DATA).token(true).application(NAME);
  }
}
