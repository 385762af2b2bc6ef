package io.hsmbridge.agent.users;

import io.hsmbridge.pkcs11.CertificateChain;
import io.hsmbridge.pkcs11.ClusterSettings;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyAcl;
import io.hsmbridge.pkcs11.RecordScan;
import io.hsmbridge.pkcs11.UserRecord;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;
import java.util.HexFormat;

/**
 * One SHA-256 over everything of the user model an HSM holds (users with their hashes, counts, locks and
 * approval keys; key ACLs; key certificate chains, by their certificates' SHA-256; settings), in name order, re-read from the token. HSMs that applied the same
 * log agree; anti-entropy reports the ones that do not (a token restored or edited behind the cluster's
 * back). It reveals nothing: it is a hash over hashes and names.
 */
public final class UsersDigest {
  private UsersDigest() {}

  /** The records as the token holds them, read now (use {@link #of(Scan)} to read at one applied index). */
  public static String of(HsmToken hsm) {
    return of(scan(hsm).settle());
  }

  /** The slow half, read without locks while the applier runs; {@link Scan#settle} then gives one index's records. */
  public static Scan scan(HsmToken hsm) {
    return new Scan(hsm, hsm.users().scanToken(), hsm.keyAcls().scanToken(), hsm.keyCertificates().scanToken(),
        hsm.settings().scanToken());
  }

  /** Records scanned a while ago; {@link #settle} re-reads those changed since (cheap: call it with applies held). */
  public record Scan(HsmToken hsm, RecordScan<UserRecord> users, RecordScan<KeyAcl> acls,
      RecordScan<CertificateChain> chains, RecordScan<ClusterSettings.Setting> settings) {
    public Settled settle() {
      return new Settled(hsm.users().settle(users), hsm.keyAcls().settle(acls), hsm.keyCertificates().settle(chains),
          hsm.settings().settle(settings));
    }
  }

  /** The user model's records at one moment (certificate chains with them: they too come only from the log). */
  public record Settled(java.util.List<UserRecord> users, java.util.List<KeyAcl> acls,
      java.util.List<CertificateChain> chains, java.util.List<ClusterSettings.Setting> settings) {}

  public static String of(Settled records) {
    MessageDigest sha;
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
    Base64.Encoder b64 = Base64.getEncoder();
    for (UserRecord u : records.users()) {
      line(sha, "user|" + u.name() + "|" + u.role() + "|" + u.passwordHash() + "|" + u.failedLogins() + "|" + u.locked()
          + "|" + (u.approvalKeySpki() == null ? "-" : b64.encodeToString(u.approvalKeySpki())));
    }
    for (KeyAcl a : records.acls()) {
      line(sha, "acl|" + a.keyId() + "|" + a.owner() + "|" + String.join(",", a.shares()));
    }
    for (CertificateChain c : records.chains()) {
      StringBuilder certs = new StringBuilder();
      for (byte[] der : c.certificates()) {
        certs.append(certs.length() == 0 ? "" : ",").append(b64.encodeToString(sha256(der)));
      }
      line(sha, "certs|" + c.keyId() + "|" + certs);
    }
    for (ClusterSettings.Setting s : records.settings()) {
      line(sha, "setting|" + s.name() + "|" + s.value());
    }
    return HexFormat.of().formatHex(sha.digest());
  }

  private static byte[] sha256(byte[] data) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(data);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }

  private static void line(MessageDigest sha, String line) {
    sha.update(line.getBytes(StandardCharsets.UTF_8));
    sha.update((byte) '\n');
  }
}
