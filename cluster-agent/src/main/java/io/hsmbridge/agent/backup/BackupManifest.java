package io.hsmbridge.agent.backup;

import io.hsmbridge.pkcs11.CertificateChain;
import io.hsmbridge.pkcs11.ClusterSettings;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.KeyAcl;
import io.hsmbridge.pkcs11.ReplicaBlob;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;

/**
 * What a backup holds besides the key blobs, sealed inside the file (so a thief of the file learns none
 * of it): each key's metadata and its blob's SHA-256 (in file order), the users with their password
 * hashes, the key ACLs, the keys' certificate chains, the settings (quorum values and the rest of the log's
 * state), and the keys that could not be backed up (never extractable). A manifest written before chains were
 * kept has no {@code chains}: it reads as none.
 */
record BackupManifest(List<KeyMeta> keys, List<UserRecord> users, List<KeyAcl> acls, List<CertificateChain> chains,
    List<ClusterSettings.Setting> settings, List<String> notBackedUp) {

  /** One key's metadata: what the unwrap needs besides the blob, and the blob's digest. */
  record KeyMeta(String keyId, String label, KeySpec spec, KeyUsage usage, boolean exportable, byte[] ecPoint, byte[] sha256) {
    ReplicaBlob blob(byte[] wrapped) {
      return new ReplicaBlob(keyId, label, spec, usage, wrapped, ecPoint);
    }
  }

  byte[] toBytes() {
    Base64.Encoder b64 = Base64.getEncoder();
    JsonArray k = new JsonArray();
    for (KeyMeta m : keys) {
      k.add(new JsonObject().put("keyId", m.keyId()).put("label", m.label()).put("spec", m.spec().name())
          .put("usage", m.usage().name()).put("exportable", m.exportable())
          .put("ecPoint", m.ecPoint() == null ? null : b64.encodeToString(m.ecPoint())).put("sha256", b64.encodeToString(m.sha256())));
    }
    JsonArray u = new JsonArray();
    for (UserRecord r : users) {
      u.add(new JsonObject().put("name", r.name()).put("role", r.role()).put("passwordHash", r.passwordHash())
          .put("failedLogins", r.failedLogins()).put("locked", r.locked())
          .put("approvalKey", r.approvalKeySpki() == null ? null : b64.encodeToString(r.approvalKeySpki())));
    }
    JsonArray a = new JsonArray();
    for (KeyAcl acl : acls) {
      a.add(new JsonObject().put("keyId", acl.keyId()).put("owner", acl.owner()).put("shares", new JsonArray(new ArrayList<>(acl.shares()))));
    }
    JsonArray c = new JsonArray();
    for (CertificateChain chain : chains) {
      JsonArray der = new JsonArray();
      chain.certificates().forEach(x -> der.add(b64.encodeToString(x)));
      c.add(new JsonObject().put("keyId", chain.keyId()).put("certificates", der));
    }
    JsonArray s = new JsonArray();
    for (ClusterSettings.Setting setting : settings) {
      s.add(new JsonObject().put("name", setting.name()).put("value", setting.value()));
    }
    return new JsonObject().put("keys", k).put("users", u).put("acls", a).put("chains", c).put("settings", s)
        .put("notBackedUp", new JsonArray(notBackedUp)).encode().getBytes(StandardCharsets.UTF_8);
  }

  /**
   * Reads a manifest the HSM authenticated (so a failure here is a bug or a file made by another build,
   * never an attacker's edit), checking every value as the token's records do.
   */
  static BackupManifest parse(byte[] bytes) {
    try {
      Base64.Decoder b64 = Base64.getDecoder();
      JsonObject m = new JsonObject(new String(bytes, StandardCharsets.UTF_8));
      List<KeyMeta> keys = new ArrayList<>();
      for (Object o : m.getJsonArray("keys")) {
        JsonObject k = (JsonObject) o;
        String point = k.getString("ecPoint");
        keys.add(new KeyMeta(k.getString("keyId"), k.getString("label"), KeySpec.valueOf(k.getString("spec")),
            KeyUsage.valueOf(k.getString("usage")), k.getBoolean("exportable"), point == null ? null : b64.decode(point),
            b64.decode(k.getString("sha256"))));
      }
      List<UserRecord> users = new ArrayList<>();
      for (Object o : m.getJsonArray("users")) {
        JsonObject u = (JsonObject) o;
        String approval = u.getString("approvalKey");
        users.add(new UserRecord(u.getString("name"), u.getString("role"), u.getString("passwordHash"),
            u.getInteger("failedLogins"), u.getBoolean("locked"), approval == null ? null : b64.decode(approval)));
      }
      List<KeyAcl> acls = new ArrayList<>();
      for (Object o : m.getJsonArray("acls")) {
        JsonObject a = (JsonObject) o;
        List<String> shares = new ArrayList<>();
        a.getJsonArray("shares").forEach(x -> shares.add((String) x));
        acls.add(new KeyAcl(a.getString("keyId"), a.getString("owner"), new HashSet<>(shares)));
      }
      List<CertificateChain> chains = new ArrayList<>();
      for (Object o : m.getJsonArray("chains", new JsonArray())) {
        JsonObject c = (JsonObject) o;
        List<byte[]> der = new ArrayList<>();
        c.getJsonArray("certificates").forEach(x -> der.add(b64.decode((String) x)));
        chains.add(new CertificateChain(c.getString("keyId"), der));
      }
      List<ClusterSettings.Setting> settings = new ArrayList<>();
      for (Object o : m.getJsonArray("settings")) {
        JsonObject s = (JsonObject) o;
        settings.add(new ClusterSettings.Setting(s.getString("name"), s.getLong("value")));
      }
      List<String> skipped = new ArrayList<>();
      m.getJsonArray("notBackedUp").forEach(x -> skipped.add((String) x));
      return new BackupManifest(keys, users, acls, chains, settings, skipped);
    } catch (HsmException e) {
      throw BackupFile.malformed("the manifest holds an invalid record: " + e.getMessage());
    } catch (RuntimeException e) {
      throw BackupFile.malformed("the manifest does not read (" + e.getClass().getSimpleName() + ")");
    }
  }

  static byte[] sha256(byte[] data) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(data);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }

  @Override
  public String toString() {
    return "BackupManifest[" + keys.size() + " keys, " + users.size() + " users, " + acls.size() + " ACLs, " + chains.size() + " chains, "
        + settings.size() + " settings]";
  }
}
