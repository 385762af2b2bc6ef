package io.hsmbridge.jce;

import io.hsmbridge.client.HsmBridgeException;
import java.security.SecureRandomSpi;

/**
 * {@code SecureRandom} ("HsmBridgeRNG") whose bytes come from an HSM's generator, at most 4 KiB a request.
 * Seeding is ignored: a caller's seed cannot weaken the token's generator, nor can it be added to it.
 */
final class RandomEngine extends SecureRandomSpi {
  private static final long serialVersionUID = 1L;
  private static final int MAX_PER_REQUEST = 4096;
  private final transient HsmBridgeProvider provider;

  RandomEngine(HsmBridgeProvider provider) {
    this.provider = provider;
  }

  @Override
  protected void engineSetSeed(byte[] seed) {
    // The token's generator is seeded by the token; see the class comment.
  }

  @Override
  protected void engineNextBytes(byte[] bytes) {
    int done = 0;
    while (done < bytes.length) {
      int n = Math.min(MAX_PER_REQUEST, bytes.length - done);
      byte[] chunk;
      try {
        chunk = provider.client().call(h -> h.random(n));
      } catch (HsmBridgeException e) {
        throw Engines.failure("random bytes", e);
      }
      System.arraycopy(chunk, 0, bytes, done, n);
      done += n;
    }
  }

  @Override
  protected byte[] engineGenerateSeed(int numBytes) {
    byte[] seed = new byte[numBytes];
    engineNextBytes(seed);
    return seed;
  }
}
