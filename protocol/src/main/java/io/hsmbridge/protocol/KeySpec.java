package io.hsmbridge.protocol;

import java.util.Locale;

/**
 * Named key parameter sets. Callers pick one of these, never raw sizes or curves: every spec is a
 * parameter set we consider safe, and the agent applies secure defaults (explicit usage flags,
 * sensitive, wrap-with-trusted) to each.
 */
public enum KeySpec {
  AES_128(Family.AES, 128),
  AES_256(Family.AES, 256),
  HMAC_SHA256(Family.HMAC, 256),
  RSA_2048(Family.RSA, 2048),
  RSA_3072(Family.RSA, 3072),
  RSA_4096(Family.RSA, 4096),
  EC_P256(Family.EC, 256),
  EC_P384(Family.EC, 384),
  ED25519(Family.EDWARDS, 255);

  /** The algorithm family, which decides which operations a key can do. */
  public enum Family {
    AES,
    HMAC,
    RSA,
    EC,
    EDWARDS;

    public boolean isAsymmetric() {
      return this == RSA || this == EC || this == EDWARDS;
    }
  }

  private final Family family;
  private final int bits;

  KeySpec(Family family, int bits) {
    this.family = family;
    this.bits = bits;
  }

  public Family family() {
    return family;
  }

  /** Key size in bits (modulus for RSA, field size for EC). */
  public int bits() {
    return bits;
  }

  /**
   * Parses a spec name case-insensitively, accepting '-' for '_' ("aes-256").
   *
   * @throws IllegalArgumentException naming the accepted values
   */
  public static KeySpec parse(String name) {
    if (name == null || name.isBlank()) {
      throw new IllegalArgumentException("key spec is required; one of " + names());
    }
    String normal = name.trim().toUpperCase(Locale.ROOT).replace('-', '_');
    for (KeySpec s : values()) {
      if (s.name().equals(normal)) {
        return s;
      }
    }
    throw new IllegalArgumentException("unknown key spec '" + name + "'; one of " + names());
  }

  public static String names() {
    StringBuilder b = new StringBuilder();
    for (KeySpec s : values()) {
      if (b.length() > 0) {
        b.append(", ");
      }
      b.append(s.name());
    }
    return b.toString();
  }
}
