package io.hsmbridge.cli;

import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyInfo;
import io.hsmbridge.pkcs11.PinSource;
import io.hsmbridge.pkcs11.TokenConfig;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * A child JVM for {@link ClusterScenarioTest}: someone deleting a key on one HSM's token behind the
 * cluster's back. Run with {@code SOFTHSM2_CONF} of that HSM (SoftHSM2 reads it once per process), while
 * the HSM's agent keeps running on the same token directory.
 *
 * <p>Arguments: PKCS#11 library, token label, user PIN file, key id (CKA_ID, hex). Opens the token as
 * its User, prints {@code READY <keys>}, waits for a line {@code go} on stdin (so the caller can run its
 * check right after the deletion), destroys the key's objects (found by CKA_ID) and prints
 * {@code DELETED <gone> <keys left>}. A key id {@code user:<name>} deletes that user's record instead;
 * {@code dump} prints the token's user model instead (the lines {@code UsersDigest} hashes, password
 * hashes shortened), to explain a users-digest mismatch in a test's failure message.
 */
public final class TokenTamper {
  private TokenTamper() {}

  public static void main(String[] args) throws Exception {
    Path library = Path.of(args[0]);
    String label = args[1];
    Path userPin = Path.of(args[2]);
    String keyId = args[3];
    try (HsmToken hsm = HsmToken.open(TokenConfig.of(library, label, PinSource.fromFile(userPin), null, false))) {
      System.out.println("READY " + hsm.keys().count());
      System.out.flush();
      String line = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)).readLine();
      if (!"go".equals(line)) {
        System.out.println("ABORTED");
        System.exit(3);
      }
      if (keyId.equals("dump")) {
        for (io.hsmbridge.pkcs11.UserRecord u : hsm.users().rescan()) {
          System.out.println("user|" + u.name() + "|" + u.role() + "|" + Integer.toHexString(u.passwordHash().hashCode())
              + "|" + u.failedLogins() + "|" + u.locked());
        }
        for (io.hsmbridge.pkcs11.KeyAcl a : hsm.keyAcls().rescan()) {
          System.out.println("acl|" + a.keyId() + "|" + a.owner() + "|" + String.join(",", a.shares()));
        }
        for (io.hsmbridge.pkcs11.ClusterSettings.Setting s : hsm.settings().rescan()) {
          System.out.println("setting|" + s.name() + "|" + s.value());
        }
        System.out.println("applied|" + hsm.appliedIndex().read());
        System.out.flush();
        System.exit(0);
      }
      if (keyId.startsWith("user:")) { // a user record instead of a key (UsersScenarioTest)
        System.out.println("DELETED " + hsm.users().delete(keyId.substring(5)) + " " + hsm.users().rescan().size());
        System.out.flush();
        System.exit(0);
      }
      hsm.keys().describe(keyId); // UNKNOWN_KEY here means the token never had it
      hsm.keys().delete(keyId);
      List<KeyInfo> left = hsm.keys().rescan();
      boolean gone = left.stream().noneMatch(k -> k.keyId().equals(keyId));
      System.out.println("DELETED " + gone + " " + left.size());
      System.out.flush();
    }
    System.exit(0);
  }
}
