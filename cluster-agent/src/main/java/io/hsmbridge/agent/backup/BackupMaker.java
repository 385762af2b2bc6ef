package io.hsmbridge.agent.backup;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyInfo;
import io.hsmbridge.pkcs11.ReplicaBlob;
import io.hsmbridge.agent.users.UsersDigest;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Makes a backup of one HSM's token, inside the token ({@link io.hsmbridge.pkcs11.BackupKeys}): a fresh
 * EBK wrapped under the PBK; every key wrapped (non-exportable ones under the EBK, exportable ones under
 * the export key, which is itself backed up under the EBK and restored first); the users, ACLs, chains and
 * settings sealed in the manifest. The file is the state at exactly one applied index: metadata and
 * records are read there ({@link #readAt}, which holds the applier only to settle a scan in memory),
 * and the keys' material, which never changes, is wrapped after, while entries keep being applied.
 */
public final class BackupMaker {
  private BackupMaker() {}

  /**
   * Who and what a backup says it is: the header's fields. {@code appliedTerm} is the Raft term of the
   * entry at the token's applied index (-1 when unknown): a backup with it can stand for the log up to
   * that entry (a snapshot, docs/replication.md "Compaction").
   */
  public record Origin(String backupId, String cluster, String sourceHsm, long createdAt, long appliedTerm) {
    public Origin(String backupId, String cluster, String sourceHsm, long createdAt) {
      this(backupId, cluster, sourceHsm, createdAt, -1);
    }
  }

  /**
   * What a backup holds, read at one applied index ({@link #readAt}): the keys' metadata and the user model's
   * records. The keys' material is wrapped afterwards, while the applier runs on; a key's material never
   * changes, so the wrap of a key that still exists is its wrap at {@code appliedIndex}.
   */
  public record State(long appliedIndex, List<KeyInfo> keys, UsersDigest.Settled records) {}

  /**
   * Reads the state for a backup: the token in full first, without locks, then, inside {@code atOneIndex}
   * (the applier's "between two entries"), settles it against the caches in memory. So a backup holds the
   * applier for a walk over the caches, not for a read of the whole token.
   */
  public static State readAt(HsmToken hsm, java.util.function.Function<java.util.function.Supplier<State>, State> atOneIndex) {
    io.hsmbridge.pkcs11.KeyManager.TokenScan keys = hsm.keys().scanToken();
    UsersDigest.Scan records = UsersDigest.scan(hsm);
    return atOneIndex.apply(() -> new State(hsm.appliedIndex().read(), hsm.keys().settle(keys), records.settle()));
  }

  /** A backup of the token as it is now (nothing applies to it meanwhile: tests, benchmarks). */
  public static byte[] make(HsmToken hsm, Origin origin, IntConsumer progress) {
    return make(hsm, origin, readAt(hsm, java.util.function.Supplier::get), progress);
  }

  /**
   * @param state the keys and records at one applied index; a key of it deleted since makes this fail with
   *     {@link KeyGone} (the caller reads the state again and retries)
   * @param progress called with the number of keys wrapped so far (for a progress bar)
   * @return the backup file's bytes
   */
  public static byte[] make(HsmToken hsm, Origin origin, State state, IntConsumer progress) {
    List<KeyInfo> keys = new ArrayList<>(state.keys());
    // Non-exportable first: the export key is one of them, and the exportable keys unwrap under it.
    keys.sort(Comparator.comparing(KeyInfo::exportable).thenComparing(KeyInfo::keyId));
    io.hsmbridge.pkcs11.BackupKeys.Begun begun = hsm.backupKeys().beginBackup();
    byte[] wrappedEbk = begun.wrappedEbk();
    try {
      List<BackupManifest.KeyMeta> metas = new ArrayList<>();
      List<byte[]> blobs = new ArrayList<>();
      List<String> skipped = new ArrayList<>();
      for (KeyInfo k : keys) {
        if (!k.extractable()) {
          skipped.add(k.keyId()); // never extractable: nothing may wrap it (docs/backups.md)
          continue;
        }
        ReplicaBlob b = wrap(hsm, k.keyId());
        // The metadata at the backup's index (a relabel applied since must not leak into it), the material as wrapped.
        metas.add(new BackupManifest.KeyMeta(k.keyId(), k.label(), k.spec(), k.usage(), k.exportable(), b.ecPoint(),
            BackupManifest.sha256(b.wrapped())));
        blobs.add(b.wrapped());
        progress.accept(blobs.size());
      }
      BackupManifest manifest = new BackupManifest(metas, state.records().users(), state.records().acls(),
          state.records().chains(), state.records().settings(), skipped);
      long applied = state.appliedIndex();
      JsonObject header = new JsonObject().put("format", BackupFile.FORMAT).put("backupId", origin.backupId())
          .put("cluster", origin.cluster()).put("sourceHsm", origin.sourceHsm()).put("createdAt", origin.createdAt())
          .put("appliedIndex", applied).put("keys", blobs.size()).put("backupKeyGeneration", begun.generation());
      if (origin.appliedTerm() >= 0) {
        header.put("appliedTerm", origin.appliedTerm());
      }
      byte[] headerBytes = header.encode().getBytes(StandardCharsets.UTF_8);
      io.hsmbridge.pkcs11.BackupKeys.Sealed sealed = hsm.backupKeys().seal(manifest.toBytes(), BackupFile.aad(headerBytes, wrappedEbk));
      BackupFile file = new BackupFile(headerBytes, header, wrappedEbk, sealed, blobs);
      return file.toBytes();
    } catch (KeyGone e) {
      throw e;
    } catch (HsmException e) {
      throw new HsmException(e.code() == ErrorCode.INVALID_PARAMETER ? ErrorCode.INTERNAL : e.code(),
          "backup " + origin.backupId() + " failed: " + e.getMessage(), e.ckr(), e.serverDetail(), e);
    } finally {
      hsm.backupKeys().end();
    }
  }

  /** The key's wrap under the EBK (or the export key); {@link KeyGone} when the key was deleted meanwhile. */
  private static ReplicaBlob wrap(HsmToken hsm, String keyId) {
    try {
      return hsm.backupKeys().wrapKey(keyId);
    } catch (HsmException e) {
      if (!hsm.keys().holds(keyId)) {
        throw new KeyGone(keyId, e);
      }
      throw e;
    }
  }

  /** A key of the backup's state was deleted (by a later entry) before its material was wrapped. */
  public static final class KeyGone extends RuntimeException {
    KeyGone(String keyId, HsmException cause) {
      super("key " + keyId + " was deleted while the backup was being made", cause);
    }

    /** The token's error, for a caller that does not try again. */
    public HsmException tokenError() {
      return (HsmException) getCause();
    }
  }
}
