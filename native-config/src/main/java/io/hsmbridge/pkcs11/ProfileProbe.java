package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.ErrorCode;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.Token;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * Checks at start-up that the live token behaves as its vendor profile says, using session objects
 * only (nothing is left on the token). A contradiction fails start-up with TOKEN_PROFILE_MISMATCH and
 * a message saying what differs: running with wrong assumptions could leak keys (wrap-with-trusted) or
 * break replication later.
 */
final class ProfileProbe {
  private ProfileProbe() {}

  static void check(Token token, SessionPool pool, VendorProfile profile) {
    List<String> problems = new ArrayList<>();
    Set<Long> mechanisms = new HashSet<>();
    for (long m : token.getMechanismList()) {
      mechanisms.add(m);
    }
    for (String name : profile.requiredMechanisms()) {
      if (!mechanisms.contains(Mechanisms.codeOf(name))) {
        problems.add("token lacks " + name);
      }
    }
    if (problems.isEmpty()) {
      pool.call("probing token behaviour", s -> {
        checkWrapWithTrusted(s, profile, problems);
        checkEcdsaFormat(s, profile, problems);
        checkOaepHashes(s, profile, problems);
        return null;
      });
    }
    if (!problems.isEmpty()) {
      throw new HsmException(ErrorCode.TOKEN_PROFILE_MISMATCH,
          "token contradicts vendor profile '" + profile.name() + "': " + String.join("; ", problems));
    }
  }

  /** An untrusted wrapping key must not be able to wrap a wrap-with-trusted key when enforced. */
  private static void checkWrapWithTrusted(Session s, VendorProfile profile, List<String> problems)
      throws TokenException {
    long wrapping = s.generateKey(new org.xipki.pkcs11.wrapper.Mechanism(CKM_AES_KEY_GEN),
        sessionAes().wrap(true).unwrap(true).encrypt(false).decrypt(false));
    long protectedKey = s.generateKey(new org.xipki.pkcs11.wrapper.Mechanism(CKM_AES_KEY_GEN),
        sessionAes().extractable(true).wrapWithTrusted(true).encrypt(true).decrypt(true));
    try {
      boolean wrapped;
      try {
        s.wrapKey(Mechanisms.aesKeyWrapPad(), wrapping, protectedKey);
        wrapped = true;
      } catch (PKCS11Exception e) {
        if (e.getErrorCode() != CKR_KEY_NOT_WRAPPABLE && e.getErrorCode() != CKR_KEY_UNEXTRACTABLE) {
          throw e;
        }
        wrapped = false;
      }
      if (wrapped && profile.wrapWithTrustedEnforced()) {
        problems.add("CKA_WRAP_WITH_TRUSTED is not enforced (an untrusted key wrapped a protected key),"
            + " so non-exportable keys could be exported; set wrapWithTrusted.enforced=false only if you accept that");
      } else if (!wrapped && !profile.wrapWithTrustedEnforced()) {
        problems.add("CKA_WRAP_WITH_TRUSTED is enforced but the profile says it is not");
      }
    } finally {
      s.destroyObject(protectedKey);
      s.destroyObject(wrapping);
    }
  }

  private static void checkEcdsaFormat(Session s, VendorProfile profile, List<String> problems) throws TokenException {
    AttributeVector pub = new AttributeVector().token(false).verify(true).ecParams(Curves.ecParams(io.hsmbridge.protocol.KeySpec.EC_P256));
    AttributeVector priv = new AttributeVector().token(false).private_(true).sensitive(true).sign(true);
    org.xipki.pkcs11.wrapper.PKCS11KeyPair pair = s.generateKeyPair(
        new org.xipki.pkcs11.wrapper.Mechanism(CKM_EC_KEY_PAIR_GEN), new org.xipki.pkcs11.wrapper.KeyPairTemplate(priv, pub));
    try {
      byte[] sig = s.signSingle(new org.xipki.pkcs11.wrapper.Mechanism(CKM_ECDSA), pair.getPrivateKey(), new byte[32]);
      boolean raw = sig.length == 64;
      if (raw != profile.ecdsaRawSignature()) {
        problems.add("CKM_ECDSA returns " + (raw ? "raw r||s" : "DER") + " signatures, the profile says otherwise");
      }
    } finally {
      s.destroyObject(pair.getPrivateKey());
      s.destroyObject(pair.getPublicKey());
    }
  }

  /** Every hash the profile lists for RSA-OAEP must work (encrypt and decrypt on a session key pair). */
  private static void checkOaepHashes(Session s, VendorProfile profile, List<String> problems) throws TokenException {
    AttributeVector pub = new AttributeVector().token(false).encrypt(true).modulusBits(2048)
        .publicExponent(java.math.BigInteger.valueOf(65537));
    AttributeVector priv = new AttributeVector().token(false).private_(true).sensitive(true).decrypt(true);
    org.xipki.pkcs11.wrapper.PKCS11KeyPair pair = s.generateKeyPair(
        new org.xipki.pkcs11.wrapper.Mechanism(CKM_RSA_PKCS_KEY_PAIR_GEN), new org.xipki.pkcs11.wrapper.KeyPairTemplate(priv, pub));
    try {
      byte[] probe = {1, 2, 3, 4};
      for (String hash : profile.oaepHashes()) {
        try {
          byte[] ct = s.encryptSingle(Mechanisms.oaep(hash), pair.getPublicKey(), probe);
          if (!java.util.Arrays.equals(probe, s.decryptSingle(Mechanisms.oaep(hash), pair.getPrivateKey(), ct))) {
            problems.add("RSA-OAEP with " + hash + " does not round-trip");
          }
        } catch (PKCS11Exception e) {
          problems.add("RSA-OAEP with " + hash + " fails (" + Ckr.name(e.getErrorCode()) + ") but the profile lists it in oaep.hashes");
        } catch (HsmException e) {
          problems.add("oaep.hashes lists " + hash + ", which hsmbridge does not know");
        }
      }
    } finally {
      s.destroyObject(pair.getPrivateKey());
      s.destroyObject(pair.getPublicKey());
    }
  }

  private static AttributeVector sessionAes() {
    return new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_AES).valueLen(32).token(false)
        .sensitive(true).sign(false).verify(false).derive(false);
  }
}
