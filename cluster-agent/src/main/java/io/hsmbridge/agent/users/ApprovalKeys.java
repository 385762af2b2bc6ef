package io.hsmbridge.agent.users;

import io.hsmbridge.pkcs11.HsmException;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.X509EncodedKeySpec;

/**
 * Users' registered approval keys (quorum token-sign and admin MFA): RSA public keys of at least
 * {@value #MIN_BITS} bits; signatures are SHA256withRSA (PKCS#1 v1.5), what {@code openssl dgst -sha256
 * -sign} and the CLI produce. Verified in the JVM: a public key is not a secret and needs no HSM.
 */
public final class ApprovalKeys {
  public static final int MIN_BITS = 2048;

  private ApprovalKeys() {}

  /** @throws HsmException INVALID_PARAMETER unless {@code spki} is an RSA public key of at least 2048 bits */
  public static PublicKey parse(byte[] spki) {
    try {
      PublicKey k = KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(spki));
      if (((RSAPublicKey) k).getModulus().bitLength() < MIN_BITS) {
        throw HsmException.badParam("an approval key must be RSA of at least " + MIN_BITS + " bits");
      }
      return k;
    } catch (GeneralSecurityException | ClassCastException e) {
      throw HsmException.badParam("spki is not a DER SubjectPublicKeyInfo of an RSA key");
    }
  }

  /** Whether {@code signature} is a valid SHA256withRSA signature of {@code data} under the key. */
  public static boolean verify(byte[] spki, byte[] data, byte[] signature) {
    try {
      Signature v = Signature.getInstance("SHA256withRSA");
      v.initVerify(parse(spki));
      v.update(data);
      return v.verify(signature);
    } catch (GeneralSecurityException | HsmException e) {
      return false;
    }
  }
}
