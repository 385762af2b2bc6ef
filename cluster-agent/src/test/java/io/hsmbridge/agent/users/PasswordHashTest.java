package io.hsmbridge.agent.users;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class PasswordHashTest {
  private static final char[] GOOD = "correct horse battery".toCharArray();

  @Test
  void aHashVerifiesItsPasswordOnlyAndCarriesItsParameters() {
    String h = PasswordHash.hash(GOOD, 1024, 2, 1);
    assertTrue(h.startsWith("$argon2id$v=19$m=1024,t=2,p=1$"), h);
    assertTrue(PasswordHash.verify(GOOD, h));
    assertFalse(PasswordHash.verify("correct horse batterz".toCharArray(), h));
    assertNotEquals(h, PasswordHash.hash(GOOD, 1024, 2, 1), "a fresh salt every time");
  }

  @Test
  void theDefaultIsMemoryHard() {
    String h = PasswordHash.hash(GOOD);
    assertTrue(h.contains("m=65536,t=3,p=4"), h);
    assertTrue(PasswordHash.verify(GOOD, h));
  }

  @Test
  void malformedOrAbusiveHashesNeverVerify() {
    String h = PasswordHash.hash(GOOD, 1024, 2, 1);
    assertFalse(PasswordHash.verify(GOOD, null));
    assertFalse(PasswordHash.verify(GOOD, "$argon2i$v=19$m=1024,t=2,p=1$AAAA$AAAA"));
    assertFalse(PasswordHash.verify(GOOD, h.replace("m=1024", "m=99999999")));
    assertFalse(PasswordHash.verify(GOOD, h.replace("t=2", "t=x")));
    assertFalse(PasswordHash.verify(GOOD, h.substring(0, h.length() - 4) + "AAAA"));
  }

  @Test
  void passwordRules() {
    assertThrows(IllegalArgumentException.class, () -> PasswordHash.checkRules("short".toCharArray()));
    assertThrows(IllegalArgumentException.class, () -> PasswordHash.checkRules("x".repeat(129).toCharArray()));
    assertThrows(IllegalArgumentException.class, () -> PasswordHash.checkRules("twelve chars\n!".toCharArray()));
    PasswordHash.checkRules(GOOD);
  }
}
