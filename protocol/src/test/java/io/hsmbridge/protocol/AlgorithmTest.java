package io.hsmbridge.protocol;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class AlgorithmTest {
  @Test
  void parsesWireNamesAndCommonSpellings() {
    assertEquals(Algorithm.AES_GCM, Algorithm.parse("aes-gcm", Algorithm.Kind.CIPHER));
    assertEquals(Algorithm.SHA512, Algorithm.parse("SHA-512", Algorithm.Kind.DIGEST));
    assertEquals(Algorithm.SHA256, Algorithm.parse("sha256", Algorithm.Kind.DIGEST));
    assertEquals(Algorithm.RSA_OAEP_WRAP, Algorithm.parse("RSA_OAEP", Algorithm.Kind.KEY_WRAP));
    assertEquals(Algorithm.RSA_OAEP, Algorithm.parse("RSA_OAEP", Algorithm.Kind.CIPHER));
  }

  @Test
  void refusesOtherKindsAndUnknownNamesListingTheValidOnes() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Algorithm.parse("AES_GCM", Algorithm.Kind.SIGNATURE));
    assertTrue(e.getMessage().contains("ECDSA_SHA256"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Algorithm.parse("SHA-1", Algorithm.Kind.DIGEST));
    assertThrows(IllegalArgumentException.class, () -> Algorithm.parse(null, Algorithm.Kind.MAC));
  }

  @Test
  void everySpecHasADefaultUsageItAllows() {
    for (KeySpec spec : KeySpec.values()) {
      assertTrue(KeyUsage.allowedFor(spec).contains(KeyUsage.defaultFor(spec)), spec.toString());
    }
    assertThrows(IllegalArgumentException.class, () -> KeyUsage.parseFor(KeySpec.EC_P256, "ENCRYPT_DECRYPT"));
  }

  @Test
  void errorCodesRoundTripAndUnknownIsInternal() {
    for (ErrorCode c : ErrorCode.values()) {
      assertEquals(c, ErrorCode.fromCode(c.code()));
    }
    assertEquals(ErrorCode.INTERNAL, ErrorCode.fromCode(999));
  }
}
