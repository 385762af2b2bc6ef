package io.hsmbridge.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;

/** The key-id check that every keyed request passes (a loop since it left String.matches). */
class RequestReaderTest {
  private static String keyId(Object value) {
    return new RequestReader(new JsonObject().put("keyId", value)).keyId("keyId");
  }

  @Test
  void acceptsThirtyTwoHexCharactersOfEitherCaseAndLowersThem() {
    assertEquals("0123456789abcdef0123456789abcdef", keyId("0123456789abcdef0123456789abcdef"));
    assertEquals("0123456789abcdef0123456789abcdef", keyId("0123456789ABCDEF0123456789AbCdEf"));
  }

  @Test
  void refusesEveryOtherShape() {
    String ok = "0123456789abcdef0123456789abcdef";
    for (String bad : new String[] {"", ok.substring(1), ok + "0", ok.substring(1) + "g", ok.substring(1) + "G",
        ok.substring(1) + " ", ok.substring(1) + "/", ok.substring(1) + ":", ok.substring(1) + "@",
        ok.substring(1) + "`",
        // digits and letters outside ASCII that Character.digit would take
        ok.substring(1) + "\u0663", ok.substring(1) + "\uFF11", ok.substring(1) + "\uFF41"}) {
      HsmException e = assertThrows(HsmException.class, () -> keyId(bad), bad);
      assertEquals(ErrorCode.INVALID_PARAMETER, e.code(), bad);
    }
    assertEquals(ErrorCode.BAD_REQUEST, assertThrows(HsmException.class, () -> keyId(42)).code());
  }
}
