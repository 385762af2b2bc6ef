package io.hsmbridge.jce;

import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.io.ByteArrayOutputStream;
import java.security.InvalidKeyException;
import java.security.Key;
import java.security.ProviderException;

/** What the provider's engines share: checking the key they are given, buffering input, reporting failures. */
final class Engines {
  /** The most one request carries (the protocol's bound on a message or plaintext). */
  static final int MAX_INPUT = 64 * 1024;

  private Engines() {}

  /**
   * The cluster key handle {@code key} is, of {@code family} and allowed {@code usage}.
   *
   * @param what the operation, for the message ("sign", "encrypt", ...)
   * @throws InvalidKeyException naming what the engine needs and what would work
   */
  static HsmKey handle(Key key, KeySpec.Family family, KeyUsage usage, String what) throws InvalidKeyException {
    if (!(key instanceof HsmKey h)) {
      throw new InvalidKeyException("the " + HsmBridgeProvider.NAME + " provider can " + what + " only with keys of the"
          + " cluster (from its KeyStore, KeyGenerator or KeyPairGenerator), not with a "
          + (key == null ? "null key" : key.getClass().getName()) + ": use the JDK's providers for keys in memory");
    }
    if (h.spec().family() != family) {
      throw new InvalidKeyException("key " + h.keyId() + " is a " + h.spec() + " key; to " + what + " here the key must be "
          + family);
    }
    if (h.usage() != usage) {
      throw new InvalidKeyException("key " + h.keyId() + " was made for " + h.usage() + ", not " + usage
          + ": it cannot " + what);
    }
    return h;
  }

  /** Appends to an input buffer, refusing more than one request can carry. */
  static void append(ByteArrayOutputStream buffer, byte[] in, int offset, int length) {
    if (length <= 0) {
      return;
    }
    if ((long) buffer.size() + length > MAX_INPUT) {
      buffer.reset();
      throw new ProviderException("the cluster takes at most " + MAX_INPUT / 1024 + " KiB per operation; the input"
          + " was discarded");
    }
    buffer.write(in, offset, length);
  }

  /** A failure of the cluster (connection, no HSM, access) as the JCA's unchecked provider failure. */
  static ProviderException failure(String what, HsmBridgeException e) {
    return new ProviderException(what + " failed in the cluster: " + e.getMessage(), e);
  }
}
