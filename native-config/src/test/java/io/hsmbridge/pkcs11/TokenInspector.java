package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.KeySpec;
import java.math.BigInteger;
import java.security.KeyPair;
import java.security.interfaces.ECPrivateKey;
import java.security.interfaces.ECPublicKey;
import java.security.SecureRandom;
import java.time.Duration;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Token;

/**
 * Direct PKCS#11 access to a token, beside (not through) an HsmToken: counts and finds raw objects,
 * and plants keys made outside hsmbridge (as an operator's pkcs11-tool would) so that tests can use
 * known key material. Uses its own small session pool on the same token.
 */
final class TokenInspector implements AutoCloseable {
  private static final SecureRandom RANDOM = new SecureRandom();
  private final SessionPool pool;

  TokenInspector(TokenConfig config) {
    Pkcs11Library lib = Pkcs11Library.load(config.libraryPath());
    Token token = TokenSlots.find(lib, config);
    if (token == null) {
      throw new IllegalStateException("no token " + config.describeToken());
    }
    pool = new SessionPool(token, config.userPin(), 2, Duration.ofSeconds(10));
  }

  <T> T call(SessionPool.SessionWork<T> work) {
    return pool.call("inspector", work);
  }

  /** All token objects the User can see. */
  int objectCount() {
    return call(s -> s.findAllObjectsSingle(new AttributeVector().token(true)).length);
  }

  /** Token objects (any class) with this key id as CKA_ID. */
  int objectsWithId(String keyId) {
    byte[] id = KeyCache.parseKeyId(keyId);
    return call(s -> s.findAllObjectsSingle(new AttributeVector().token(true).id(id)).length);
  }

  /** Labels of the objects with this key id. */
  String[] labelsOf(String keyId) {
    byte[] id = KeyCache.parseKeyId(keyId);
    return call(s -> {
      long[] handles = s.findAllObjectsSingle(new AttributeVector().token(true).id(id));
      String[] labels = new String[handles.length];
      for (int i = 0; i < handles.length; i++) {
        labels[i] = s.getAttrValues(handles[i], CKA_LABEL).label();
      }
      return labels;
    });
  }

  /**
   * Creates an hsmbridge-shaped SIGN_VERIFY key pair from JDK key material (EC P-256/P-384) and
   * returns its key id; the HsmToken sees it after {@code keys().reload()}.
   */
  String plantEcKey(KeySpec spec, KeyPair pair, String label) {
    ECPrivateKey priv = (ECPrivateKey) pair.getPrivate();
    ECPublicKey pub = (ECPublicKey) pair.getPublic();
    int n = Curves.fieldBytes(spec);
    byte[] point = new byte[1 + 2 * n];
    point[0] = 0x04;
    put(pub.getW().getAffineX(), point, 1, n);
    put(pub.getW().getAffineY(), point, 1 + n, n);
    byte[] s = new byte[n];
    put(priv.getS(), s, 0, n);
    return plant(spec, s, point, label, CKK_EC);
  }

  /** Same for Ed25519: {@code seed} is the 32-byte private key, {@code publicKey} the 32-byte point. */
  String plantEd25519Key(byte[] seed, byte[] publicKey, String label) {
    return plant(KeySpec.ED25519, seed, publicKey, label, CKK_EC_EDWARDS);
  }

  /**
   * Creates both halves through the low-level API: the high-level wrapper re-encodes CKA_EC_POINT on
   * the way in (a BIT STRING for Edwards keys), which would not be what the token itself stores.
   */
  private String plant(KeySpec spec, byte[] value, byte[] point, String label, long keyType) {
    byte[] id = new byte[KeyCache.ID_BYTES];
    RANDOM.nextBytes(id);
    byte[] derPoint = new byte[2 + point.length]; // DER OCTET STRING, as PKCS#11 wants CKA_EC_POINT
    derPoint[0] = 0x04;
    derPoint[1] = (byte) point.length;
    System.arraycopy(point, 0, derPoint, 2, point.length);
    byte[] params = Curves.ecParams(spec);
    call(s -> {
      try {
        iaik.pkcs.pkcs11.wrapper.PKCS11 p11 = s.getModule().getPKCS11Module();
        p11.C_CreateObject(s.getSessionHandle(), new iaik.pkcs.pkcs11.wrapper.CK_ATTRIBUTE[] {
            attr(CKA_CLASS, CKO_PUBLIC_KEY), attr(CKA_KEY_TYPE, keyType), attr(CKA_TOKEN, true),
            attr(CKA_PRIVATE, false), attr(CKA_ID, id), attr(CKA_LABEL, label.toCharArray()),
            attr(CKA_EC_PARAMS, params), attr(CKA_EC_POINT, derPoint), attr(CKA_VERIFY, true),
            attr(CKA_ENCRYPT, false), attr(CKA_WRAP, false), attr(CKA_VERIFY_RECOVER, false), attr(CKA_DERIVE, false)},
            true);
        p11.C_CreateObject(s.getSessionHandle(), new iaik.pkcs.pkcs11.wrapper.CK_ATTRIBUTE[] {
            attr(CKA_CLASS, CKO_PRIVATE_KEY), attr(CKA_KEY_TYPE, keyType), attr(CKA_TOKEN, true),
            attr(CKA_PRIVATE, true), attr(CKA_SENSITIVE, true), attr(CKA_EXTRACTABLE, false), attr(CKA_ID, id),
            attr(CKA_LABEL, label.toCharArray()), attr(CKA_EC_PARAMS, params), attr(CKA_VALUE, value),
            attr(CKA_SIGN, true), attr(CKA_DECRYPT, false), attr(CKA_UNWRAP, false), attr(CKA_SIGN_RECOVER, false),
            attr(CKA_DERIVE, false)},
            true);
      } catch (iaik.pkcs.pkcs11.wrapper.PKCS11Exception e) {
        throw new org.xipki.pkcs11.wrapper.PKCS11Exception(e.getErrorCode());
      }
      return null;
    });
    return KeyCache.keyId(id);
  }

  private static iaik.pkcs.pkcs11.wrapper.CK_ATTRIBUTE attr(long type, Object value) {
    iaik.pkcs.pkcs11.wrapper.CK_ATTRIBUTE a = new iaik.pkcs.pkcs11.wrapper.CK_ATTRIBUTE();
    a.type = type;
    a.pValue = value;
    return a;
  }

  private static void put(BigInteger v, byte[] out, int offset, int length) {
    byte[] b = v.toByteArray();
    int start = b.length > length ? b.length - length : 0;
    int n = b.length - start;
    System.arraycopy(b, start, out, offset + length - n, n);
  }

  @Override
  public void close() {
    pool.close();
  }
}
