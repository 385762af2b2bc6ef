package io.hsmbridge.pkcs11;

import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;

/**
 * What clients may know about a key: no handle, no key material.
 *
 * @param keyId 32 lowercase hex chars, the token's CKA_ID
 * @param label the user's label
 * @param spec the named parameter set
 * @param usage what the key may do
 * @param exportable whether {@code key.wrap} may export it (not wrap-with-trusted, extractable)
 * @param extractable CKA_EXTRACTABLE (true: trusted keys may wrap it for replication and backup)
 * @param sensitive CKA_SENSITIVE
 */
public record KeyInfo(String keyId, String label, KeySpec spec, KeyUsage usage, boolean exportable,
    boolean extractable, boolean sensitive) {}
