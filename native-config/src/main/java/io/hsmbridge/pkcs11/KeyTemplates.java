package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.math.BigInteger;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.KeyPairTemplate;
import org.xipki.pkcs11.wrapper.Mechanism;

/**
 * Secure-by-default templates for each key spec. Every usage flag is set explicitly (tokens otherwise
 * default generated AES keys to every usage); keys are token objects, private, sensitive and
 * extractable only under a trusted key unless the caller asked for an exportable key (or for a
 * never-extractable one). A {@link Request#asSessionObjects()} request gets the same templates with
 * CKA_TOKEN=false, so a key generated for replication has exactly the policy of a token key.
 */
final class KeyTemplates {
  private static final BigInteger RSA_PUBLIC_EXPONENT = BigInteger.valueOf(65537);

  /**
   * What a key creation asked for.
   *
   * @param neverExtractable CKA_EXTRACTABLE=false: not even a trusted key may wrap it (no replication, no backup)
   * @param sessionObject CKA_TOKEN=false: a session object (a key generated for replication, see
   *     {@link ClusterKeys#generateForReplication}); false for every key kept on the token
   */
  record Request(KeySpec spec, KeyUsage usage, String label, boolean exportable, byte[] id, boolean neverExtractable,
      boolean sessionObject) {
    /** A token key, extractable under a trusted key (and by anyone when {@code exportable}). */
    Request(KeySpec spec, KeyUsage usage, String label, boolean exportable, byte[] id) {
      this(spec, usage, label, exportable, id, false, false);
    }

    /** The same request with every object a session object; the policy attributes stay as they are. */
    Request asSessionObjects() {
      return new Request(spec, usage, label, exportable, id, neverExtractable, true);
    }
  }

  private KeyTemplates() {}

  static Mechanism generationMechanism(KeySpec spec) {
    switch (spec.family()) {
      case AES: return new Mechanism(CKM_AES_KEY_GEN);
      case HMAC: return new Mechanism(CKM_GENERIC_SECRET_KEY_GEN);
      case RSA: return new Mechanism(CKM_RSA_PKCS_KEY_PAIR_GEN);
      case EC: return new Mechanism(CKM_EC_KEY_PAIR_GEN);
      case EDWARDS: return new Mechanism(CKM_EC_EDWARDS_KEY_PAIR_GEN);
      default: throw new IllegalArgumentException(spec.toString());
    }
  }

  static long keyType(KeySpec spec) {
    switch (spec.family()) {
      case AES: return CKK_AES;
      case HMAC: return CKK_GENERIC_SECRET;
      case RSA: return CKK_RSA;
      case EC: return CKK_EC;
      case EDWARDS: return CKK_EC_EDWARDS;
      default: throw new IllegalArgumentException(spec.toString());
    }
  }

  /** Template for generating a secret key (AES, HMAC). */
  static AttributeVector secretForGenerate(Request r) {
    return secret(r).valueLen(r.spec().bits() / 8);
  }

  /** Template for unwrapping a secret key; the length comes from the blob. */
  static AttributeVector secret(Request r) {
    AttributeVector t = new AttributeVector().class_(CKO_SECRET_KEY).keyType(keyType(r.spec()));
    common(t, r);
    boolean enc = r.usage() == KeyUsage.ENCRYPT_DECRYPT;
    boolean sign = r.usage() == KeyUsage.SIGN_VERIFY;
    boolean wrap = r.usage() == KeyUsage.WRAP_UNWRAP;
    t.encrypt(enc).decrypt(enc).sign(sign).verify(sign).wrap(wrap).unwrap(wrap);
    if (wrap) {
      // Whatever this key unwraps must come out sensitive: no user can unwrap a blob into a readable key.
      t.unwrapTemplate(new AttributeVector().sensitive(true));
    }
    return t;
  }

  /**
   * Template for unwrapping a secret key into a short-lived session object whose size can be measured
   * by wrapping it (see KeyManager): no usage, sensitive, and wrappable by an untrusted key.
   */
  static AttributeVector measurable(Request r) {
    return new AttributeVector().class_(CKO_SECRET_KEY).keyType(keyType(r.spec())).token(false).private_(true)
        .sensitive(true).extractable(true).wrapWithTrusted(false).encrypt(false).decrypt(false).sign(false)
        .verify(false).wrap(false).unwrap(false).derive(false);
  }

  /** A throw-away AES-256 session key that can only wrap. */
  static AttributeVector sessionKek() {
    return new AttributeVector().class_(CKO_SECRET_KEY).keyType(CKK_AES).valueLen(32).token(false).private_(true)
        .sensitive(true).extractable(false).encrypt(false).decrypt(false).sign(false).verify(false)
        .wrap(true).unwrap(false).derive(false);
  }

  /** Template for the private half (generate and unwrap). */
  static AttributeVector privateKey(Request r) {
    AttributeVector t = new AttributeVector().class_(CKO_PRIVATE_KEY).keyType(keyType(r.spec()));
    common(t, r);
    // All flags explicit: SoftHSM2 defaults CKA_UNWRAP (and others) to true on private keys.
    t.sign(r.usage() == KeyUsage.SIGN_VERIFY).signRecover(false)
        .decrypt(r.usage() == KeyUsage.ENCRYPT_DECRYPT).unwrap(r.usage() == KeyUsage.WRAP_UNWRAP);
    return t;
  }

  static AttributeVector publicKey(Request r) {
    AttributeVector t = new AttributeVector().class_(CKO_PUBLIC_KEY).keyType(keyType(r.spec()))
        .token(!r.sessionObject()).private_(false).modifiable(true).id(r.id()).label(r.label())
        .verify(r.usage() == KeyUsage.SIGN_VERIFY).verifyRecover(false)
        .encrypt(r.usage() == KeyUsage.ENCRYPT_DECRYPT).wrap(r.usage() == KeyUsage.WRAP_UNWRAP);
    return t;
  }

  static KeyPairTemplate keyPair(Request r) {
    AttributeVector pub = publicKey(r);
    switch (r.spec().family()) {
      case RSA:
        pub.modulusBits(r.spec().bits()).publicExponent(RSA_PUBLIC_EXPONENT);
        break;
      case EC:
      case EDWARDS:
        pub.ecParams(Curves.ecParams(r.spec()));
        break;
      default:
        throw new IllegalArgumentException(r.spec() + " is not a key-pair spec");
    }
    return new KeyPairTemplate(privateKey(r), pub);
  }

  private static void common(AttributeVector t, Request r) {
    t.token(!r.sessionObject()).private_(true).sensitive(true).extractable(!r.neverExtractable())
        .wrapWithTrusted(!r.exportable())
        .modifiable(true).derive(false).id(r.id()).label(r.label());
  }
}
