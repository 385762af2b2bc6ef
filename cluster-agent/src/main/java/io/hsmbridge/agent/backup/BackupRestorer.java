package io.hsmbridge.agent.backup;

import io.hsmbridge.pkcs11.ClusterSettings;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyAcl;
import io.hsmbridge.pkcs11.KeyInfo;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.ErrorCode;
import java.security.MessageDigest;
import io.hsmbridge.agent.replication.TokenApplier;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.List;
import java.util.Set;
import java.util.function.IntConsumer;

/**
 * Restores a backup onto a token of the same cluster (one that holds the cluster's PBK). The whole file
 * is checked first, inside the token: the EBK must unwrap under this token's PBK (a backup of another
 * cluster does not), the manifest's GCM tag must cover the header and the wrapped EBK, and every key
 * blob must have the digest the manifest gives it, in the manifest's order, with nothing after the last.
 * Only then is anything of the backup written: keys, users, ACLs, settings, and last the applied index,
 * so that the HSM resumes the log after the backup's index. Before that the token gains only the
 * restore's own EBK, destroyed whatever happens.
 *
 * <p>The target holds no users and no keys but the backup's (a fresh token, or one a crash interrupted
 * during an earlier restore of this backup: every write is idempotent, so running it again completes it).
 */
public final class BackupRestorer {
  private BackupRestorer() {}

  /** Why a restore was refused, for the operator's log: the detail of a CRYPTO_FAILURE, else the message. */
  public static String reason(RuntimeException e) {
    return e instanceof HsmException h && h.serverDetail() != null ? h.serverDetail() : e.getMessage();
  }

  /** What a restore wrote. */
  public record Restored(String backupId, long appliedIndex, long appliedTerm, int keys, int users, List<String> notBackedUp) {}

  /**
   * @param expectedCluster the cluster the backup must be of (its header, authenticated), or null for any
   *     backup this token's PBK opens
   * @param progress called with the number of keys installed so far
   * @throws HsmException INVALID_PARAMETER for a malformed file; CRYPTO_FAILURE for one that does not
   *     authenticate (altered, truncated, reordered, of another cluster); NOT_ALLOWED_BY_POLICY for a
   *     target that holds users or other keys, or a backup of another cluster than expected
   */
  public static Restored restore(HsmToken hsm, byte[] bytes, String expectedCluster, IntConsumer progress) {
    BackupFile file = parse(bytes, expectedCluster);
    if (!hsm.users().rescan().isEmpty()) {
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "a backup is restored onto a token without users: this one has "
          + hsm.users().list().size());
    }
    hsm.backupKeys().open(file.wrappedEbk());
    try {
      BackupManifest manifest = authenticate(hsm, file);
      checkTargetKeys(hsm, manifest);
      return write(hsm, file, manifest, progress);
    } finally {
      hsm.backupKeys().end();
    }
  }

  /**
   * Restores a backup over a token of the same cluster that is behind it (a peer whose next log entries
   * were purged, or whose token was reset): after the same checks as {@link #restore}, the token's user
   * model is replaced by the backup's, its keys that the backup does not hold (deleted before the backup)
   * are destroyed (never-extractable ones, which no backup holds, stay), the backup's keys it lacks are installed and relabelled ones take the backup's label;
   * the applied index is written last. A crash part-way leaves the old index, and the restore is repeated.
   *
   * @throws HsmException as {@link #restore}; NOT_ALLOWED_BY_POLICY for a backup behind the token
   */
  public static Restored restoreOver(HsmToken hsm, byte[] bytes, String expectedCluster) {
    BackupFile file = parse(bytes, expectedCluster);
    long tokenAt = hsm.appliedIndex().read();
    if (file.appliedIndex() < tokenAt) {
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "backup " + file.backupId() + " is at log index "
          + file.appliedIndex() + ", behind this token (" + tokenAt + ")");
    }
    hsm.backupKeys().open(file.wrappedEbk());
    try {
      BackupManifest manifest = authenticate(hsm, file);
      // Everything is authenticated: from here on the token is brought to the backup's state.
      TokenApplier.forgetUserModel(hsm);
      Map<String, BackupManifest.KeyMeta> ours = new HashMap<>();
      manifest.keys().forEach(k -> ours.put(k.keyId(), k));
      for (KeyInfo k : hsm.keys().rescan()) {
        BackupManifest.KeyMeta meta = ours.get(k.keyId());
        if (meta == null && !manifest.notBackedUp().contains(k.keyId())) {
          hsm.keys().delete(k.keyId());
        } else if (meta != null && !meta.label().equals(k.label())) {
          hsm.keys().setLabel(k.keyId(), meta.label());
        }
      }
      return write(hsm, file, manifest, n -> { });
    } finally {
      hsm.backupKeys().end();
    }
  }

  /**
   * Checks a backup inside the token as a restore does, writing nothing: its header (index, term) can be
   * believed afterwards.
   */
  public static BackupFile authenticated(HsmToken hsm, byte[] bytes, String expectedCluster) {
    BackupFile file = parse(bytes, expectedCluster);
    hsm.backupKeys().open(file.wrappedEbk());
    try {
      authenticate(hsm, file);
      return file;
    } finally {
      hsm.backupKeys().end();
    }
  }

  private static BackupFile parse(byte[] bytes, String expectedCluster) {
    BackupFile file = BackupFile.parse(bytes);
    if (expectedCluster != null && !expectedCluster.equals(file.cluster())) {
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "backup " + file.backupId() + " is of cluster '"
          + file.cluster() + "', not of '" + expectedCluster + "'");
    }
    return file;
  }

  /** With the backup's EBK open: the manifest, after its tag and every blob's digest were checked. */
  private static BackupManifest authenticate(HsmToken hsm, BackupFile file) {
    BackupManifest manifest = BackupManifest.parse(hsm.backupKeys().unseal(file.manifest(), file.aad()));
    checkBlobs(file, manifest);
    return manifest;
  }

  /** Writes an authenticated backup: keys (present ones are kept), users, ACLs, chains, settings, the index last. */
  private static Restored write(HsmToken hsm, BackupFile file, BackupManifest manifest, IntConsumer progress) {
    int installed = 0;
    for (int i = 0; i < manifest.keys().size(); i++) {
      BackupManifest.KeyMeta meta = manifest.keys().get(i);
      hsm.backupKeys().install(meta.blob(file.keyBlobs().get(i)), meta.exportable());
      progress.accept(++installed);
    }
    for (UserRecord u : manifest.users()) {
      hsm.users().put(u);
    }
    for (KeyAcl acl : manifest.acls()) {
      hsm.keyAcls().put(acl);
    }
    for (io.hsmbridge.pkcs11.CertificateChain chain : manifest.chains()) {
      hsm.keyCertificates().put(chain);
    }
    for (ClusterSettings.Setting s : manifest.settings()) {
      hsm.settings().put(s.name(), s.value());
    }
    hsm.appliedIndex().write(file.appliedIndex());
    return new Restored(file.backupId(), file.appliedIndex(), file.appliedTerm(), installed, manifest.users().size(),
        manifest.notBackedUp());
  }

  /** Each blob has the digest the manifest gives it, at its place: nothing altered, dropped, added or moved. */
  private static void checkBlobs(BackupFile file, BackupManifest manifest) {
    if (manifest.keys().size() != file.keyBlobs().size()) {
      throw altered("it holds " + file.keyBlobs().size() + " key blobs, its manifest " + manifest.keys().size());
    }
    Set<String> ids = new HashSet<>();
    for (int i = 0; i < manifest.keys().size(); i++) {
      BackupManifest.KeyMeta meta = manifest.keys().get(i);
      if (!MessageDigest.isEqual(meta.sha256(), BackupManifest.sha256(file.keyBlobs().get(i)))) {
        throw altered("key blob " + i + " is not the one the manifest names there");
      }
      if (!ids.add(meta.keyId())) {
        throw altered("key " + meta.keyId() + " appears twice");
      }
    }
  }

  /** The target may hold keys of this backup (an interrupted restore), none other. */
  private static void checkTargetKeys(HsmToken hsm, BackupManifest manifest) {
    Set<String> ours = new HashSet<>();
    manifest.keys().forEach(k -> ours.add(k.keyId()));
    for (KeyInfo k : hsm.keys().rescan()) {
      if (!ours.contains(k.keyId())) {
        throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY,
            "a backup is restored onto a token without other keys: this one holds key " + k.keyId());
      }
    }
  }

  private static HsmException altered(String why) {
    String reason = "the backup does not authenticate: " + why;
    return new HsmException(ErrorCode.CRYPTO_FAILURE, reason, null, reason, null);
  }
}
