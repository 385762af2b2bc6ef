package io.hsmbridge.pkcs11;

import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;

/**
 * A user key as it travels between HSMs of a cluster: wrapped under the cluster key, with the metadata
 * the wrapped blob does not carry (PKCS#11 wrapping keeps only key material). Holds no plaintext key.
 *
 * @param keyId the key's id (CKA_ID, 32 hex chars), the same on every HSM
 * @param label its label
 * @param spec its spec
 * @param usage its usage
 * @param wrapped the private/secret key wrapped with CKM_AES_KEY_WRAP_PAD under the cluster key
 * @param ecPoint for EC and Ed25519 keys, the public point (CKA_EC_POINT), else null
 */
public record ReplicaBlob(String keyId, String label, KeySpec spec, KeyUsage usage, byte[] wrapped, byte[] ecPoint) {
  @Override
  public String toString() {
    return "ReplicaBlob[" + keyId + ", " + spec + ", " + wrapped.length + " wrapped bytes]";
  }
}
