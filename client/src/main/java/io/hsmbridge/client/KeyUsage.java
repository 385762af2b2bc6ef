package io.hsmbridge.client;

import java.util.Locale;

/** What a key may be used for (protocol.md, "Usage"); the server applies a per-family default when absent. */
public enum KeyUsage {
  ENCRYPT_DECRYPT,
  SIGN_VERIFY,
  WRAP_UNWRAP;

  /** Case-insensitive, accepting '-' for '_'; the error names the accepted values. */
  public static KeyUsage parse(String name) {
    String normal = name == null ? "" : name.trim().toUpperCase(Locale.ROOT).replace('-', '_');
    for (KeyUsage u : values()) {
      if (u.name().equals(normal)) {
        return u;
      }
    }
    throw new IllegalArgumentException("unknown key usage '" + name
        + "'; one of ENCRYPT_DECRYPT, SIGN_VERIFY, WRAP_UNWRAP");
  }
}
