package io.hsmbridge.pkcs11;

import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import java.io.IOException;
import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.spec.RSAPublicKeySpec;
import org.bouncycastle.asn1.ASN1OctetString;

import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.asn1.x9.X9ObjectIdentifiers;

/** Encodes public keys read from the token as X.509 SubjectPublicKeyInfo (what KeyFactory parses). */
final class PublicKeys {
  private PublicKeys() {}

  static byte[] rsa(BigInteger modulus, BigInteger publicExponent) {
    try {
      return KeyFactory.getInstance("RSA").generatePublic(new RSAPublicKeySpec(modulus, publicExponent)).getEncoded();
    } catch (GeneralSecurityException e) {
      throw new HsmException(ErrorCode.INTERNAL, "cannot encode RSA public key", null, e.toString(), e);
    }
  }

  /** {@code ecPoint} is CKA_EC_POINT: a DER OCTET STRING or, on some tokens, the raw point. */
  static byte[] ec(KeySpec spec, byte[] ecPoint) {
    byte[] point = rawPoint(spec, ecPoint);
    try {
      AlgorithmIdentifier alg = spec == KeySpec.ED25519
          ? new AlgorithmIdentifier(Curves.ID_ED25519)
          : new AlgorithmIdentifier(X9ObjectIdentifiers.id_ecPublicKey, Curves.oid(spec));
      return new SubjectPublicKeyInfo(alg, point).getEncoded();
    } catch (IOException e) {
      throw new HsmException(ErrorCode.INTERNAL, "cannot encode EC public key", null, e.toString(), e);
    }
  }

  private static byte[] rawPoint(KeySpec spec, byte[] ecPoint) {
    int rawLength = spec == KeySpec.ED25519 ? 32 : 2 * Curves.fieldBytes(spec) + 1;
    if (ecPoint.length == rawLength) {
      return ecPoint;
    }
    try {
      byte[] inner = ASN1OctetString.getInstance(ecPoint).getOctets();
      if (inner.length == rawLength) {
        return inner;
      }
    } catch (IllegalArgumentException e) {
      // not DER: reported below
    }
    throw new HsmException(ErrorCode.INTERNAL, "token returned an unexpected EC point for " + spec);
  }
}
