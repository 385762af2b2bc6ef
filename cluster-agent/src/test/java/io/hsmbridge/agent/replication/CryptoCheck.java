package io.hsmbridge.agent.replication;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import io.hsmbridge.pkcs11.CryptoService;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.protocol.Algorithm;

/** Real crypto across two HSMs holding the same replicated key. */
final class CryptoCheck {
  private CryptoCheck() {}

  /** Encrypts on {@code a}, decrypts on {@code b}. */
  static void aesAcross(HsmToken a, HsmToken b, String keyId, byte[] message) {
    CryptoService.Encrypted e = a.crypto().encrypt(keyId, Algorithm.AES_GCM, message, null);
    assertArrayEquals(message, b.crypto().decrypt(keyId, Algorithm.AES_GCM, e.ciphertext(), e.iv(), null));
  }
}
