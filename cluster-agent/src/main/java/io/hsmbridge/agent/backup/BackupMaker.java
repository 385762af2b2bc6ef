package io.hsmbridge.agent.backup;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyInfo;
import io.hsmbridge.pkcs11.ReplicaBlob;
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
 * the export key, which is itself backed up under the EBK and restored first); the users, ACLs and
 * settings sealed in the manifest. The caller makes it at one applied index (the agent holds its applier
 * while it runs), so the file is the state at exactly {@code appliedIndex}.
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
   * @param progress called with the number of keys wrapped so far (for a progress bar)
   * @return the backup file's bytes
   */
  public static byte[] make(HsmToken hsm, Origin origin, IntConsumer progress) {
    List<KeyInfo> keys = new ArrayList<>(hsm.keys().rescan());
    // Non-exportable first: the export key is one of them, and the exportable keys unwrap under it.
    keys.sort(Comparator.comparing(KeyInfo::exportable).thenComparing(KeyInfo::keyId));
    byte[] wrappedEbk = hsm.backupKeys().begin();
    try {
      List<BackupManifest.KeyMeta> metas = new ArrayList<>();
      List<byte[]> blobs = new ArrayList<>();
      List<String> skipped = new ArrayList<>();
      for (KeyInfo k : keys) {
        if (!k.extractable()) {
          skipped.add(k.keyId()); // never extractable: nothing may wrap it (docs/backups.md)
          continue;
        }
        ReplicaBlob b = hsm.backupKeys().wrapKey(k.keyId());
        metas.add(new BackupManifest.KeyMeta(b.keyId(), b.label(), b.spec(), b.usage(), k.exportable(), b.ecPoint(),
            BackupManifest.sha256(b.wrapped())));
        blobs.add(b.wrapped());
        progress.accept(blobs.size());
      }
      BackupManifest manifest = new BackupManifest(metas, hsm.users().rescan(), hsm.keyAcls().rescan(),
          hsm.settings().rescan(), skipped);
      long applied = hsm.appliedIndex().read();
      JsonObject header = new JsonObject().put("format", BackupFile.FORMAT).put("backupId", origin.backupId())
          .put("cluster", origin.cluster()).put("sourceHsm", origin.sourceHsm()).put("createdAt", origin.createdAt())
          .put("appliedIndex", applied).put("keys", blobs.size());
      if (origin.appliedTerm() >= 0) {
        header.put("appliedTerm", origin.appliedTerm());
      }
      byte[] headerBytes = header.encode().getBytes(StandardCharsets.UTF_8);
      io.hsmbridge.pkcs11.BackupKeys.Sealed sealed = hsm.backupKeys().seal(manifest.toBytes(), BackupFile.aad(headerBytes, wrappedEbk));
      BackupFile file = new BackupFile(headerBytes, header, wrappedEbk, sealed, blobs);
      return file.toBytes();
    } catch (HsmException e) {
      throw new HsmException(e.code() == ErrorCode.INVALID_PARAMETER ? ErrorCode.INTERNAL : e.code(),
          "backup " + origin.backupId() + " failed: " + e.getMessage(), e.ckr(), e.serverDetail(), e);
    } finally {
      hsm.backupKeys().end();
    }
  }
}
