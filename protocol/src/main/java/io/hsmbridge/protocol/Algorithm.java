package io.hsmbridge.protocol;

import java.util.Locale;

/**
 * Every algorithm name the protocol accepts, with the operation kind and key family it needs.
 * Validation (bridge) and mechanism selection (agent) both start from this one table.
 */
public enum Algorithm {
  AES_GCM(Kind.CIPHER, KeySpec.Family.AES, KeyUsage.ENCRYPT_DECRYPT, null),
  AES_CBC_PAD(Kind.CIPHER, KeySpec.Family.AES, KeyUsage.ENCRYPT_DECRYPT, null),
  RSA_OAEP(Kind.CIPHER, KeySpec.Family.RSA, KeyUsage.ENCRYPT_DECRYPT, "SHA1"),

  RSA_PKCS1_SHA256(Kind.SIGNATURE, KeySpec.Family.RSA, KeyUsage.SIGN_VERIFY, "SHA256"),
  RSA_PKCS1_SHA384(Kind.SIGNATURE, KeySpec.Family.RSA, KeyUsage.SIGN_VERIFY, "SHA384"),
  RSA_PKCS1_SHA512(Kind.SIGNATURE, KeySpec.Family.RSA, KeyUsage.SIGN_VERIFY, "SHA512"),
  RSA_PSS_SHA256(Kind.SIGNATURE, KeySpec.Family.RSA, KeyUsage.SIGN_VERIFY, "SHA256"),
  RSA_PSS_SHA384(Kind.SIGNATURE, KeySpec.Family.RSA, KeyUsage.SIGN_VERIFY, "SHA384"),
  RSA_PSS_SHA512(Kind.SIGNATURE, KeySpec.Family.RSA, KeyUsage.SIGN_VERIFY, "SHA512"),
  ECDSA_SHA256(Kind.SIGNATURE, KeySpec.Family.EC, KeyUsage.SIGN_VERIFY, "SHA256"),
  ECDSA_SHA384(Kind.SIGNATURE, KeySpec.Family.EC, KeyUsage.SIGN_VERIFY, "SHA384"),
  ECDSA_SHA512(Kind.SIGNATURE, KeySpec.Family.EC, KeyUsage.SIGN_VERIFY, "SHA512"),
  ED25519(Kind.SIGNATURE, KeySpec.Family.EDWARDS, KeyUsage.SIGN_VERIFY, null),

  // One MAC per HMAC key spec: tokens refuse HMAC-SHA384/512 with a 256-bit key (CKR_KEY_SIZE_RANGE).
  HMAC_SHA256(Kind.MAC, KeySpec.Family.HMAC, KeyUsage.SIGN_VERIFY, "SHA256"),

  SHA256(Kind.DIGEST, null, null, "SHA256"),
  SHA384(Kind.DIGEST, null, null, "SHA384"),
  SHA512(Kind.DIGEST, null, null, "SHA512"),

  AES_KEY_WRAP_PAD(Kind.KEY_WRAP, KeySpec.Family.AES, KeyUsage.WRAP_UNWRAP, null),
  RSA_OAEP_WRAP(Kind.KEY_WRAP, KeySpec.Family.RSA, KeyUsage.WRAP_UNWRAP, "SHA1");

  /** What an algorithm does. */
  public enum Kind {
    CIPHER,
    SIGNATURE,
    MAC,
    DIGEST,
    KEY_WRAP
  }

  private final Kind kind;
  private final KeySpec.Family family;
  private final KeyUsage usage;
  private final String hash;

  Algorithm(Kind kind, KeySpec.Family family, KeyUsage usage, String hash) {
    this.kind = kind;
    this.family = family;
    this.usage = usage;
    this.hash = hash;
  }

  public Kind kind() {
    return kind;
  }

  /** The key family the algorithm needs, or null when it needs no key (digests). */
  public KeySpec.Family family() {
    return family;
  }

  /** The usage the key must have, or null when it needs no key. */
  public KeyUsage usage() {
    return usage;
  }

  /** The hash name (SHA1/SHA256/SHA384/SHA512) the algorithm uses, or null. */
  public String hash() {
    return hash;
  }

  /**
   * The wire name. For key wrapping with RSA the wire name is {@code RSA_OAEP} as for encryption;
   * use {@link #parse(String, Kind)} to get the right constant.
   */
  public String wireName() {
    return this == RSA_OAEP_WRAP ? "RSA_OAEP" : name();
  }

  /**
   * Parses an algorithm of the given kind.
   *
   * @throws IllegalArgumentException naming the accepted algorithms of that kind
   */
  public static Algorithm parse(String name, Kind kind) {
    if (name != null) {
      // "aes-gcm" -> AES_GCM; "SHA-512" -> SHA512 (the usual spelling of hash names)
      String upper = name.trim().toUpperCase(Locale.ROOT);
      String underscored = upper.replace('-', '_');
      String joined = upper.replace("-", "");
      for (Algorithm a : values()) {
        if (a.kind == kind && (a.wireName().equals(underscored) || a.wireName().equals(joined))) {
          return a;
        }
      }
    }
    throw new IllegalArgumentException(
        (name == null ? "alg is required" : "unknown " + kind.name().toLowerCase(Locale.ROOT) + " alg '" + name + "'")
            + "; one of " + namesOf(kind));
  }

  public static String namesOf(Kind kind) {
    StringBuilder b = new StringBuilder();
    for (Algorithm a : values()) {
      if (a.kind == kind) {
        b.append(b.length() == 0 ? "" : ", ").append(a.wireName());
      }
    }
    return b.toString();
  }
}
