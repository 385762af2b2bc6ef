package io.hsmbridge.agent.users;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.UserRecord;
import org.junit.jupiter.api.Test;

/**
 * The contract between {@link PasswordHash} and the user records stored in the HSMs: whatever
 * PasswordHash produces (any parameters it accepts) is a storable hash, and a password is not.
 */
class UserRecordHashTest {
  @Test
  void everyHashPasswordHashMakesIsAcceptedAndStillVerifiesFromTheRecord() {
    char[] password = "a long enough password".toCharArray();
    int[][] params = {{8, 1, 1}, {1024, 2, 2}, {256, 16, 16}};
    for (int[] p : params) {
      String hash = PasswordHash.hash(password.clone(), p[0], p[1], p[2]);
      UserRecord u = new UserRecord("alice", "CU", hash, 0, false, null);
      assertTrue(PasswordHash.verify(password.clone(), u.passwordHash()));
      assertFalse(u.toString().contains(hash));
    }
  }

  @Test
  void aPasswordIsNotAHash() {
    for (String notAHash : new String[] {"a long enough password", "$argon2id$a long enough password"}) {
      HsmException e = assertThrows(HsmException.class, () -> new UserRecord("alice", "CU", notAHash, 0, false, null));
      assertFalse(e.getMessage().contains("long enough"), e.getMessage());
    }
  }
}
