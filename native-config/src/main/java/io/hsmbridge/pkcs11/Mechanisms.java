package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.Algorithm;
import org.xipki.pkcs11.wrapper.Mechanism;
import org.xipki.pkcs11.wrapper.params.ByteArrayParams;
import org.xipki.pkcs11.wrapper.params.GCM_PARAMS;
import org.xipki.pkcs11.wrapper.params.RSA_PKCS_OAEP_PARAMS;
import org.xipki.pkcs11.wrapper.params.RSA_PKCS_PSS_PARAMS;

/** Maps protocol algorithms to PKCS#11 mechanisms, in one place. */
final class Mechanisms {
  static final int GCM_IV_BYTES = 12;
  static final int GCM_TAG_BITS = 128;
  static final int CBC_IV_BYTES = 16;

  private Mechanisms() {}

  /** The CKM code for a name like CKM_AES_GCM, or null when the wrapper does not know it. */
  static Long codeOf(String ckmName) {
    return ckmNameToCode(ckmName);
  }

  static Mechanism gcm(byte[] iv, byte[] aad) {
    return new Mechanism(CKM_AES_GCM, new GCM_PARAMS(iv, aad == null ? new byte[0] : aad, GCM_TAG_BITS));
  }

  static Mechanism cbcPad(byte[] iv) {
    return new Mechanism(CKM_AES_CBC_PAD, new ByteArrayParams(iv));
  }

  static Mechanism oaep(String hash) {
    long[] h = hashAndMgf(hash);
    return new Mechanism(CKM_RSA_PKCS_OAEP, new RSA_PKCS_OAEP_PARAMS(h[0], h[1]));
  }

  static Mechanism aesKeyWrapPad() {
    return new Mechanism(CKM_AES_KEY_WRAP_PAD);
  }

  /** The mechanism for a signature algorithm; ECDSA signs a digest computed beforehand. */
  static Mechanism signature(Algorithm alg) {
    switch (alg) {
      case RSA_PKCS1_SHA256: return new Mechanism(CKM_SHA256_RSA_PKCS);
      case RSA_PKCS1_SHA384: return new Mechanism(CKM_SHA384_RSA_PKCS);
      case RSA_PKCS1_SHA512: return new Mechanism(CKM_SHA512_RSA_PKCS);
      case RSA_PSS_SHA256: return pss(CKM_SHA256_RSA_PKCS_PSS, alg.hash(), 32);
      case RSA_PSS_SHA384: return pss(CKM_SHA384_RSA_PKCS_PSS, alg.hash(), 48);
      case RSA_PSS_SHA512: return pss(CKM_SHA512_RSA_PKCS_PSS, alg.hash(), 64);
      case ECDSA_SHA256:
      case ECDSA_SHA384:
      case ECDSA_SHA512: return new Mechanism(CKM_ECDSA);
      case ED25519: return new Mechanism(CKM_EDDSA);
      default: throw HsmException.badParam(alg.wireName() + " is not a signature algorithm");
    }
  }

  static Mechanism hmac(Algorithm alg) {
    switch (alg) {
      case HMAC_SHA256: return new Mechanism(CKM_SHA256_HMAC);
      default: throw HsmException.badParam(alg.wireName() + " is not a MAC algorithm");
    }
  }

  static Mechanism digest(Algorithm alg) {
    switch (alg) {
      case SHA256: return new Mechanism(CKM_SHA256);
      case SHA384: return new Mechanism(CKM_SHA384);
      case SHA512: return new Mechanism(CKM_SHA512);
      default: throw HsmException.badParam(alg.wireName() + " is not a digest algorithm");
    }
  }

  private static Mechanism pss(long ckm, String hash, int saltLength) {
    long[] h = hashAndMgf(hash);
    return new Mechanism(ckm, new RSA_PKCS_PSS_PARAMS(h[0], h[1], saltLength));
  }

  /** {CKM hash, CKG MGF1} for a hash name. */
  private static long[] hashAndMgf(String hash) {
    switch (hash) {
      case "SHA1": return new long[] {CKM_SHA_1, CKG_MGF1_SHA1};
      case "SHA256": return new long[] {CKM_SHA256, CKG_MGF1_SHA256};
      case "SHA384": return new long[] {CKM_SHA384, CKG_MGF1_SHA384};
      case "SHA512": return new long[] {CKM_SHA512, CKG_MGF1_SHA512};
      default: throw HsmException.badParam("unsupported hash " + hash);
    }
  }
}
