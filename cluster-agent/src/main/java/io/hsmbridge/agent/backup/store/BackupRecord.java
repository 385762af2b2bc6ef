package io.hsmbridge.agent.backup.store;

import io.hsmbridge.pkcs11.HsmException;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.Objects;
import java.util.Set;

/**
 * The lifecycle metadata of one backup, kept beside its file ({@code <id>.json}). Immutable; the
 * {@code with*} methods return changed copies. Nothing here is secret, and nothing here is trusted: it
 * is read back from untrusted storage, so {@link #fromJson} checks every field's type and shape (texts are
 * bounded and free of control characters, since they end up on an operator's terminal) and refuses
 * anything else with one typed error.
 *
 * @param backupId the backup's id (also its file name)
 * @param clusterName the cluster whose keys and users the backup holds
 * @param sourceHsm the HSM that made it
 * @param createdAt when it was begun (a copy: when it was copied); retention counts from here
 * @param appliedIndex the cluster's mutation-log index the backup reflects
 * @param sizeBytes the file's size, 0 until READY
 * @param state where it is in its lifecycle
 * @param stateChangedAt when it entered {@code state} (a deletion's 7 days count from here)
 * @param neverExpires exempt from retention
 * @param sourceStore for a copy: the store it was copied from; otherwise null
 * @param sourceBackupId for a copy: its id in {@code sourceStore}; otherwise null
 * @param sourceCluster for a copy: the cluster of the source backup; otherwise null
 */
public record BackupRecord(BackupId backupId, String clusterName, String sourceHsm, Instant createdAt,
    long appliedIndex, long sizeBytes, BackupState state, Instant stateChangedAt, boolean neverExpires,
    String sourceStore, BackupId sourceBackupId, String sourceCluster) {

  /** The JSON format version written; another one is refused. */
  public static final int VERSION = 1;
  private static final int MAX_TEXT = 128;
  private static final Set<String> FIELDS = Set.of("v", "backupId", "clusterName", "sourceHsm", "createdAt",
      "appliedIndex", "sizeBytes", "state", "stateChangedAt", "neverExpires", "sourceStore", "sourceBackupId",
      "sourceCluster");

  public BackupRecord {
    Objects.requireNonNull(backupId, "backupId");
    Objects.requireNonNull(createdAt, "createdAt");
    Objects.requireNonNull(state, "state");
    Objects.requireNonNull(stateChangedAt, "stateChangedAt");
    checkText("clusterName", clusterName, false);
    checkText("sourceHsm", sourceHsm, false);
    checkText("sourceStore", sourceStore, true);
    checkText("sourceCluster", sourceCluster, true);
    if (appliedIndex < 0 || sizeBytes < 0) {
      throw BackupFailures.badParam("appliedIndex and sizeBytes must not be negative");
    }
    // A copy names all three of its sources or none.
    boolean copy = sourceStore != null;
    if ((sourceBackupId != null) != copy || (sourceCluster != null) != copy) {
      throw BackupFailures.badParam("sourceStore, sourceBackupId and sourceCluster go together");
    }
  }

  /** A backup just begun: CREATE_IN_PROGRESS at {@code now}, no file yet. */
  public static BackupRecord creating(BackupId id, String clusterName, String sourceHsm, long appliedIndex,
      Instant now) {
    return new BackupRecord(id, clusterName, sourceHsm, now, appliedIndex, 0, BackupState.CREATE_IN_PROGRESS, now,
        false, null, null, null);
  }

  public boolean isCopy() {
    return sourceStore != null;
  }

  public BackupRecord withState(BackupState next, Instant at) {
    return new BackupRecord(backupId, clusterName, sourceHsm, createdAt, appliedIndex, sizeBytes, next, at,
        neverExpires, sourceStore, sourceBackupId, sourceCluster);
  }

  public BackupRecord withSize(long size) {
    return new BackupRecord(backupId, clusterName, sourceHsm, createdAt, appliedIndex, size, state, stateChangedAt,
        neverExpires, sourceStore, sourceBackupId, sourceCluster);
  }

  public BackupRecord withNeverExpires(boolean value) {
    return new BackupRecord(backupId, clusterName, sourceHsm, createdAt, appliedIndex, sizeBytes, state,
        stateChangedAt, value, sourceStore, sourceBackupId, sourceCluster);
  }

  /** This record as the copy {@code newId} of it, made from {@code fromStore} at {@code now}. */
  BackupRecord copiedAs(BackupId newId, String fromStore, Instant now) {
    return new BackupRecord(newId, clusterName, sourceHsm, now, appliedIndex, 0, BackupState.CREATE_IN_PROGRESS, now,
        false, fromStore, backupId, clusterName);
  }

  public JsonObject toJson() {
    JsonObject j = new JsonObject().put("v", VERSION).put("backupId", backupId.value()).put("clusterName", clusterName)
        .put("sourceHsm", sourceHsm).put("createdAt", createdAt.toString()).put("appliedIndex", appliedIndex)
        .put("sizeBytes", sizeBytes).put("state", state.name()).put("stateChangedAt", stateChangedAt.toString())
        .put("neverExpires", neverExpires);
    if (isCopy()) {
      j.put("sourceStore", sourceStore).put("sourceBackupId", sourceBackupId.value()).put("sourceCluster", sourceCluster);
    }
    return j;
  }

  public byte[] toBytes() {
    return (toJson().encode() + "\n").getBytes(StandardCharsets.UTF_8);
  }

  /**
   * Reads a record written by {@link #toBytes}; anything else (not JSON, a field missing, of another type,
   * out of range, an unknown field or version) is one {@link HsmException} (INTERNAL) naming the problem.
   * Never throws anything unchecked but that.
   */
  public static BackupRecord fromBytes(byte[] bytes, String what) {
    try {
      JsonObject j = new JsonObject(new String(bytes, StandardCharsets.UTF_8));
      for (String field : j.fieldNames()) {
        if (!FIELDS.contains(field)) {
          throw new IllegalArgumentException("unknown field '" + field.replaceAll("\\p{Cntrl}", "?") + "'");
        }
      }
      if (integer(j, "v") != VERSION) {
        throw new IllegalArgumentException("unknown format version");
      }
      String source = optionalText(j, "sourceBackupId");
      return new BackupRecord(new BackupId(text(j, "backupId")), text(j, "clusterName"), text(j, "sourceHsm"),
          Instant.parse(text(j, "createdAt")), integer(j, "appliedIndex"), integer(j, "sizeBytes"),
          BackupState.valueOf(text(j, "state")), Instant.parse(text(j, "stateChangedAt")), bool(j, "neverExpires"),
          optionalText(j, "sourceStore"), source == null ? null : new BackupId(source), optionalText(j, "sourceCluster"));
    } catch (HsmException | DateTimeParseException e) {
      throw BackupFailures.unreadable(what, e.getMessage());
    } catch (RuntimeException e) {
      // Vert.x's DecodeException, ClassCastException, IllegalArgumentException...: the input is garbage,
      // whichever way; the caller gets one typed error.
      throw BackupFailures.unreadable(what, e.getClass().getSimpleName() + ": " + e.getMessage());
    }
  }

  private static String text(JsonObject j, String field) {
    String s = optionalText(j, field);
    if (s == null) {
      throw new IllegalArgumentException("field '" + field + "' is missing");
    }
    return s;
  }

  private static String optionalText(JsonObject j, String field) {
    Object v = j.getValue(field);
    if (v == null) {
      return null;
    }
    if (!(v instanceof String s)) {
      throw new IllegalArgumentException("field '" + field + "' is not a string");
    }
    return s;
  }

  private static long integer(JsonObject j, String field) {
    Object v = j.getValue(field);
    if (v instanceof Integer || v instanceof Long) {
      return ((Number) v).longValue();
    }
    throw new IllegalArgumentException("field '" + field + "' is " + (v == null ? "missing" : "not an integer"));
  }

  private static boolean bool(JsonObject j, String field) {
    if (j.getValue(field) instanceof Boolean b) {
      return b;
    }
    throw new IllegalArgumentException("field '" + field + "' is not true or false");
  }

  private static void checkText(String field, String value, boolean optional) {
    if (value == null) {
      if (optional) {
        return;
      }
      throw BackupFailures.badParam(field + " is required");
    }
    if (value.isEmpty() || value.length() > MAX_TEXT || value.chars().anyMatch(Character::isISOControl)) {
      throw BackupFailures.badParam(field + " must be 1.." + MAX_TEXT + " characters without control characters");
    }
  }

  /** Compact, one line: what an operator needs to recognise the backup. */
  @Override
  public String toString() {
    return "Backup[" + backupId + " " + state + " cluster=" + clusterName + " hsm=" + sourceHsm + " created="
        + createdAt + " index=" + appliedIndex + " bytes=" + sizeBytes + (neverExpires ? " neverExpires" : "")
        + (isCopy() ? " copyOf=" + sourceStore + "/" + sourceBackupId : "") + "]";
  }
}
