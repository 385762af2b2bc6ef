package io.hsmbridge.agent.replication;

import java.math.BigInteger;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Instant;
import java.util.Date;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x500.style.IETFUtils;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A throw-away CA for the replication tests, issuing certificates the way the cluster CA does (EC P-256,
 * the holder's kind as the subject OU, server and client auth). The real cluster CA lives in the bridge
 * module (ClusterCa); its certificates are tested against the Raft group in RaftAttackTest there.
 */
final class TestPki {
  static final String AGENT = "agent";
  private static final SecureRandom RANDOM = new SecureRandom();

  /** A certificate and its key. */
  record Member(X509Certificate certificate, PrivateKey key) {}

  private final KeyPair caKeys;
  final X509Certificate ca;

  private TestPki(KeyPair caKeys, X509Certificate ca) {
    this.caKeys = caKeys;
    this.ca = ca;
  }

  static TestPki create() {
    KeyPair keys = keyPair();
    X500Name subject = name("test cluster CA", null);
    return new TestPki(keys, sign(subject, subject, keys.getPublic(), keys.getPrivate(), true));
  }

  /** A member certificate of this CA with {@code unit} as its kind (null: none). */
  Member issue(String cn, String unit) {
    KeyPair keys = keyPair();
    X500Name issuer = X500Name.getInstance(ca.getSubjectX500Principal().getEncoded());
    return new Member(sign(issuer, name(cn, unit), keys.getPublic(), caKeys.getPrivate(), false), keys.getPrivate());
  }

  /** A certificate that signs itself, with the agent kind: no CA vouches for it. */
  static Member selfSigned(String cn) {
    KeyPair keys = keyPair();
    X500Name subject = name(cn, AGENT);
    return new Member(sign(subject, subject, keys.getPublic(), keys.getPrivate(), false), keys.getPrivate());
  }

  /** What a peer of the group presents and accepts: agent certificates of this CA only. */
  RaftTls agentTls(String cn) {
    return tls(issue(cn, AGENT));
  }

  RaftTls tls(Member m) {
    return RaftTls.of(ca, m.certificate(), m.key(), c -> AGENT.equals(unit(c)), "an agent certificate");
  }

  static String unit(X509Certificate c) {
    var rdns = X500Name.getInstance(c.getSubjectX500Principal().getEncoded()).getRDNs(BCStyle.OU);
    return rdns.length == 1 ? IETFUtils.valueToString(rdns[0].getFirst().getValue()) : null;
  }

  private static X500Name name(String cn, String unit) {
    X500NameBuilder b = new X500NameBuilder(BCStyle.INSTANCE).addRDN(BCStyle.O, "hsmbridge-test");
    if (unit != null) {
      b.addRDN(BCStyle.OU, unit);
    }
    return b.addRDN(BCStyle.CN, cn).build();
  }

  private static KeyPair keyPair() {
    try {
      KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
      g.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
      return g.generateKeyPair();
    } catch (java.security.GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  private static X509Certificate sign(X500Name issuer, X500Name subject, java.security.PublicKey key,
      PrivateKey signer, boolean ca) {
    try {
      Instant now = Instant.now();
      X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(issuer, new BigInteger(64, RANDOM).setBit(0),
          Date.from(now.minusSeconds(300)), Date.from(now.plusSeconds(86_400)), subject, key);
      b.addExtension(Extension.basicConstraints, true, new BasicConstraints(ca));
      if (ca) {
        b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
      } else {
        b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature));
        b.addExtension(Extension.extendedKeyUsage, false,
            new ExtendedKeyUsage(new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
      }
      return new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(signer)));
    } catch (Exception e) {
      throw new IllegalStateException("cannot issue a test certificate", e);
    }
  }
}
