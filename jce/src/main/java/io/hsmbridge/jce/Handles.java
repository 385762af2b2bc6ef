package io.hsmbridge.jce;

import io.hsmbridge.client.KeyInfo;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.interfaces.ECKey;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.ECParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Objects;
import javax.crypto.SecretKey;

/** The key handles the provider makes from the cluster's key descriptions. */
final class Handles {
  private Handles() {}

  /** A handle of a secret key (AES, HMAC). */
  static HsmKey secret(KeyInfo info) {
    return new Secret(info.keyId(), info.label(), KeySpec.parse(info.spec()), usage(info));
  }

  /**
   * A handle of a key pair's private half.
   *
   * @param spki the pair's public key, DER SubjectPublicKeyInfo (from {@code key.publicKey})
   */
  static HsmPrivateKey privateKey(KeyInfo info, byte[] spki) throws GeneralSecurityException {
    KeySpec spec = KeySpec.parse(info.spec());
    KeyUsage usage = usage(info);
    switch (spec.family()) {
      case RSA:
        return new RsaPrivate(info.keyId(), info.label(), spec, usage,
            (RSAPublicKey) KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(spki)));
      case EC:
        return new EcPrivate(info.keyId(), info.label(), spec, usage,
            (ECPublicKey) KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(spki)));
      case EDWARDS:
        return new EdPrivate(info.keyId(), info.label(), spec, usage,
            KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(spki)));
      default:
        throw new IllegalArgumentException(spec + " is not a key pair");
    }
  }

  /** The handle for a described key: private handles for pairs (fetching the public key), else secret ones. */
  static HsmKey of(KeyInfo info, java.util.function.Supplier<byte[]> spki) throws GeneralSecurityException {
    return KeySpec.parse(info.spec()).family().isAsymmetric() ? privateKey(info, spki.get()) : secret(info);
  }

  private static KeyUsage usage(KeyInfo info) {
    return info.usage() == null ? KeyUsage.defaultFor(KeySpec.parse(info.spec())) : KeyUsage.valueOf(info.usage());
  }

  /** The JCA name of a secret key's algorithm. */
  static String secretAlgorithm(KeySpec spec) {
    return spec.family() == KeySpec.Family.HMAC ? "HmacSHA256" : "AES";
  }

  /** What every handle shares: the key's name and parameters, equality by key id. */
  private abstract static class Handle implements HsmKey {
    private static final long serialVersionUID = 1L;
    private final String keyId;
    private final String label;
    private final KeySpec spec;
    private final KeyUsage usage;

    Handle(String keyId, String label, KeySpec spec, KeyUsage usage) {
      this.keyId = Objects.requireNonNull(keyId, "keyId");
      this.label = label;
      this.spec = Objects.requireNonNull(spec, "spec");
      this.usage = Objects.requireNonNull(usage, "usage");
    }

    @Override
    public String keyId() {
      return keyId;
    }

    @Override
    public String label() {
      return label;
    }

    @Override
    public KeySpec spec() {
      return spec;
    }

    @Override
    public KeyUsage usage() {
      return usage;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Handle h && h.getClass() == getClass() && h.keyId.equals(keyId);
    }

    @Override
    public int hashCode() {
      return keyId.hashCode();
    }

    @Override
    public String toString() {
      return "HsmBridge " + getAlgorithm() + " key " + keyId + " '" + label + "' (" + spec + ", " + usage + ")";
    }
  }

  private static final class Secret extends Handle implements SecretKey {
    private static final long serialVersionUID = 1L;

    Secret(String keyId, String label, KeySpec spec, KeyUsage usage) {
      super(keyId, label, spec, usage);
    }

    @Override
    public String getAlgorithm() {
      return secretAlgorithm(spec());
    }
  }

  private abstract static class Private extends Handle implements HsmPrivateKey {
    private static final long serialVersionUID = 1L;
    private final PublicKey publicKey;

    Private(String keyId, String label, KeySpec spec, KeyUsage usage, PublicKey publicKey) {
      super(keyId, label, spec, usage);
      this.publicKey = Objects.requireNonNull(publicKey, "publicKey");
    }

    @Override
    public PublicKey publicKey() {
      return publicKey;
    }

    @Override
    public String getAlgorithm() {
      return publicKey.getAlgorithm();
    }
  }

  private static final class RsaPrivate extends Private implements RSAKey {
    private static final long serialVersionUID = 1L;

    RsaPrivate(String keyId, String label, KeySpec spec, KeyUsage usage, RSAPublicKey publicKey) {
      super(keyId, label, spec, usage, publicKey);
    }

    /** The modulus is public: JSSE reads the key's size from it. */
    @Override
    public BigInteger getModulus() {
      return ((RSAPublicKey) publicKey()).getModulus();
    }
  }

  private static final class EcPrivate extends Private implements ECKey {
    private static final long serialVersionUID = 1L;

    EcPrivate(String keyId, String label, KeySpec spec, KeyUsage usage, ECPublicKey publicKey) {
      super(keyId, label, spec, usage, publicKey);
    }

    /** The curve is public: JSSE picks the signature scheme from it. */
    @Override
    public ECParameterSpec getParams() {
      return ((ECPublicKey) publicKey()).getParams();
    }
  }

  private static final class EdPrivate extends Private {
    private static final long serialVersionUID = 1L;

    EdPrivate(String keyId, String label, KeySpec spec, KeyUsage usage, PublicKey publicKey) {
      super(keyId, label, spec, usage, publicKey);
    }
  }
}
