package io.hsmbridge.pkcs11;

import io.hsmbridge.protocol.Algorithm;
import org.xipki.pkcs11.wrapper.Mechanism;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * The benchmark baseline: one raw PKCS#11 call per operation on a session owned by the calling
 * thread, with no pool, no validation and no messaging. It is what an application linking the
 * vendor library directly would get, measured on the same token as the bridge path.
 *
 * <p>Not for serving requests. One worker per thread; close it when done.
 */
public final class DirectPkcs11 implements AutoCloseable {
  private final Session session;
  private final Mechanism mechanism;
  private final long handle;
  private final Algorithm alg;
  private final byte[] input;
  private final byte[] iv;

  private DirectPkcs11(Session session, Mechanism mechanism, long handle, Algorithm alg, byte[] input, byte[] iv) {
    this.session = session;
    this.mechanism = mechanism;
    this.handle = handle;
    this.alg = alg;
    this.input = input;
    this.iv = iv;
  }

  /**
   * A worker that runs {@code alg} (a signature, MAC or AES_GCM encryption) with {@code keyId} on
   * {@code input}, on a new session of {@code hsm}'s token.
   */
  public static DirectPkcs11 open(HsmToken hsm, String keyId, Algorithm alg, byte[] input) {
    KeyEntry key = hsm.keys().entry(keyId);
    key.require(alg);
    byte[] iv = null;
    Mechanism mechanism;
    switch (alg.kind()) {
      case SIGNATURE:
        mechanism = Mechanisms.signature(alg);
        break;
      case MAC:
        mechanism = Mechanisms.hmac(alg);
        break;
      case CIPHER:
        if (alg != Algorithm.AES_GCM) {
          throw HsmException.badParam("direct baseline supports AES_GCM only");
        }
        iv = new byte[Mechanisms.GCM_IV_BYTES];
        mechanism = null;
        break;
      default:
        throw HsmException.badParam("direct baseline does not support " + alg.wireName());
    }
    try {
      Session session = hsm.openUnpooledSession();
      return new DirectPkcs11(session, mechanism, key.handle(), alg, input, iv);
    } catch (TokenException e) {
      throw Ckr.wrap(e, "opening a session");
    }
  }

  /** Runs the operation once, as an application would: ECDSA hashes first, GCM gets a token IV. */
  public byte[] runOnce() {
    try {
      switch (alg.kind()) {
        case CIPHER: {
          byte[] freshIv = session.generateRandom(iv.length);
          return session.encryptSingle(Mechanisms.gcm(freshIv, null), handle, input);
        }
        default:
          if (alg.family() == io.hsmbridge.protocol.KeySpec.Family.EC) {
            return session.signSingle(mechanism, handle, CryptoService.hash(alg.hash(), input));
          }
          return session.signSingle(mechanism, handle, input);
      }
    } catch (TokenException e) {
      throw Ckr.wrap(e, "direct " + alg.wireName());
    }
  }

  @Override
  public void close() {
    try {
      session.closeSession();
    } catch (TokenException e) {
      // closing a benchmark session: nothing to recover
    }
  }
}
