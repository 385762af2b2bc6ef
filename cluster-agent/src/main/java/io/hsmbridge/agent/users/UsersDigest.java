package io.hsmbridge.agent.users;

import io.hsmbridge.pkcs11.ClusterSettings;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyAcl;
import io.hsmbridge.pkcs11.UserRecord;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;
import java.util.HexFormat;

/**
 * One SHA-256 over everything of the user model an HSM holds (users with their hashes, counts, locks and
 * approval keys; key ACLs; settings), in name order, re-read from the token. HSMs that applied the same
 * log agree; anti-entropy reports the ones that do not (a token restored or edited behind the cluster's
 * back). It reveals nothing: it is a hash over hashes and names.
 */
public final class UsersDigest {
  private UsersDigest() {}

  public static String of(HsmToken hsm) {
    MessageDigest sha;
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
    Base64.Encoder b64 = Base64.getEncoder();
    for (UserRecord u : hsm.users().rescan()) {
      line(sha, "user|" + u.name() + "|" + u.role() + "|" + u.passwordHash() + "|" + u.failedLogins() + "|" + u.locked()
          + "|" + (u.approvalKeySpki() == null ? "-" : b64.encodeToString(u.approvalKeySpki())));
    }
    for (KeyAcl a : hsm.keyAcls().rescan()) {
      line(sha, "acl|" + a.keyId() + "|" + a.owner() + "|" + String.join(",", a.shares()));
    }
    for (ClusterSettings.Setting s : hsm.settings().rescan()) {
      line(sha, "setting|" + s.name() + "|" + s.value());
    }
    return HexFormat.of().formatHex(sha.digest());
  }

  private static void line(MessageDigest sha, String line) {
    sha.update(line.getBytes(StandardCharsets.UTF_8));
    sha.update((byte) '\n');
  }
}
