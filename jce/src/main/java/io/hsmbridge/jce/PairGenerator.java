package io.hsmbridge.jce;

import io.hsmbridge.protocol.KeySpec;
import java.math.BigInteger;
import java.security.InvalidAlgorithmParameterException;
import java.security.InvalidParameterException;
import java.security.KeyPair;
import java.security.KeyPairGeneratorSpi;
import java.security.SecureRandom;
import java.security.spec.AlgorithmParameterSpec;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.NamedParameterSpec;
import java.security.spec.RSAKeyGenParameterSpec;
import java.util.Locale;

/**
 * {@code KeyPairGenerator} for RSA (2048, 3072, 4096; exponent 65537), EC (P-256, P-384) and Ed25519 pairs
 * made inside an HSM and replicated to every HSM. The private key is an {@link HsmPrivateKey} handle; the
 * public key an ordinary JDK key. Label and request id come from {@link HsmKeyGenParameterSpec}.
 */
final class PairGenerator extends KeyPairGeneratorSpi {
  private final HsmBridgeProvider provider;
  private final String algorithm;
  private KeySpec spec;
  private String label;
  private String requestId;

  PairGenerator(HsmBridgeProvider provider, String algorithm) {
    this.provider = provider;
    this.algorithm = algorithm;
    this.spec = bySize(0);
  }

  @Override
  public void initialize(int keysize, SecureRandom random) {
    spec = bySize(keysize);
    label = null;
    requestId = null;
  }

  @Override
  public void initialize(AlgorithmParameterSpec params, SecureRandom random) throws InvalidAlgorithmParameterException {
    label = null;
    requestId = null;
    try {
      if (params instanceof HsmKeyGenParameterSpec s) {
        spec = bySize(s.size());
        label = s.label();
        requestId = s.requestId();
      } else if (params instanceof RSAKeyGenParameterSpec r && algorithm.equals("RSA")) {
        if (!RSAKeyGenParameterSpec.F4.equals(r.getPublicExponent()) && !BigInteger.ZERO.equals(r.getPublicExponent())) {
          throw new InvalidParameterException("the cluster's RSA keys have the public exponent 65537");
        }
        spec = bySize(r.getKeysize());
      } else if (params instanceof ECGenParameterSpec e && algorithm.equals("EC")) {
        spec = byCurve(e.getName());
      } else if (params instanceof NamedParameterSpec n && algorithm.equals("Ed25519")) {
        spec = byCurve(n.getName());
      } else {
        throw new InvalidParameterException("KeyPairGenerator " + algorithm + " of HsmBridge takes an"
            + " HsmKeyGenParameterSpec, a key size" + (algorithm.equals("RSA") ? " or RSAKeyGenParameterSpec"
            : algorithm.equals("EC") ? " or ECGenParameterSpec (secp256r1, secp384r1)" : ""));
      }
    } catch (InvalidParameterException e) {
      throw new InvalidAlgorithmParameterException(e.getMessage());
    }
  }

  private KeySpec bySize(int bits) {
    switch (algorithm) {
      case "RSA":
        switch (bits) {
          case 0:
          case 2048:
            return KeySpec.RSA_2048;
          case 3072:
            return KeySpec.RSA_3072;
          case 4096:
            return KeySpec.RSA_4096;
          default:
            throw new InvalidParameterException("RSA keys of the cluster are 2048, 3072 or 4096 bits, not " + bits);
        }
      case "EC":
        switch (bits) {
          case 0:
          case 256:
            return KeySpec.EC_P256;
          case 384:
            return KeySpec.EC_P384;
          default:
            throw new InvalidParameterException("EC keys of the cluster are on P-256 or P-384 (256, 384), not " + bits);
        }
      default:
        if (bits != 0 && bits != 255) {
          throw new InvalidParameterException("Ed25519 keys are 255 bits");
        }
        return KeySpec.ED25519;
    }
  }

  private KeySpec byCurve(String name) {
    switch (name.toLowerCase(Locale.ROOT)) {
      case "secp256r1":
      case "p-256":
      case "prime256v1":
        return KeySpec.EC_P256;
      case "secp384r1":
      case "p-384":
        return KeySpec.EC_P384;
      case "ed25519":
        return KeySpec.ED25519;
      default:
        throw new InvalidParameterException("the cluster's curves are secp256r1 (P-256), secp384r1 (P-384) and"
            + " Ed25519, not " + name);
    }
  }

  @Override
  public KeyPair generateKeyPair() {
    String l = label == null ? Creation.defaultLabel() : label;
    HsmPrivateKey key = (HsmPrivateKey) Creation.create(provider, spec, l, requestId);
    return new KeyPair(key.publicKey(), key);
  }
}
