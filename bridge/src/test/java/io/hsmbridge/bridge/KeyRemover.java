package io.hsmbridge.bridge;

import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.PinSource;
import io.hsmbridge.pkcs11.TokenConfig;
import java.nio.file.Path;

/**
 * A child JVM for {@link NodeCrashTest}: a key's objects gone from a stopped node's token, as a kill in the
 * middle of rewriting the key's file leaves it. Run with {@code SOFTHSM2_CONF} of that node (SoftHSM2 reads
 * it once per process). Arguments: PKCS#11 library, token label, user PIN file, key id. Prints
 * {@code DELETED <keys left>}.
 */
public final class KeyRemover {
  private KeyRemover() {}

  public static void main(String[] args) {
    try (HsmToken hsm = HsmToken.open(TokenConfig.of(Path.of(args[0]), args[1], PinSource.fromFile(Path.of(args[2])),
        null, false))) {
      hsm.keys().delete(args[3]);
      System.out.println("DELETED " + hsm.keys().count());
    }
  }
}
