package io.hsmbridge.pkcs11;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import org.junit.jupiter.api.Test;

class SmokeTest {
  @Test
  void everySpecGeneratesAndWorks() {
    try (HsmToken hsm = HsmToken.open(SoftHsmFixture.newToken("smoke"))) {
      for (KeySpec spec : KeySpec.values()) {
        KeyInfo k = hsm.keys().generate(spec, KeyUsage.defaultFor(spec), "k-" + spec, false);
        assertEquals(spec, k.spec());
        System.out.println(k);
      }
      assertEquals(KeySpec.values().length, hsm.keys().count());
    }
  }
}
