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
 * <p>Stored as one private CKO_DATA token object, CKA_APPLICATION and CKA_LABEL {@value #NAME}, CKA_VALUE
 * = the index as 8 bytes big-endian. The key cache ignores it (it looks only at keys and at its own spec
 * records), so it never counts as a key.
 *
 * <p>A write first tries to update CKA_VALUE in place (C_SetAttributeValue). SoftHSM2 2.6.1 refuses that
 * for data objects with CKR_ATTRIBUTE_READ_ONLY even when CKA_MODIFIABLE is true (measured; it allows
 * CKA_LABEL), so there a write creates a new record and then destroys the old one (about 2.7 ms per write
 * on the 2-core test host): there is never a moment with no record; a crash in between leaves two, and
 * {@link #read()} takes the higher. Writes are meant to be monotonic (the state machine only moves
 * forward).
 *
 * <p>PKCS#11 has no transactions: the record cannot be written atomically with the objects a mutation
 * made, so a crash between the two re-applies one entry (mutations are idempotent). A record lost to a
 * crash (an unreadable object file moved away by {@link IntegrityScan}) reads 0: the whole log is
 * re-applied, which is slow but correct. Thread-safe.
 */
public final class AppliedIndexRecord {
  static final String NAME = "hsmbridge.applied-index";
  private static final Logger LOG = Logger.getLogger(AppliedIndexRecord.class.getName());

  private final SessionPool pool;
  private final KeyManager keys;
  /**
   * The record's handle, to avoid a C_FindObjects per write (slow on a token with many objects). Checked
   * before each use: handles to private objects die when the User is logged out (SO work does that).
   */
  private volatile long cached = KeyEntry.NONE;
  /** Whether the token may still be asked to update CKA_VALUE in place (SoftHSM2 2.6.1 refuses it). */
  private volatile boolean inPlace = true;

  AppliedIndexRecord(SessionPool pool, KeyManager keys) {
    this.pool = pool;
    this.keys = keys;
  }

  /** The recorded index, or 0 when the token holds none. */
  public long read() {
    return pool.call("read applied index", s -> {
      long[] found = s.findAllObjectsSingle(search());
      long h = highest(s, found);
      // With leftovers of an interrupted write, the next write searches again and removes them.
      cached = found.length == 1 ? h : KeyEntry.NONE;
      return h == KeyEntry.NONE ? 0 : valueOf(s, h);
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
    byte[] value = ByteBuffer.allocate(Long.BYTES).putLong(index).array();
    keys.writeObjects("write applied index", s -> {
      long h = cached;
      long[] found = null;
      if (h == KeyEntry.NONE || !isRecord(s, h)) {
        found = s.findAllObjectsSingle(search());
        h = highest(s, found);
      }
      if (h != KeyEntry.NONE && inPlace && setInPlace(s, h, value)) {
        destroyAllBut(s, found, h); // leftovers of an interrupted replacement: h now holds the newest value
        cached = h;
        return null;
      }
      long made = s.createObject(search().private_(true).modifiable(true).value(value));
      // Only now remove the old record(s): a crash before this point leaves two, and read() takes the higher.
      destroyAllBut(s, found != null ? found : new long[] {h}, made);
      cached = made;
      return null;
    });
  }

  /** The record holding the highest index among {@code handles}, or NONE. */
  private static long highest(Session s, long[] handles) throws TokenException {
    long best = -1;
    long bestHandle = KeyEntry.NONE;
    for (long h : handles) {
      long v = valueOf(s, h);
      if (v > best) {
        best = v;
        bestHandle = h;
      }
    }
    return bestHandle;
  }

  private static void destroyAllBut(Session s, long[] handles, long keep) throws TokenException {
    if (handles == null) {
      return;
    }
    for (long h : handles) {
      if (h != keep && h != KeyEntry.NONE) {
        s.destroyObject(h);
      }
    }
  }

  /** Updates CKA_VALUE in place; false (and never tried again) when the token says the value is read-only. */
  private boolean setInPlace(Session s, long h, byte[] value) throws TokenException {
    try {
      s.setAttributeValues(h, new AttributeVector().value(value));
      return true;
    } catch (PKCS11Exception e) {
      if (e.getErrorCode() == CKR_ATTRIBUTE_READ_ONLY || e.getErrorCode() == CKR_ACTION_PROHIBITED) {
        inPlace = false;
        LOG.fine("the token refuses to update a data object's CKA_VALUE: the applied index is rewritten as a new object");
        return false;
      }
      throw e;
    }
  }

  private static boolean isRecord(Session s, long h) {
    try {
      AttributeVector a = s.getAttrValues(h, CKA_CLASS, CKA_APPLICATION, CKA_LABEL);
      return Long.valueOf(CKO_DATA).equals(a.class_()) && NAME.equals(a.application()) && NAME.equals(a.label());
    } catch (TokenException | RuntimeException e) {
      return false;
    }
  }

  /** A record's index; one that is not 8 bytes or negative counts as 0 (everything is re-applied, idempotently). */
  private static long valueOf(Session s, long h) throws TokenException {
    byte[] v = s.getAttrValues(h, CKA_VALUE).value();
    long index = v == null || v.length != Long.BYTES ? -1 : ByteBuffer.wrap(v).getLong();
    if (index < 0) {
      LOG.warning("ignoring an unreadable applied-index record (" + (v == null ? 0 : v.length) + " bytes)");
      return 0;
    }
    return index;
  }

  private static AttributeVector search() {
    return new AttributeVector().class_(CKO_DATA).token(true).application(NAME).label(NAME);
  }
}
