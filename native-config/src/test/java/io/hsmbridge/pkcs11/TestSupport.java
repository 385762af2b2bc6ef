package io.hsmbridge.pkcs11;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.hsmbridge.protocol.ErrorCode;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.function.Executable;

/** Assertions shared by the native-config tests. */
final class TestSupport {
  private static final HexFormat HEX = HexFormat.of();

  private TestSupport() {}

  static byte[] hex(String s) {
    return HEX.parseHex(s.replace(" ", ""));
  }

  static String hex(byte[] b) {
    return HEX.formatHex(b);
  }

  /** Runs {@code action}, expecting an HsmException with {@code code}; returns it. */
  static HsmException assertHsm(ErrorCode code, Executable action) {
    HsmException e = assertThrows(HsmException.class, action);
    assertEquals(code, e.code(), () -> "unexpected error: " + e.clientMessage() + " / " + e.serverDetail());
    return e;
  }

  /**
   * Expects {@code action} to fail with {@code code} and to leave the token as it was: the same keys
   * in the cache, the same keys after a rescan of the token, and the same number of token objects.
   */
  static HsmException assertFailsUnchanged(HsmToken hsm, TokenInspector inspector, ErrorCode code, Executable action) {
    List<KeyInfo> before = hsm.keys().list();
    int objectsBefore = inspector.objectCount();
    HsmException e = assertHsm(code, action);
    assertEquals(before, hsm.keys().list(), "key cache changed");
    hsm.keys().reload();
    assertEquals(before, hsm.keys().list(), "keys on the token changed");
    assertEquals(objectsBefore, inspector.objectCount(), "token object count changed");
    return e;
  }

  /** Flips one bit of a copy of {@code b} at {@code index} (negative: from the end). */
  static byte[] flip(byte[] b, int index) {
    byte[] c = b.clone();
    int i = index < 0 ? c.length + index : index;
    c[i] ^= 0x01;
    return c;
  }
}
