package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.security.SecureRandom;
import java.util.List;
import java.util.Map;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Mechanism;
import org.xipki.pkcs11.wrapper.PKCS11KeyPair;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * Key lifecycle on one token: generate, list, describe, relabel, delete, public key, import of a
 * wrapped key and export (wrap) where the key's policy allows. Every creation either completes (object
 * made, cache updated) or destroys what it made before reporting the error: nothing is left half-done.
 *
 * <p>Thread-safe; every method blocks on the token.
 */
public final class KeyManager {
  private static final SecureRandom RANDOM = new SecureRandom();

  private final SessionPool pool;
  private final KeyCache cache;

  KeyManager(SessionPool pool, KeyCache cache) {
    this.pool = pool;
    this.cache = cache;
  }

  public KeyInfo generate(KeySpec spec, KeyUsage usage, String label, boolean exportable) {
    checkUsage(spec, usage);
    KeyTemplates.Request r = new KeyTemplates.Request(spec, usage, label, exportable, newId());
    KeyEntry entry = pool.call("generate " + spec, s -> {
      if (!spec.family().isAsymmetric()) {
        long h = s.generateKey(KeyTemplates.generationMechanism(spec), KeyTemplates.secretForGenerate(r));
        return readBack(s, h, KeyEntry.NONE);
      }
      PKCS11KeyPair pair = s.generateKeyPair(KeyTemplates.generationMechanism(spec), KeyTemplates.keyPair(r));
      return readBack(s, pair.getPrivateKey(), pair.getPublicKey());
    });
    cache.put(entry);
    return entry.info();
  }

  public List<KeyInfo> list() {
    return cache.list();
  }

  public int count() {
    return cache.size();
  }

  public KeyInfo describe(String keyId) {
    return cache.get(keyId).info();
  }

  KeyEntry entry(String keyId) {
    return cache.get(keyId);
  }

  public void delete(String keyId) {
    KeyEntry e = cache.get(keyId);
    pool.call("delete key", s -> {
      if (e.publicHandle() != KeyEntry.NONE) {
        s.destroyObject(e.publicHandle());
      }
      s.destroyObject(e.handle());
      return null;
    });
    cache.remove(e.info().keyId());
  }

  public KeyInfo setLabel(String keyId, String label) {
    KeyEntry e = cache.get(keyId);
    pool.call("set label", s -> {
      s.setAttributeValues(e.handle(), new AttributeVector().label(label));
      if (e.publicHandle() != KeyEntry.NONE) {
        s.setAttributeValues(e.publicHandle(), new AttributeVector().label(label));
      }
      return null;
    });
    KeyEntry updated = e.withLabel(label);
    cache.put(updated);
    return updated.info();
  }

  /** The public key as DER SubjectPublicKeyInfo. */
  public byte[] publicKey(String keyId) {
    KeyEntry e = cache.get(keyId);
    long pub = e.publicOrFail();
    return pool.call("read public key", s -> {
      if (e.spec().family() == KeySpec.Family.RSA) {
        AttributeVector a = s.getAttrValues(pub, CKA_MODULUS, CKA_PUBLIC_EXPONENT);
        return PublicKeys.rsa(a.modulus(), a.publicExponent());
      }
      return PublicKeys.ec(e.spec(), s.getAttrValues(pub, CKA_EC_POINT).ecPoint());
    });
  }

  /**
   * Exports {@code keyId} wrapped under {@code wrappingKeyId}. Only keys created exportable may be
   * exported; the token enforces the same rule (CKA_WRAP_WITH_TRUSTED).
   */
  public byte[] wrap(String keyId, String wrappingKeyId, Algorithm alg) {
    KeyEntry target = cache.get(keyId);
    KeyEntry wrapping = cache.get(wrappingKeyId);
    wrapping.require(alg);
    if (!target.info().exportable()) {
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "key " + keyId + " is not exportable");
    }
    long wrapHandle = alg == Algorithm.RSA_OAEP_WRAP ? wrapping.publicOrFail() : wrapping.handle();
    return pool.call("wrap key", s -> s.wrapKey(wrapMechanism(alg), wrapHandle, target.handle()));
  }

  /**
   * Unwraps a key made elsewhere into a new token key. The wrapped blob carries no attributes: spec,
   * usage and policy come from the caller, and the result is checked against the spec. RSA keys get
   * their public half from the unwrapped private key's public attributes. EC keys cannot be imported
   * this way because their public point is not in the blob.
   */
  public KeyInfo importWrapped(String wrappingKeyId, Algorithm alg, byte[] wrapped, KeySpec spec, KeyUsage usage,
      String label, boolean exportable) {
    checkUsage(spec, usage);
    if (spec.family() == KeySpec.Family.EC || spec.family() == KeySpec.Family.EDWARDS) {
      throw HsmException.badParam("import of " + spec + " keys is not supported: the wrapped blob has no public point");
    }
    KeyEntry wrapping = cache.get(wrappingKeyId);
    wrapping.require(alg);
    KeyTemplates.Request r = new KeyTemplates.Request(spec, usage, label, exportable, newId());
    AttributeVector template = spec.family() == KeySpec.Family.RSA ? KeyTemplates.privateKey(r) : KeyTemplates.secret(r);
    KeyEntry entry = pool.call("import wrapped key", s -> {
      long h = s.unwrapKey(wrapMechanism(alg), wrapping.handle(), wrapped, template);
      long pub = KeyEntry.NONE;
      try {
        if (spec.family() == KeySpec.Family.RSA) {
          AttributeVector a = s.getAttrValues(h, CKA_MODULUS, CKA_PUBLIC_EXPONENT);
          AttributeVector pubTemplate = KeyTemplates.publicKey(r).modulus(a.modulus()).publicExponent(a.publicExponent());
          pub = s.createObject(pubTemplate);
        }
        KeyEntry made = readBack(s, h, pub);
        if (made.spec() != spec) {
          throw HsmException.badParam("the wrapped key is a " + made.spec() + " key, not " + spec);
        }
        return made;
      } catch (TokenException | RuntimeException e) {
        destroyQuietly(s, h);
        if (pub != KeyEntry.NONE) {
          destroyQuietly(s, pub);
        }
        throw e;
      }
    });
    cache.put(entry);
    return entry.info();
  }

  private static Mechanism wrapMechanism(Algorithm alg) {
    switch (alg) {
      case AES_KEY_WRAP_PAD: return Mechanisms.aesKeyWrapPad();
      case RSA_OAEP_WRAP: return Mechanisms.oaep(alg.hash());
      default: throw HsmException.badParam(alg.wireName() + " is not a key-wrap algorithm");
    }
  }

  /** Reads back what the token made; destroys it when it cannot be read as a user key. */
  private static KeyEntry readBack(Session s, long handle, long publicHandle) throws TokenException {
    try {
      byte[] id = s.getAttrValues(handle, CKA_ID).id();
      Map<String, Long> publics = publicHandle == KeyEntry.NONE ? Map.of() : Map.of(KeyCache.keyId(id), publicHandle);
      KeyEntry e = KeyCache.read(s, handle, publics);
      if (e == null) {
        throw new HsmException(ErrorCode.INTERNAL, "token made a key hsmbridge cannot classify");
      }
      return e;
    } catch (TokenException | RuntimeException e) {
      destroyQuietly(s, handle);
      if (publicHandle != KeyEntry.NONE) {
        destroyQuietly(s, publicHandle);
      }
      throw e;
    }
  }

  private static void destroyQuietly(Session s, long handle) {
    try {
      s.destroyObject(handle);
    } catch (TokenException | RuntimeException ignored) {
      // the original error is what matters; the scan reports leftovers
    }
  }

  private static void checkUsage(KeySpec spec, KeyUsage usage) {
    if (!KeyUsage.allowedFor(spec).contains(usage)) {
      throw HsmException.badParam("usage " + usage + " is not allowed for " + spec + "; allowed: " + KeyUsage.allowedFor(spec));
    }
  }

  private static byte[] newId() {
    byte[] id = new byte[KeyCache.ID_BYTES];
    RANDOM.nextBytes(id);
    return id;
  }

  /** Rescans the token (start-up, or after something changed behind our back). */
  void reload() {
    pool.call("scan keys", s -> {
      cache.reload(s);
      return null;
    });
  }
}
