package io.hsmbridge.protocol;

import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/**
 * What a key may be used for. Every key gets exactly one usage, set explicitly at creation: tokens
 * otherwise default to "everything allowed" (see docs/protocol.md).
 */
public enum KeyUsage {
  ENCRYPT_DECRYPT,
  SIGN_VERIFY,
  WRAP_UNWRAP;

  /** The usages a spec may have; the first is its default. */
  public static Set<KeyUsage> allowedFor(KeySpec spec) {
    switch (spec.family()) {
      case AES:
        return EnumSet.of(ENCRYPT_DECRYPT, WRAP_UNWRAP);
      case RSA:
        return EnumSet.of(SIGN_VERIFY, ENCRYPT_DECRYPT, WRAP_UNWRAP);
      default:
        return EnumSet.of(SIGN_VERIFY);
    }
  }

  public static KeyUsage defaultFor(KeySpec spec) {
    return spec.family() == KeySpec.Family.AES ? ENCRYPT_DECRYPT : SIGN_VERIFY;
  }

  /**
   * Parses a usage name (case-insensitive, '-' for '_'), or returns the spec's default for null.
   *
   * @throws IllegalArgumentException when unknown or not allowed for the spec
   */
  public static KeyUsage parseFor(KeySpec spec, String name) {
    if (name == null || name.isBlank()) {
      return defaultFor(spec);
    }
    String normal = name.trim().toUpperCase(Locale.ROOT).replace('-', '_');
    for (KeyUsage u : values()) {
      if (u.name().equals(normal)) {
        if (!allowedFor(spec).contains(u)) {
          throw new IllegalArgumentException(
              "usage " + u + " is not allowed for " + spec + "; allowed: " + allowedFor(spec));
        }
        return u;
      }
    }
    throw new IllegalArgumentException("unknown usage '" + name + "'; allowed for " + spec + ": " + allowedFor(spec));
  }
}
