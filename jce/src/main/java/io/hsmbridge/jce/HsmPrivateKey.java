package io.hsmbridge.jce;

import java.security.PrivateKey;
import java.security.PublicKey;

/**
 * The private half of a key pair in the cluster, with its public half (an ordinary JDK key, for verifying
 * and encrypting in the JVM). RSA handles are also {@link java.security.interfaces.RSAKey} and EC handles
 * {@link java.security.interfaces.ECKey}, so that JSSE and other JCA code can tell the key's size and curve.
 */
public interface HsmPrivateKey extends HsmKey, PrivateKey {
  /** The public key of the pair. */
  PublicKey publicKey();
}
