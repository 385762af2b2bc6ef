package io.hsmbridge.jce;

import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.security.Key;

/**
 * A key that lives in the cluster: what the provider's KeyStore, KeyGenerator and KeyPairGenerator hand
 * out. It names the key (its id and label); it never holds key bytes, so {@link #getEncoded()} is null
 * and {@link #getFormat()} is null. Serialising one gives the name, which is only of use to a user the
 * cluster lets use the key.
 */
public interface HsmKey extends Key {
  /** The cluster's id of the key: 32 lowercase hex characters. */
  String keyId();

  /** The key's label (the KeyStore alias). */
  String label();

  /** The key's parameter set, e.g. {@code AES_256}, {@code RSA_2048}, {@code EC_P256}. */
  KeySpec spec();

  /** What the key may do: {@code SIGN_VERIFY}, {@code ENCRYPT_DECRYPT} or {@code WRAP_UNWRAP}. */
  KeyUsage usage();

  /** Always null: the key's bytes never leave the HSMs. */
  @Override
  default byte[] getEncoded() {
    return null;
  }

  /** Always null: there is no encoding (see {@link #getEncoded()}). */
  @Override
  default String getFormat() {
    return null;
  }
}
