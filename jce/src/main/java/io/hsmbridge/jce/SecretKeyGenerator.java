package io.hsmbridge.jce;

import io.hsmbridge.protocol.KeySpec;
import java.security.InvalidAlgorithmParameterException;
import java.security.InvalidParameterException;
import java.security.SecureRandom;
import java.security.spec.AlgorithmParameterSpec;
import javax.crypto.KeyGeneratorSpi;
import javax.crypto.SecretKey;

/**
 * {@code KeyGenerator} for AES (128, 256; default 256) and HmacSHA256 keys made inside an HSM and
 * replicated to every HSM of the cluster. The label comes from {@link HsmKeyGenParameterSpec}, else a
 * random {@code jce-…} one. The SecureRandom argument is not used: the HSM's generator makes the key.
 */
final class SecretKeyGenerator extends KeyGeneratorSpi {
  private final HsmBridgeProvider provider;
  private final String algorithm;
  private int size;
  private String label;
  private String requestId;

  SecretKeyGenerator(HsmBridgeProvider provider, String algorithm) {
    this.provider = provider;
    this.algorithm = algorithm;
  }

  @Override
  protected void engineInit(SecureRandom random) {
    size = 0;
    label = null;
    requestId = null;
  }

  @Override
  protected void engineInit(AlgorithmParameterSpec params, SecureRandom random) throws InvalidAlgorithmParameterException {
    if (!(params instanceof HsmKeyGenParameterSpec s)) {
      throw new InvalidAlgorithmParameterException("KeyGenerator " + algorithm + " of HsmBridge takes an"
          + " HsmKeyGenParameterSpec (label, size, requestId) or a key size");
    }
    try {
      spec(s.size());
    } catch (InvalidParameterException e) {
      throw new InvalidAlgorithmParameterException(e.getMessage());
    }
    size = s.size();
    label = s.label();
    requestId = s.requestId();
  }

  @Override
  protected void engineInit(int keysize, SecureRandom random) {
    spec(keysize);
    size = keysize;
    label = null;
    requestId = null;
  }

  private KeySpec spec(int bits) {
    if (algorithm.equals("HmacSHA256")) {
      if (bits != 0 && bits != 256) {
        throw new InvalidParameterException("the cluster's HmacSHA256 keys are 256 bits");
      }
      return KeySpec.HMAC_SHA256;
    }
    switch (bits) {
      case 0:
      case 256:
        return KeySpec.AES_256;
      case 128:
        return KeySpec.AES_128;
      default:
        throw new InvalidParameterException("AES keys of the cluster are 128 or 256 bits, not " + bits);
    }
  }

  @Override
  protected SecretKey engineGenerateKey() {
    String l = label == null ? Creation.defaultLabel() : label;
    return (SecretKey) Creation.create(provider, spec(size), l, requestId);
  }
}
