package io.hsmbridge.client;

import io.hsmbridge.protocol.Algorithm;
import java.util.concurrent.CompletionStage;

/**
 * AES-GCM with one key. The HSM chooses the IV of every encryption; the result carries it ({@link
 * Ciphertext#iv()}) and decryption takes it back.
 */
public final class Aead {
  private final HsmClient client;
  private final KeyHandle key;

  Aead(HsmClient client, KeyHandle key) {
    this.client = client;
    this.key = key;
  }

  /** @param aad additional authenticated data, or null */
  public Ciphertext encrypt(byte[] plaintext, byte[] aad) {
    return client.call(h -> h.encrypt(key.keyId(), Algorithm.AES_GCM.wireName(), plaintext, aad));
  }

  public CompletionStage<Ciphertext> encryptAsync(byte[] plaintext, byte[] aad) {
    return client.callAsync(h -> h.encrypt(key.keyId(), Algorithm.AES_GCM.wireName(), plaintext, aad));
  }

  /**
   * The plaintext.
   *
   * @throws HsmBridgeException CRYPTO_FAILURE (not retryable) when the tag does not match: wrong key, IV or aad,
   *     or changed ciphertext
   */
  public byte[] decrypt(Ciphertext ciphertext, byte[] aad) {
    return client.call(h -> h.decrypt(key.keyId(), Algorithm.AES_GCM.wireName(), ciphertext, aad));
  }

  public CompletionStage<byte[]> decryptAsync(Ciphertext ciphertext, byte[] aad) {
    return client.callAsync(h -> h.decrypt(key.keyId(), Algorithm.AES_GCM.wireName(), ciphertext, aad));
  }
}
