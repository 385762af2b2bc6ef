package io.hsmbridge.pkcs11;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;

/**
 * A cached key: its public description and the object handles on this token. Handles are valid for
 * the whole process as long as the User stays logged in, which the session pool ensures.
 *
 * @param info public description
 * @param handle the secret or private key object
 * @param publicHandle the public key object, or -1 for secret keys
 */
record KeyEntry(KeyInfo info, long handle, long publicHandle) {
  static final long NONE = -1;

  KeySpec spec() {
    return info.spec();
  }

  KeyEntry withLabel(String label) {
    KeyInfo i = info;
    return new KeyEntry(new KeyInfo(i.keyId(), label, i.spec(), i.usage(), i.exportable(), i.extractable(), i.sensitive()),
        handle, publicHandle);
  }

  /** Checks that this key can run {@code alg}; WRONG_KEY_TYPE otherwise, naming both. */
  void require(Algorithm alg) {
    if (alg.family() != spec().family()) {
      throw HsmException.wrongKey(alg.wireName() + " needs a " + alg.family() + " key; key " + info.keyId()
          + " is " + spec());
    }
    if (alg.usage() != info.usage()) {
      throw HsmException.wrongKey(alg.wireName() + " needs a key with usage " + alg.usage() + "; key "
          + info.keyId() + " has usage " + info.usage());
    }
  }

  long publicOrFail() {
    if (publicHandle == NONE) {
      throw HsmException.wrongKey("key " + info.keyId() + " has no public key");
    }
    return publicHandle;
  }

  /** The one usage the flags express, or null when none or several are set (not an hsmbridge key). */
  static KeyUsage usageOf(boolean encrypt, boolean sign, boolean wrap) {
    int set = (encrypt ? 1 : 0) + (sign ? 1 : 0) + (wrap ? 1 : 0);
    if (set != 1) {
      return null;
    }
    return wrap ? KeyUsage.WRAP_UNWRAP : encrypt ? KeyUsage.ENCRYPT_DECRYPT : KeyUsage.SIGN_VERIFY;
  }
}
