package io.hsmbridge.client;

import java.util.Arrays;
import java.util.Objects;

/**
 * The result of {@code encrypt}: the ciphertext (for AES-GCM with the 16-byte tag appended) and the
 * IV the token chose, or null for RSA-OAEP. Arrays are copied in and out, so instances are immutable.
 */
public record Ciphertext(byte[] ciphertext, byte[] iv) {
  public Ciphertext {
    ciphertext = Objects.requireNonNull(ciphertext, "ciphertext").clone();
    iv = iv == null ? null : iv.clone();
  }

  @Override
  public byte[] ciphertext() {
    return ciphertext.clone();
  }

  @Override
  public byte[] iv() {
    return iv == null ? null : iv.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Ciphertext c && Arrays.equals(ciphertext, c.ciphertext) && Arrays.equals(iv, c.iv);
  }

  @Override
  public int hashCode() {
    return 31 * Arrays.hashCode(ciphertext) + Arrays.hashCode(iv);
  }

  @Override
  public String toString() {
    return "Ciphertext[" + ciphertext.length + " bytes, iv " + (iv == null ? "none" : iv.length + " bytes") + "]";
  }
}
