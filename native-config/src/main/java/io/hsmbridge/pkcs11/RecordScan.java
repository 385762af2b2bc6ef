package io.hsmbridge.pkcs11;

import java.util.Map;

/**
 * An unlocked read of one kind of token data record (users, key ACLs, settings), taken while entries keep
 * being applied, and the store's change number before it began: give it back to the store's {@code settle}
 * (with applies held) for the records at one applied index (see {@link KeyManager#settle}).
 *
 * @param <T> the record type
 */
public final class RecordScan<T> {
  final long mark;
  final Map<String, DataRecordStore.Entry<T>> entries;
  /** False when an object could not be read (ScanGaps): the scan then corrects nothing. */
  final boolean complete;

  RecordScan(long mark, Map<String, DataRecordStore.Entry<T>> entries, boolean complete) {
    this.mark = mark;
    this.entries = entries;
    this.complete = complete;
  }
}
