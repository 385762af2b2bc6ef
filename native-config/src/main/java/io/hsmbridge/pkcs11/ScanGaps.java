package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_OBJECT_HANDLE_INVALID;

import org.xipki.pkcs11.wrapper.PKCS11Exception;

/**
 * Objects an unlocked scan of the token could not read: destroyed since the search, or, on SoftHSM2,
 * invalid for an instant while the token's object files are rewritten beside it (seen: records missing from
 * a scan under a creation load, which a settle then took for drift). A scan with a gap is incomplete: it
 * corrects nothing in the caches (KeyManager.settle, DataRecordStore.settle).
 */
final class ScanGaps {
  private boolean any;

  /** In an unlocked scan ({@code gaps} not null) a vanished object is noted and skipped; elsewhere it fails. */
  static void note(ScanGaps gaps, PKCS11Exception e) throws PKCS11Exception {
    if (gaps == null || e.getErrorCode() != CKR_OBJECT_HANDLE_INVALID) {
      throw e;
    }
    gaps.any = true;
  }

  boolean any() {
    return any;
  }
}
