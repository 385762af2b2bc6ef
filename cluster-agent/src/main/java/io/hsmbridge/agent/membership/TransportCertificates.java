package io.hsmbridge.agent.membership;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.HexFormat;
import org.bouncycastle.util.io.pem.PemObject;
import org.bouncycastle.util.io.pem.PemReader;
import org.bouncycastle.util.io.pem.PemWriter;

/**
 * Who may receive the cluster key. A joining HSM's token makes an RSA transport key (the private half
 * sensitive, never extractable) and the agent writes its public half to {@value #REQUEST_FILE} in its state
 * directory; whoever holds the cluster CA's key (the CLI on the machine that created the cluster) certifies
 * that key ({@link ClusterCa#issueTransportCertificate}) into {@value #CERTIFICATE_FILE} beside it; the joiner
 * sends the certificate, and an agent wraps the cluster key only to the key of a certificate that
 * {@link #verify} accepts.
 *
 * <p>Why a certificate and not the agent's TLS certificate alone: the agent's TLS key is a file. Whoever copies
 * it, without the token, could otherwise ask like a joiner with a key pair of its own and unwrap the cluster key
 * (and every replicated key and backup) in software. The CA signs only a key read from the new HSM's own token.
 * This is CloudHSM's "sign the cluster CSR" step, done per joining HSM.
 */
public final class TransportCertificates {
  /** The joiner's request: its transport public key, PEM {@code PUBLIC KEY}. */
  public static final String REQUEST_FILE = "transport-request.pem";
  /** The CA's certificate of that key, PEM {@code CERTIFICATE}. */
  public static final String CERTIFICATE_FILE = "transport-certificate.pem";
  /** Larger than any certificate {@link ClusterCa} issues; a request field beyond it is refused unread. */
  public static final int MAX_CERTIFICATE_BYTES = 8 * 1024;
  static final int MIN_RSA_BITS = 2048;
  /**
   * Where an agent whose token holds the cluster key writes its check value (hex) at every start: what a transport
   * key certificate must carry ({@code cluster transport-cert --cluster-key-check}).
   */
  public static final String CHECK_VALUE_FILE = "cluster-key-check";
  /**
   * The certificate extension with the cluster key's check value (an OCTET STRING): an OID of hsmbridge's own,
   * under the UUID arc 2.25 (ITU-T X.667), so it needs no registration.
   */
  static final org.bouncycastle.asn1.ASN1ObjectIdentifier CLUSTER_KEY_CHECK_OID =
      new org.bouncycastle.asn1.ASN1ObjectIdentifier("2.25.61196311136540522029472297344775974742");

  /** What a transport key certificate certifies: the key to wrap to, and the cluster key it may receive. */
  public record Certified(byte[] spki, byte[] clusterKeyCheck) {
    @Override
    public String toString() {
      return "Certified[transport key, cluster key check " + HexFormat.of().formatHex(clusterKeyCheck) + "]";
    }
  }

  private TransportCertificates() {}

  /**
   * The transport key a joiner's certificate certifies, when the cluster CA issued it for {@code hsmId} as a
   * transport key certificate and it is valid now; else an {@link ErrorCode#ACCESS_DENIED} saying why.
   *
   * @return the certified key (the only key the cluster key may be wrapped to) and cluster key check value
   */
  public static Certified verify(X509Certificate ca, byte[] der, String hsmId) {
    if (der == null || der.length == 0 || der.length > MAX_CERTIFICATE_BYTES) {
      throw denied("a joining HSM must present its transport key certificate (at most " + MAX_CERTIFICATE_BYTES
          + " bytes, DER): see docs/cluster-transport.md, \"Joining: the transport key certificate\"");
    }
    X509Certificate cert;
    try {
      cert = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(der));
    } catch (GeneralSecurityException | ClassCastException e) {
      throw denied("the transport key certificate is not an X.509 certificate");
    }
    try {
      cert.verify(ca.getPublicKey());
    } catch (GeneralSecurityException e) {
      throw denied("the transport key certificate is not issued by this cluster's CA");
    }
    if (!cert.getIssuerX500Principal().equals(ca.getSubjectX500Principal())) {
      throw denied("the transport key certificate names another issuer than this cluster's CA");
    }
    try {
      cert.checkValidity();
    } catch (GeneralSecurityException e) {
      throw denied("the transport key certificate is not valid now (" + cert.getNotBefore() + " .. " + cert.getNotAfter() + ")");
    }
    if (ClusterCa.MemberKind.of(cert) != ClusterCa.MemberKind.TRANSPORT_KEY) {
      throw denied("the certificate is no transport key certificate (its subject carries no OU="
          + ClusterCa.MemberKind.TRANSPORT_KEY.unit() + ")");
    }
    String name = ClusterCa.memberName(cert);
    if (hsmId == null || !hsmId.equals(name)) {
      throw denied("the transport key certificate is for HSM " + name + ", not for the HSM that asks (" + hsmId + ")");
    }
    byte[] spki = cert.getPublicKey().getEncoded();
    rsaKey(spki, "certified transport key");
    byte[] check = clusterKeyCheck(cert);
    if (check == null) {
      throw denied("the transport key certificate carries no cluster key check value");
    }
    return new Certified(spki, check);
  }

  /** The cluster key check value a transport key certificate carries, or null. */
  public static byte[] clusterKeyCheck(X509Certificate cert) {
    byte[] ext = cert.getExtensionValue(CLUSTER_KEY_CHECK_OID.getId());
    if (ext == null) {
      return null;
    }
    try {
      // getExtensionValue wraps the extension's own OCTET STRING in another one.
      byte[] inner = org.bouncycastle.asn1.ASN1OctetString.getInstance(ext).getOctets();
      byte[] check = org.bouncycastle.asn1.ASN1OctetString.getInstance(inner).getOctets();
      return check.length == io.hsmbridge.pkcs11.ClusterKeys.CHECK_VALUE_BYTES ? check : null;
    } catch (IllegalArgumentException e) {
      return null;
    }
  }

  /** A check value as the CLI takes and agents write it: {@value io.hsmbridge.pkcs11.ClusterKeys#CHECK_VALUE_BYTES} bytes in hex. */
  public static byte[] parseCheckValue(String hex) {
    try {
      byte[] value = HexFormat.of().parseHex(hex == null ? "" : hex.trim());
      if (value.length == io.hsmbridge.pkcs11.ClusterKeys.CHECK_VALUE_BYTES) {
        return value;
      }
    } catch (IllegalArgumentException e) {
      // below
    }
    throw new HsmException(ErrorCode.INVALID_PARAMETER, "a cluster key check value is "
        + 2 * io.hsmbridge.pkcs11.ClusterKeys.CHECK_VALUE_BYTES + " hex digits (a member's " + CHECK_VALUE_FILE + ")");
  }

  /** Writes an agent's check value file (hex, public). */
  public static void writeCheckValue(Path file, byte[] check) throws IOException {
    writeAtomically(file, HexFormat.of().formatHex(check) + "\n");
  }

  /** {@code spki} as an RSA public key of at least {@value #MIN_RSA_BITS} bits, or a typed error naming {@code what}. */
  static PublicKey rsaKey(byte[] spki, String what) {
    RSAPublicKey key;
    try {
      key = (RSAPublicKey) KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(spki));
    } catch (GeneralSecurityException | ClassCastException | NullPointerException e) {
      throw new HsmException(ErrorCode.INVALID_PARAMETER, "the " + what + " is not an RSA public key");
    }
    if (key.getModulus().bitLength() < MIN_RSA_BITS) {
      throw new HsmException(ErrorCode.INVALID_PARAMETER, "the " + what + " has " + key.getModulus().bitLength()
          + " bits; at least " + MIN_RSA_BITS);
    }
    return key;
  }

  /** Writes the joiner's request (its transport public key) atomically, readable by all: it is public. */
  public static void writeRequest(Path file, byte[] spki) throws IOException {
    StringWriter text = new StringWriter();
    try (PemWriter w = new PemWriter(text)) {
      w.writeObject(new PemObject("PUBLIC KEY", spki));
    }
    writeAtomically(file, text.toString());
  }

  /** The transport public key in a request file. */
  public static byte[] readRequest(Path file) {
    try (PemReader r = new PemReader(new StringReader(Files.readString(file, StandardCharsets.US_ASCII)))) {
      PemObject o = r.readPemObject();
      if (o == null || !o.getType().equals("PUBLIC KEY")) {
        throw new HsmException(ErrorCode.INVALID_PARAMETER, file + " holds no PEM PUBLIC KEY (a transport key request)");
      }
      return o.getContent();
    } catch (IOException e) {
      throw new HsmException(ErrorCode.INVALID_PARAMETER, "cannot read the transport key request " + file + ": " + e.getMessage());
    }
  }

  /**
   * Certifies the key of the request {@code requestFile} for {@code hsmId}, and the cluster key it may receive, and
   * writes the certificate to
   * {@code out} (atomically: the waiting joiner never reads half a file).
   */
  public static X509Certificate sign(ClusterCa ca, String hsmId, Path requestFile, byte[] clusterKeyCheck, Path out)
      throws IOException {
    X509Certificate cert = ca.issueTransportCertificate(hsmId, readRequest(requestFile), clusterKeyCheck);
    writeAtomically(out, ClusterCa.pem(cert));
    return cert;
  }

  /**
   * The certificate in {@code file} when it certifies exactly {@code spki}, else null (no file yet, or one for a
   * transport key this token no longer holds). Whether the CA issued it is for the answering agent to check.
   */
  public static X509Certificate certificateFor(Path file, byte[] spki) {
    if (!Files.isRegularFile(file)) {
      return null;
    }
    X509Certificate cert = ClusterCa.readCertificate(file, "transport key certificate");
    return Arrays.equals(cert.getPublicKey().getEncoded(), spki) ? cert : null;
  }

  private static void writeAtomically(Path file, String text) throws IOException {
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    Files.writeString(tmp, text, StandardCharsets.US_ASCII);
    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  private static HsmException denied(String message) {
    return new HsmException(ErrorCode.ACCESS_DENIED, message);
  }
}
