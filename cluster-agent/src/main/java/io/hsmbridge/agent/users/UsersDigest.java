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
    return summarize(records).digest();
  }

  /**
   * The digest, and each record's own short digest (the first 8 bytes of SHA-256 over its line) by record
   * name ({@code user|alice}, {@code acl|<keyId>}, {@code certs|<keyId>}, {@code setting|<name>}): what lets a
   * check that finds two HSMs' digests different name the records that differ. Names and hashes only; a
   * user's line hashes a password hash with its salt, so the short digest cannot be tried against passwords.
   */
  public record Summary(String digest, java.util.Map<String, String> perRecord) {}

  /** {@link Summary} of {@code records}, their lines built once. */
  public static Summary summarize(Settled records) {
    MessageDigest whole = sha256();
    java.util.Map<String, String> perRecord = new java.util.LinkedHashMap<>();
    records(records).forEach((name, line) -> {
      line(whole, line);
      MessageDigest one = sha256();
      line(one, line);
      perRecord.put(name, HexFormat.of().formatHex(one.digest(), 0, 8));
    });
    return new Summary(HexFormat.of().formatHex(whole.digest()), perRecord);
  }

  /** Record name -> the line the digest hashes, in the digest's order (users, ACLs, chains, settings; by name). */
  private static java.util.Map<String, String> records(Settled records) {
    java.util.Map<String, String> lines = new java.util.LinkedHashMap<>();
    Base64.Encoder b64 = Base64.getEncoder();
    for (UserRecord u : records.users()) {
      lines.put("user|" + u.name(), "user|" + u.name() + "|" + u.role() + "|" + u.passwordHash() + "|" + u.failedLogins()
          + "|" + u.locked() + "|" + (u.approvalKeySpki() == null ? "-" : b64.encodeToString(u.approvalKeySpki())));
    }
    for (KeyAcl a : records.acls()) {
      lines.put("acl|" + a.keyId(), "acl|" + a.keyId() + "|" + a.owner() + "|" + String.join(",", a.shares()));
    }
    for (CertificateChain c : records.chains()) {
      StringBuilder certs = new StringBuilder();
      for (byte[] der : c.certificates()) {
        certs.append(certs.length() == 0 ? "" : ",").append(b64.encodeToString(sha256(der)));
      }
      lines.put("certs|" + c.keyId(), "certs|" + c.keyId() + "|" + certs);
    }
    for (ClusterSettings.Setting s : records.settings()) {
      lines.put("setting|" + s.name(), "setting|" + s.name() + "|" + s.value());
    }
    return lines;
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }

  private static byte[] sha256(byte[] data) {
    return sha256().digest(data);
  }

  private static void line(MessageDigest sha, String line) {
    sha.update(line.getBytes(StandardCharsets.UTF_8));
    sha.update((byte) '\n');
  }
}
