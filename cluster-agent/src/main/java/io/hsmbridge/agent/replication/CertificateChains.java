package io.hsmbridge.agent.replication;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyInfo;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import java.io.ByteArrayInputStream;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.ECParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.List;

/**
 * The X.509 side of a key's certificate chain ({@code key.setCertificates}): checked by the agent before the
 * change is committed, and again by every HSM when it applies it (so an entry made round the agent's check
 * changes nothing): the key is asymmetric, every entry is exactly one DER X.509 certificate, and the leaf
 * (entry 0) carries the key's public key, so a KeyStore built on the cluster never pairs a key with a
 * certificate of another key. The chain's signatures and validity dates are not checked: whoever relies on
 * the chain (a TLS peer) validates it against its own trust anchors, and an expired chain may still be
 * stored to be replaced. Stateless; the token is read for the key's description and public key only.
 */
public final class CertificateChains {
  private CertificateChains() {}

  /**
   * Checks {@code der} (within {@code CertificateChain}'s bounds already; empty = remove the chain) against
   * key {@code keyId} of {@code hsm}.
   *
   * @throws HsmException UNKNOWN_KEY when there is no such key; WRONG_KEY_TYPE for a secret (AES, HMAC) key;
   *     INVALID_PARAMETER when an entry is not a DER certificate or the leaf certifies another public key
   */
  public static void check(HsmToken hsm, String keyId, List<byte[]> der) {
    KeyInfo key = hsm.keys().describe(keyId);
    KeySpec.Family family = key.spec().family();
    if (!family.isAsymmetric()) {
      throw new HsmException(ErrorCode.WRONG_KEY_TYPE, "key " + key.keyId() + " is a " + key.spec()
          + " key: certificates are kept for RSA, EC and Ed25519 keys only");
    }
    if (der.isEmpty()) {
      return;
    }
    X509Certificate leaf = parse(der.get(0), 0);
    for (int i = 1; i < der.size(); i++) {
      parse(der.get(i), i);
    }
    if (!sameKey(family, leaf.getPublicKey(), hsm.keys().publicKey(key.keyId()))) {
      throw HsmException.badParam("the leaf certificate (entry 0) carries another public key than key " + key.keyId()
          + ": a chain starts with the certificate of the key it is stored with");
    }
  }

  /** Entry {@code i} as a certificate, when it is exactly one DER X.509 certificate (no PEM, no trailing bytes). */
  private static X509Certificate parse(byte[] der, int i) {
    Certificate c;
    try {
      c = CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(der));
    } catch (GeneralSecurityException | RuntimeException e) {
      throw notACertificate(i);
    }
    try {
      // The JDK also reads PEM and stops after one certificate: only the exact DER encoding is stored.
      if (!(c instanceof X509Certificate x) || !Arrays.equals(x.getEncoded(), der)) {
        throw notACertificate(i);
      }
      return x;
    } catch (GeneralSecurityException e) {
      throw notACertificate(i);
    }
  }

  private static HsmException notACertificate(int i) {
    return HsmException.badParam("certificate " + i + " of the chain is not a DER-encoded X.509 certificate");
  }

  /**
   * Whether the certificate's key is the token's (an SPKI, as key.publicKey returns it), compared by value:
   * one key has more than one SPKI encoding (e.g. EC parameters by name or spelled out).
   */
  private static boolean sameKey(KeySpec.Family family, PublicKey inCertificate, byte[] tokenSpki) {
    PublicKey onToken;
    try {
      String alg = switch (family) {
        case RSA -> "RSA";
        case EC -> "EC";
        default -> "Ed25519";
      };
      onToken = KeyFactory.getInstance(alg).generatePublic(new X509EncodedKeySpec(tokenSpki));
    } catch (GeneralSecurityException e) {
      throw new HsmException(ErrorCode.INTERNAL, "the token's public key does not decode: " + e.getClass().getSimpleName());
    }
    if (onToken instanceof RSAPublicKey t) {
      return inCertificate instanceof RSAPublicKey c && t.getModulus().equals(c.getModulus())
          && t.getPublicExponent().equals(c.getPublicExponent());
    }
    if (onToken instanceof ECPublicKey t) {
      return inCertificate instanceof ECPublicKey c && t.getW().equals(c.getW()) && sameCurve(t.getParams(), c.getParams());
    }
    return Arrays.equals(onToken.getEncoded(), inCertificate.getEncoded()); // Ed25519: one encoding per key
  }

  private static boolean sameCurve(ECParameterSpec a, ECParameterSpec b) {
    return a.getCurve().equals(b.getCurve()) && a.getGenerator().equals(b.getGenerator()) && a.getOrder().equals(b.getOrder())
        && a.getCofactor() == b.getCofactor();
  }
}
