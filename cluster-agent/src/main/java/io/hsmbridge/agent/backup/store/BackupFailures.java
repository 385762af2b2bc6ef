package io.hsmbridge.agent.backup.store;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;

/**
 * The typed errors of the backup store and catalog, in one place so that each maps onto the stable
 * {@link ErrorCode} table once. ErrorCode has no backup-specific codes yet: an absent backup is
 * {@link ErrorCode#UNKNOWN_KEY} (the "no such object" 404 of the table), a transition its state does
 * not allow is {@link ErrorCode#INVALID_PARAMETER} with the state named, a store that cannot be read or
 * written is {@link ErrorCode#INTERNAL}. Messages name backup ids, states and paths: nothing secret.
 */
final class BackupFailures {
  private BackupFailures() {}

  static HsmException notFound(BackupId id, String storeName) {
    return new HsmException(ErrorCode.UNKNOWN_KEY, "no backup " + id + " in store " + storeName);
  }

  static HsmException wrongState(BackupId id, BackupState state, String action) {
    return new HsmException(ErrorCode.INVALID_PARAMETER,
        "cannot " + action + " backup " + id + ": it is " + state);
  }

  static HsmException alreadyExists(BackupId id, String what, String storeName) {
    return new HsmException(ErrorCode.INVALID_PARAMETER,
        "backup " + id + " already has a " + what + " in store " + storeName + "; it is never overwritten");
  }

  /** {@code problem} may quote what was read (attacker's text): cut short, control characters replaced. */
  static HsmException unreadable(String what, String problem) {
    return new HsmException(ErrorCode.INTERNAL, what + " is unreadable: " + clean(problem));
  }

  static String clean(String text) {
    String s = String.valueOf(text).replaceAll("\\p{Cntrl}", "?");
    return s.length() > 200 ? s.substring(0, 200) + "..." : s;
  }

  static HsmException io(String action, String storeName, Exception cause) {
    return new HsmException(ErrorCode.INTERNAL, "backup store " + storeName + ": cannot " + action
        + " (" + cause.getClass().getSimpleName() + ": " + cause.getMessage() + ")", null, null, cause);
  }

  static HsmException badParam(String message) {
    return HsmException.badParam(message);
  }
}
