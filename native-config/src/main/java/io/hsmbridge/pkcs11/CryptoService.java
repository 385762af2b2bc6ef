package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_SIGNATURE_INVALID;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_SIGNATURE_LEN_RANGE;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import org.xipki.pkcs11.wrapper.Mechanism;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * Cryptographic operations with keys on one token. IVs come from the token's RNG. Decrypt failures are
 * reported as one opaque CRYPTO_FAILURE; a signature or MAC that does not verify is a {@code false}
 * result, not an error.
 *
 * <p>Empty inputs: the wrapper hands the token a NULL pointer for an empty array, which single-part
 * calls reject with CKR_ARGUMENTS_BAD. Empty messages therefore go through Init+Final (no Update),
 * which SoftHSM2 accepts for AES, HMAC, digests and hash-and-sign RSA; RSA_OAEP and ED25519 (no
 * multi-part on SoftHSM2) refuse an empty input with INVALID_PARAMETER. An empty signature or MAC
 * never verifies and is {@code false} without asking the token.
 *
 * <p>Thread-safe; every method blocks on the token.
 */
public final class CryptoService {
  /** Ciphertext and the IV it was made with (null for RSA). */
  public record Encrypted(byte[] ciphertext, byte[] iv) {}

  private final SessionPool pool;
  private final KeyManager keys;
  private final VendorProfile profile;

  CryptoService(SessionPool pool, KeyManager keys, VendorProfile profile) {
    this.pool = pool;
    this.keys = keys;
    this.profile = profile;
  }

  public Encrypted encrypt(String keyId, Algorithm alg, byte[] plaintext, byte[] aad) {
    KeyEntry key = keyFor(keyId, alg, Algorithm.Kind.CIPHER);
    checkAad(alg, aad);
    switch (alg) {
      case AES_GCM:
        return pool.call("encrypt", s -> {
          byte[] iv = s.generateRandom(Mechanisms.GCM_IV_BYTES);
          return new Encrypted(encryptAll(s, Mechanisms.gcm(iv, aad), live(key), plaintext), iv);
        });
      case AES_CBC_PAD:
        return pool.call("encrypt", s -> {
          byte[] iv = s.generateRandom(Mechanisms.CBC_IV_BYTES);
          return new Encrypted(encryptAll(s, Mechanisms.cbcPad(iv), live(key), plaintext), iv);
        });
      default:
        Mechanism oaep = oaep(alg);
        long pub = key.publicOrFail();
        // SoftHSM2 answers an over-long plaintext with CKR_GENERAL_ERROR: check it here
        int max = key.spec().bits() / 8 - 2 * hashBytes(alg.hash()) - 2;
        if (plaintext.length == 0 || plaintext.length > max) {
          throw HsmException.badParam("RSA_OAEP plaintext must be 1.." + max + " bytes for a " + key.spec() + " key");
        }
        return pool.call("encrypt", s -> new Encrypted(s.encryptSingle(oaep, pub, plaintext), null));
    }
  }

  public byte[] decrypt(String keyId, Algorithm alg, byte[] ciphertext, byte[] iv, byte[] aad) {
    KeyEntry key = keyFor(keyId, alg, Algorithm.Kind.CIPHER);
    checkAad(alg, aad);
    Mechanism mechanism;
    switch (alg) {
      case AES_GCM:
        requireLength("iv", iv, Mechanisms.GCM_IV_BYTES);
        if (ciphertext.length < Mechanisms.GCM_TAG_BITS / 8) {
          throw HsmException.badParam("AES_GCM ciphertext must hold the 16-byte tag");
        }
        mechanism = Mechanisms.gcm(iv, aad);
        break;
      case AES_CBC_PAD:
        requireLength("iv", iv, Mechanisms.CBC_IV_BYTES);
        if (ciphertext.length == 0 || ciphertext.length % 16 != 0) {
          throw HsmException.badParam("AES_CBC_PAD ciphertext length must be a positive multiple of 16");
        }
        mechanism = Mechanisms.cbcPad(iv);
        break;
      default:
        if (iv != null) {
          throw HsmException.badParam("RSA_OAEP takes no iv");
        }
        mechanism = oaep(alg);
    }
    try {
      return pool.call("decrypt", s -> s.decryptSingle(mechanism, live(key), ciphertext));
    } catch (HsmException e) {
      // Whatever went wrong with the data itself, say only "failed": no padding or tag oracle.
      if (e.code() == ErrorCode.INVALID_PARAMETER || e.code() == ErrorCode.INTERNAL) {
        throw new HsmException(ErrorCode.CRYPTO_FAILURE, "decrypt failed", e.ckr(), e.serverDetail(), e);
      }
      throw e;
    }
  }

  /** Signs {@code message}; ECDSA signatures are returned DER-encoded. */
  public byte[] sign(String keyId, Algorithm alg, byte[] message) {
    KeyEntry key = keyFor(keyId, alg, Algorithm.Kind.SIGNATURE);
    Mechanism mechanism = Mechanisms.signature(alg);
    requireNonEmptyEdDsa(alg, message);
    if (key.spec().family() == KeySpec.Family.EC) {
      byte[] digest = hash(alg.hash(), message);
      byte[] raw = pool.call("sign", s -> s.signSingle(mechanism, live(key), digest));
      return profile.ecdsaRawSignature() ? EcdsaSignatures.rawToDer(raw) : raw;
    }
    return pool.call("sign", s -> signAll(s, mechanism, live(key), message));
  }

  public boolean verify(String keyId, Algorithm alg, byte[] message, byte[] signature) {
    KeyEntry key = keyFor(keyId, alg, Algorithm.Kind.SIGNATURE);
    long pub = key.publicOrFail();
    Mechanism mechanism = Mechanisms.signature(alg);
    requireNonEmptyEdDsa(alg, message);
    byte[] data = message;
    byte[] sig = signature;
    if (key.spec().family() == KeySpec.Family.EC) {
      data = hash(alg.hash(), message);
      if (profile.ecdsaRawSignature()) {
        sig = EcdsaSignatures.derToRaw(signature, Curves.fieldBytes(key.spec()));
        if (sig == null) {
          return false;
        }
      }
    }
    return verifyOn(() -> pub, mechanism, data, sig);
  }

  public byte[] mac(String keyId, Algorithm alg, byte[] message) {
    KeyEntry key = keyFor(keyId, alg, Algorithm.Kind.MAC);
    return pool.call("mac", s -> signAll(s, Mechanisms.hmac(alg), live(key), message));
  }

  public boolean verifyMac(String keyId, Algorithm alg, byte[] message, byte[] mac) {
    KeyEntry key = keyFor(keyId, alg, Algorithm.Kind.MAC);
    return verifyOn(() -> live(key), Mechanisms.hmac(alg), message, mac);
  }

  public byte[] digest(Algorithm alg, byte[] message) {
    if (alg.kind() != Algorithm.Kind.DIGEST) {
      throw HsmException.badParam(alg.wireName() + " is not a digest algorithm");
    }
    return pool.call("digest", s -> {
      if (message.length > 0) {
        return s.digestSingle(Mechanisms.digest(alg), message);
      }
      s.digestInit(Mechanisms.digest(alg));
      return s.digestFinal();
    });
  }

  public byte[] random(int length) {
    if (length < 1 || length > 4096) {
      throw HsmException.badParam("random length must be between 1 and 4096");
    }
    return pool.call("random", s -> s.generateRandom(length));
  }

  private boolean verifyOn(java.util.function.LongSupplier handle, Mechanism mechanism, byte[] data, byte[] signature) {
    if (signature.length == 0) {
      return false;
    }
    return pool.call("verify", s -> verifyOrFalse(s, handle.getAsLong(), mechanism, data, signature));
  }

  private static boolean verifyOrFalse(Session s, long handle, Mechanism m, byte[] data, byte[] sig)
      throws TokenException {
    try {
      if (data.length > 0) {
        s.verifySingle(m, handle, data, sig);
      } else {
        s.verifyInit(m, handle);
        s.verifyFinal(sig);
      }
      return true;
    } catch (PKCS11Exception e) {
      if (e.getErrorCode() == CKR_SIGNATURE_INVALID || e.getErrorCode() == CKR_SIGNATURE_LEN_RANGE) {
        return false;
      }
      throw e;
    }
  }

  private static byte[] encryptAll(Session s, Mechanism m, long key, byte[] data) throws TokenException {
    if (data.length > 0) {
      return s.encryptSingle(m, key, data);
    }
    s.encryptInit(m, key);
    return s.encryptFinal();
  }

  private static byte[] signAll(Session s, Mechanism m, long key, byte[] data) throws TokenException {
    if (data.length > 0) {
      return s.signSingle(m, key, data);
    }
    s.signInit(m, key);
    return s.signFinal();
  }

  private static void requireNonEmptyEdDsa(Algorithm alg, byte[] message) {
    if (alg == Algorithm.ED25519 && message.length == 0) {
      throw HsmException.badParam("ED25519 cannot sign or verify an empty message on this token");
    }
  }

  /**
   * The key's handle as the cache holds it NOW: call it inside the session work. SO work (a backup's EBK)
   * logs the User out, which on SoftHSM2 kills every handle to a private object; it holds every session
   * meanwhile, and the pool re-reads the key cache before it lets work in again. So a handle read while
   * holding a session stays valid until the session is returned, and one read before borrowing it may
   * not (seen: a key creation's HMAC failed with CKR_OBJECT_HANDLE_INVALID right after a backup's SO step).
   */
  private long live(KeyEntry key) {
    return keys.entry(key.info().keyId()).handle();
  }

  private KeyEntry keyFor(String keyId, Algorithm alg, Algorithm.Kind kind) {
    if (alg.kind() != kind) {
      throw HsmException.badParam(alg.wireName() + " is not a " + kind.name().toLowerCase(java.util.Locale.ROOT) + " algorithm");
    }
    KeyEntry key = keys.entry(keyId);
    key.require(alg);
    return key;
  }

  private Mechanism oaep(Algorithm alg) {
    if (!profile.oaepHashes().contains(alg.hash())) {
      throw HsmException.badParam("this token supports RSA-OAEP only with " + profile.oaepHashes());
    }
    return Mechanisms.oaep(alg.hash());
  }

  private static void checkAad(Algorithm alg, byte[] aad) {
    if (aad != null && alg != Algorithm.AES_GCM) {
      throw HsmException.badParam("aad is only allowed with AES_GCM");
    }
  }

  private static void requireLength(String field, byte[] value, int length) {
    if (value == null || value.length != length) {
      throw HsmException.badParam(field + " must be " + length + " bytes");
    }
  }

  private static int hashBytes(String name) {
    return "SHA1".equals(name) ? 20 : Integer.parseInt(name.substring(3)) / 8;
  }

  /** The JDK's digest of {@code message}; name is SHA1/SHA256/SHA384/SHA512 (hashing public data needs no token). */
  static byte[] hash(String name, byte[] message) {
    try {
      return MessageDigest.getInstance(name.replace("SHA", "SHA-")).digest(message);
    } catch (NoSuchAlgorithmException e) {
      throw new HsmException(ErrorCode.INTERNAL, "no " + name + " in this JVM");
    }
  }
}
