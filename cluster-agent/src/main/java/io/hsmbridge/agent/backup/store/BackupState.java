package io.hsmbridge.agent.backup.store;

import java.util.EnumSet;
import java.util.Set;

/**
 * The states of a backup, CloudHSM's plus {@link #FAILED}, and which state may follow which (the
 * table in docs/backup-lifecycle.md is this enum). Only {@link #READY} backups are usable.
 */
public enum BackupState {
  /** Begun; its maker has not written the file yet. Marked FAILED when older than the catalog's bound. */
  CREATE_IN_PROGRESS,
  /** Its file is in the store: it can be restored, copied, deleted. */
  READY,
  /** Its maker failed or died: never usable, its record (and any partial file) purged later. */
  FAILED,
  /** Deleted (by an operator or by retention): restorable for 7 days, then DELETED. */
  PENDING_DELETION,
  /** Its file is removed; the record stays for a while so that describe can say what happened. */
  DELETED;

  /** The states this one may become. */
  public Set<BackupState> next() {
    return switch (this) {
      case CREATE_IN_PROGRESS -> EnumSet.of(READY, FAILED);
      case READY -> EnumSet.of(PENDING_DELETION);
      case PENDING_DELETION -> EnumSet.of(READY, DELETED);
      case FAILED, DELETED -> EnumSet.noneOf(BackupState.class);
    };
  }

  public boolean canBecome(BackupState state) {
    return next().contains(state);
  }
}
