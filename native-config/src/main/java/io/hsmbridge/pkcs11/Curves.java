package io.hsmbridge.pkcs11;

import io.hsmbridge.protocol.KeySpec;
import java.io.IOException;
import java.util.Arrays;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;

import org.bouncycastle.asn1.sec.SECObjectIdentifiers;

/** Curve identifiers for the EC and Edwards key specs, as CKA_EC_PARAMS (DER OIDs). */
final class Curves {
  /** RFC 8410 id-Ed25519. */
  static final ASN1ObjectIdentifier ID_ED25519 = new ASN1ObjectIdentifier("1.3.101.112");

  private Curves() {}

  static ASN1ObjectIdentifier oid(KeySpec spec) {
    switch (spec) {
      case EC_P256: return SECObjectIdentifiers.secp256r1;
      case EC_P384: return SECObjectIdentifiers.secp384r1;
      case ED25519: return ID_ED25519;
      default: throw new IllegalArgumentException(spec + " is not an elliptic-curve spec");
    }
  }

  static byte[] ecParams(KeySpec spec) {
    try {
      return oid(spec).getEncoded();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The spec for CKA_EC_PARAMS, or null when the curve is not one of ours. */
  static KeySpec specOf(byte[] ecParams) {
    for (KeySpec s : new KeySpec[] {KeySpec.EC_P256, KeySpec.EC_P384, KeySpec.ED25519}) {
      if (Arrays.equals(ecParams(s), ecParams)) {
        return s;
      }
    }
    return null;
  }

  /** Field size in bytes: the length of r and s in a raw ECDSA signature. */
  static int fieldBytes(KeySpec spec) {
    return (spec.bits() + 7) / 8;
  }
}
