package io.hsmbridge.client;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.spec.X509EncodedKeySpec;
import java.util.Locale;
import java.util.Objects;

/**
 * A key in the cluster, by id: its description and the primitives it can do. The key's bytes never leave
 * the HSMs; a primitive is a small object that sends one request per call.
 */
public final class KeyHandle {
  private final HsmClient client;
  private final KeyInfo info;

  KeyHandle(HsmClient client, KeyInfo info) {
    this.client = client;
    this.info = Objects.requireNonNull(info, "info");
  }

  public String keyId() {
    return info.keyId();
  }

  public String label() {
    return info.label();
  }

  public KeySpec spec() {
    return KeySpec.parse(info.spec());
  }

  /** The usage the key was made with. */
  public KeyUsage usage() {
    return info.usage() == null ? KeyUsage.defaultFor(spec()) : KeyUsage.valueOf(info.usage());
  }

  /** The description the cluster gave (owner, shares, policy flags). */
  public KeyInfo info() {
    return info;
  }

  /**
   * Signs with {@code algorithm} (RSA_PKCS1_*, RSA_PSS_*, ECDSA_*: DER, ED25519).
   *
   * @throws IllegalArgumentException when the algorithm is no signature of this key's family, or the key is not
   *     a signing key
   */
  public Signer signer(Algorithm algorithm) {
    require(algorithm, Algorithm.Kind.SIGNATURE);
    return new Signer(client, this, algorithm);
  }

  /** AES-GCM with this AES key; the HSM chooses every IV. */
  public Aead aead() {
    require(Algorithm.AES_GCM, Algorithm.Kind.CIPHER);
    return new Aead(client, this);
  }

  /** HMAC-SHA256 with this HMAC key. */
  public MacPrimitive mac() {
    require(Algorithm.HMAC_SHA256, Algorithm.Kind.MAC);
    return new MacPrimitive(client, this);
  }

  /** The public key of a key pair (a JDK key: verify and encrypt in the JVM with it). */
  public PublicKey publicKey() {
    if (!spec().family().isAsymmetric()) {
      throw new IllegalArgumentException(keyId() + " is a " + spec() + " key: it has no public key");
    }
    byte[] spki = client.call(h -> h.publicKey(keyId()));
    String alg = switch (spec().family()) {
      case RSA -> "RSA";
      case EC -> "EC";
      default -> "Ed25519";
    };
    try {
      return KeyFactory.getInstance(alg).generatePublic(new X509EncodedKeySpec(spki));
    } catch (GeneralSecurityException e) {
      throw new HsmBridgeException(io.hsmbridge.protocol.ErrorCode.INTERNAL, "the public key of " + keyId()
          + " does not decode: " + e.getMessage(), e);
    }
  }

  /** Deletes the key on every HSM. */
  public void delete() {
    client.call(h -> {
      h.delete(keyId());
      return null;
    });
  }

  private void require(Algorithm algorithm, Algorithm.Kind kind) {
    Objects.requireNonNull(algorithm, "algorithm");
    if (algorithm.kind() != kind || algorithm.family() != spec().family()) {
      throw new IllegalArgumentException(algorithm + " is no " + kind.name().toLowerCase(Locale.ROOT) + " of a "
          + spec() + " key; " + kind.name().toLowerCase(Locale.ROOT) + "s: " + Algorithm.namesOf(kind));
    }
    if (usage() != algorithm.usage()) {
      throw new IllegalArgumentException(keyId() + " was made for " + usage() + ", not " + algorithm.usage());
    }
  }

  @Override
  public String toString() {
    return "KeyHandle[" + keyId() + " '" + label() + "' " + info.spec() + "]";
  }
}
