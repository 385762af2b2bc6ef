package io.hsmbridge.client;

import io.hsmbridge.protocol.Algorithm;
import java.util.concurrent.CompletionStage;

/** Signatures with one key and one algorithm, made inside an HSM (the message is hashed there too). */
public final class Signer {
  private final HsmClient client;
  private final KeyHandle key;
  private final Algorithm algorithm;

  Signer(HsmClient client, KeyHandle key, Algorithm algorithm) {
    this.client = client;
    this.key = key;
    this.algorithm = algorithm;
  }

  /** The signature of {@code message} (at most 64 KiB); ECDSA signatures are DER, as JCA's. */
  public byte[] sign(byte[] message) {
    return client.call(h -> h.sign(key.keyId(), algorithm.wireName(), message));
  }

  public CompletionStage<byte[]> signAsync(byte[] message) {
    return client.callAsync(h -> h.sign(key.keyId(), algorithm.wireName(), message));
  }

  /** Checked by an HSM; {@code key.publicKey()} verifies in the JVM too. */
  public boolean verify(byte[] message, byte[] signature) {
    return client.call(h -> h.verify(key.keyId(), algorithm.wireName(), message, signature));
  }

  public Algorithm algorithm() {
    return algorithm;
  }
}
