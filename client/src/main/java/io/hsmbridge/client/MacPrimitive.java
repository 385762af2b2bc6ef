package io.hsmbridge.client;

import io.hsmbridge.protocol.Algorithm;
import java.util.concurrent.CompletionStage;

/** HMAC-SHA256 with one key, computed and checked inside an HSM. */
public final class MacPrimitive {
  private final HsmClient client;
  private final KeyHandle key;

  MacPrimitive(HsmClient client, KeyHandle key) {
    this.client = client;
    this.key = key;
  }

  public byte[] compute(byte[] message) {
    return client.call(h -> h.mac(key.keyId(), Algorithm.HMAC_SHA256.wireName(), message));
  }

  public CompletionStage<byte[]> computeAsync(byte[] message) {
    return client.callAsync(h -> h.mac(key.keyId(), Algorithm.HMAC_SHA256.wireName(), message));
  }

  /** Whether {@code mac} is the message's HMAC under this key (compared in the HSM). */
  public boolean verify(byte[] message, byte[] mac) {
    return client.call(h -> h.macVerify(key.keyId(), Algorithm.HMAC_SHA256.wireName(), message, mac));
  }
}
