package io.hsmbridge.agent.membership;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import java.io.IOException;
import java.io.Reader;
import java.io.StringWriter;
import java.math.BigInteger;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Set;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.X500NameBuilder;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.util.io.pem.PemObjectGenerator;

/**
 * The cluster certificate authority for event-bus TLS: made once, when the cluster is created, in a
 * directory on the machine that created it ({@code ca.pem}, and {@code ca-key.pem} readable by the owner
 * only in a 0700 directory). The CA key never leaves that machine; members receive only their own
 * certificate, their own key and {@code ca.pem}.
 *
 * <p>Keys are EC P-256; the CA is valid 10 years, member certificates 2 years (never beyond the CA).
 * Member certificates carry the member's host names / IP addresses as subjectAltName and are good for
 * both TLS server and client authentication (event-bus links are mutual TLS).
 *
 * <p>Thread-safe (immutable). {@link #toString()} never shows key material. Requires a POSIX file
 * system (permissions are part of the contract).
 */
public final class ClusterCa {
  public static final String CA_CERT_FILE = "ca.pem";
  public static final String CA_KEY_FILE = "ca-key.pem";
  public static final Duration CA_VALIDITY = Duration.ofDays(3652);
  public static final Duration MEMBER_VALIDITY = Duration.ofDays(730);

  private static final Set<PosixFilePermission> DIR_0700 = PosixFilePermissions.fromString("rwx------");
  private static final Set<PosixFilePermission> FILE_0600 = PosixFilePermissions.fromString("rw-------");
  private static final Set<PosixFilePermission> FILE_0644 = PosixFilePermissions.fromString("rw-r--r--");
  private static final String SIGNATURE_ALG = "SHA256withECDSA";
  /** Certificates start a little in the past so a member whose clock is slightly behind accepts them. */
  private static final Duration BACKDATE = Duration.ofMinutes(5);
  private static final SecureRandom RANDOM = new SecureRandom();

  private final Path dir;
  private final X509Certificate certificate;
  private final PrivateKey key;

  private ClusterCa(Path dir, X509Certificate certificate, PrivateKey key) {
    this.dir = dir;
    this.certificate = certificate;
    this.key = key;
  }

  /** A member's TLS files: its certificate, its PKCS#8 private key (0600) and the cluster CA certificate. */
  public record MemberFiles(Path certificate, Path key, Path ca) {}

  /**
   * What a certificate of this CA lets its holder be. Written into the certificate as the subject's
   * organizational unit ({@code OU=agent}, ...), so that every port can accept only the kinds it serves:
   * the Raft group takes {@link #AGENT}s only, the cluster membership agents and front doors, the client
   * endpoint (with mutual TLS on) clients. A certificate without a kind (issued before kinds existed) is
   * accepted nowhere.
   */
  public enum MemberKind {
    /** An HSM host: holds a token, is a peer of the Raft group. */
    AGENT("agent"),
    /** A front door without a token (the bridge, or a DMZ front door): joins the membership, never Raft. */
    FRONT_DOOR("front-door"),
    /**
     * A Vert.x application on the cluster's event bus ({@code cluster member-cert}): a member that sends
     * requests to the front doors, and may consume no address of hsmbridge's own (the membership refuses
     * such a state), so it never receives another application's requests.
     */
    APPLICATION("application"),
    /** An application's client certificate for the client endpoint's optional mutual TLS. */
    CLIENT("client"),
    /**
     * Not a TLS identity: a joining HSM's transport key, made inside its token, that agents may wrap the
     * cluster key to ({@link TransportCertificates}). No port accepts it; it has no TLS key usage.
     */
    TRANSPORT_KEY("transport-key");

    private final String unit;

    MemberKind(String unit) {
      this.unit = unit;
    }

    /** The OU value written into certificates of this kind. */
    public String unit() {
      return unit;
    }

    /** The kind written in {@code cert}'s subject, or null when it carries none (or an unknown one). */
    public static MemberKind of(X509Certificate cert) {
      String value = singleRdn(cert, BCStyle.OU);
      for (MemberKind k : values()) {
        if (k.unit.equals(value)) {
          return k;
        }
      }
      return null;
    }
  }

  /** The member name (CN) in {@code cert}'s subject, or null unless there is exactly one. */
  public static String memberName(X509Certificate cert) {
    return singleRdn(cert, BCStyle.CN);
  }

  private static String singleRdn(X509Certificate cert, org.bouncycastle.asn1.ASN1ObjectIdentifier type) {
    X500Name subject = X500Name.getInstance(cert.getSubjectX500Principal().getEncoded());
    org.bouncycastle.asn1.x500.RDN[] rdns = subject.getRDNs(type);
    if (rdns.length != 1) {
      return null;
    }
    return org.bouncycastle.asn1.x500.style.IETFUtils.valueToString(rdns[0].getFirst().getValue());
  }

  /**
   * Creates a new CA in {@code dir} (created 0700 if missing; an existing directory must not already
   * hold a CA, and is tightened to 0700).
   *
   * @param clusterName goes into the CA's subject so certificates of different clusters are told apart
   */
  public static ClusterCa create(Path dir, String clusterName) {
    try {
      createPrivateDir(dir);
      if (Files.exists(dir.resolve(CA_CERT_FILE)) || Files.exists(dir.resolve(CA_KEY_FILE))) {
        throw invalid("a cluster CA already exists in " + dir);
      }
      KeyPair pair = newKeyPair();
      X500Name subject = new X500NameBuilder(BCStyle.INSTANCE)
          .addRDN(BCStyle.O, "hsmbridge")
          .addRDN(BCStyle.CN, "hsmbridge cluster CA " + clusterName)
          .build();
      Instant now = Instant.now();
      X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(subject, serial(),
          Date.from(now.minus(BACKDATE)), Date.from(now.plus(CA_VALIDITY)), subject, pair.getPublic());
      JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
      builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
      builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
      builder.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(pair.getPublic()));
      X509Certificate cert = sign(builder, pair.getPrivate());
      // Key first: if anything fails after it, create() refuses to overwrite and the operator sees why.
      writeNew(dir.resolve(CA_KEY_FILE), pem(new JcaPKCS8Generator(pair.getPrivate(), null)), FILE_0600);
      writeNew(dir.resolve(CA_CERT_FILE), pem(cert), FILE_0644);
      return new ClusterCa(dir, cert, pair.getPrivate());
    } catch (IOException | GeneralSecurityException | OperatorCreationException e) {
      throw invalid("cannot create the cluster CA in " + dir + ": " + e.getMessage());
    }
  }

  /** Loads the CA made by {@link #create} (on the machine that created the cluster). */
  public static ClusterCa load(Path dir) {
    X509Certificate cert = readCertificate(dir.resolve(CA_CERT_FILE), "cluster CA certificate");
    PrivateKey key = readPrivateKey(dir.resolve(CA_KEY_FILE), "cluster CA key");
    return new ClusterCa(dir, cert, key);
  }

  /**
   * Issues a member certificate and key into {@code outDir} as {@code <name>.pem} and
   * {@code <name>-key.pem} (0600), and copies {@code ca.pem} there when it is another directory.
   *
   * @param name file-name stem and certificate CN ({@code [A-Za-z0-9_.-]{1,64}})
   * @param kind what the holder may be (see {@link MemberKind}); written as the subject's OU
   * @param hosts the member's addresses as clients will dial them: IP literals become IP SANs, anything
   *     else a DNS SAN (e.g. {@code 127.0.0.1}, {@code localhost}, {@code hsm2.example.net})
   */
  public MemberFiles issueMember(String name, MemberKind kind, List<String> hosts, Path outDir) {
    if (kind == null) {
      throw invalid("a member certificate needs a kind (agent, front-door or client)");
    }
    checkName(name, "member name");
    if (hosts == null || hosts.isEmpty()) {
      throw invalid("a member certificate needs at least one host name or IP address");
    }
    try {
      KeyPair pair = newKeyPair();
      X509v3CertificateBuilder builder = endEntity(name, kind, pair.getPublic(), KeyUsage.digitalSignature);
      builder.addExtension(Extension.extendedKeyUsage, false,
          new ExtendedKeyUsage(new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
      builder.addExtension(Extension.subjectAlternativeName, false, sans(hosts));
      X509Certificate cert = sign(builder, key);

      Files.createDirectories(outDir);
      Path keyFile = outDir.resolve(name + "-key.pem");
      Path certFile = outDir.resolve(name + ".pem");
      writeNew(keyFile, pem(new JcaPKCS8Generator(pair.getPrivate(), null)), FILE_0600);
      writeNew(certFile, pem(cert), FILE_0644);
      Path ca = outDir.resolve(CA_CERT_FILE);
      if (!Files.exists(ca)) {
        writeNew(ca, pem(certificate), FILE_0644);
      }
      return new MemberFiles(certFile, keyFile, ca);
    } catch (IOException | GeneralSecurityException | OperatorCreationException e) {
      throw invalid("cannot issue a member certificate for " + name + ": " + e.getMessage());
    }
  }

  /**
   * Certifies a joining HSM's transport key (an RSA public key whose private half its token made and cannot
   * export): kind {@link MemberKind#TRANSPORT_KEY}, CN the HSM id, key usage keyEncipherment only. Agents
   * wrap the cluster key to no other key ({@link TransportCertificates#verify}). Issue one only for a key
   * read from that HSM's own token (its request file), never for a key someone sends in.
   *
   * @param spki the transport key's SubjectPublicKeyInfo (RSA, at least 2048 bits)
   * @param clusterKeyCheck the cluster key's check value (a member's {@code cluster-key-check}): the joiner
   *     installs no other key, whoever answers it
   */
  public X509Certificate issueTransportCertificate(String hsmId, byte[] spki, byte[] clusterKeyCheck) {
    checkName(hsmId, "an HSM id");
    if (clusterKeyCheck == null || clusterKeyCheck.length != io.hsmbridge.pkcs11.ClusterKeys.CHECK_VALUE_BYTES) {
      throw invalid("a cluster key check value is " + io.hsmbridge.pkcs11.ClusterKeys.CHECK_VALUE_BYTES
          + " bytes (" + 2 * io.hsmbridge.pkcs11.ClusterKeys.CHECK_VALUE_BYTES + " hex digits)");
    }
    java.security.PublicKey transportKey = TransportCertificates.rsaKey(spki, "transport key request");
    try {
      // Only key transport: no TLS port, no signature check accepts it.
      X509v3CertificateBuilder builder = endEntity(hsmId, MemberKind.TRANSPORT_KEY, transportKey, KeyUsage.keyEncipherment);
      builder.addExtension(TransportCertificates.CLUSTER_KEY_CHECK_OID, false,
          new org.bouncycastle.asn1.DEROctetString(clusterKeyCheck));
      return sign(builder, key);
    } catch (IOException | GeneralSecurityException | OperatorCreationException e) {
      throw invalid("cannot issue a transport key certificate for " + hsmId + ": " + e.getMessage());
    }
  }

  /**
   * What every certificate this CA issues to a member has: subject O=hsmbridge, OU=the kind, CN=the name; valid
   * from a little in the past for {@link #MEMBER_VALIDITY}, never beyond the CA; no CA; the given key usage
   * (critical); subject and authority key identifiers. The caller adds what its kind needs, then signs.
   */
  private X509v3CertificateBuilder endEntity(String name, MemberKind kind, java.security.PublicKey subjectKey,
      int keyUsage) throws IOException, GeneralSecurityException {
    X500Name subject = new X500NameBuilder(BCStyle.INSTANCE)
        .addRDN(BCStyle.O, "hsmbridge")
        .addRDN(BCStyle.OU, kind.unit())
        .addRDN(BCStyle.CN, name)
        .build();
    Instant now = Instant.now();
    Instant notAfter = now.plus(MEMBER_VALIDITY);
    Instant caNotAfter = certificate.getNotAfter().toInstant();
    if (notAfter.isAfter(caNotAfter)) {
      notAfter = caNotAfter;
    }
    X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(certificate, serial(),
        Date.from(now.minus(BACKDATE)), Date.from(notAfter), subject, subjectKey);
    JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
    builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
    builder.addExtension(Extension.keyUsage, true, new KeyUsage(keyUsage));
    builder.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(subjectKey));
    builder.addExtension(Extension.authorityKeyIdentifier, false, ext.createAuthorityKeyIdentifier(certificate));
    return builder;
  }

  /** A member name or HSM id: it becomes a CN and a file-name stem. */
  private static void checkName(String name, String what) {
    if (name == null || !name.matches("[A-Za-z0-9_.-]{1,64}")) {
      throw invalid(what + " must be 1..64 letters, digits, '.', '-' or '_'");
    }
  }

  /** The cluster CA certificate of a member configured with {@code cluster}: the only trust anchor of its ports. */
  public static X509Certificate trustAnchor(ClusterConfig cluster) {
    return readCertificate(cluster.tlsCa(), "cluster CA certificate (cluster.tls.ca)");
  }

  public X509Certificate certificate() {
    return certificate;
  }

  public Path directory() {
    return dir;
  }

  public Path certificateFile() {
    return dir.resolve(CA_CERT_FILE);
  }

  @Override
  public String toString() {
    return "ClusterCa[dir=" + dir + ", subject=" + certificate.getSubjectX500Principal().getName() + "]";
  }

  /** Reads one X.509 certificate from a PEM file; the error names {@code what}. */
  static X509Certificate readCertificate(Path file, String what) {
    try (var in = Files.newInputStream(file)) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    } catch (IOException | GeneralSecurityException | ClassCastException e) {
      throw invalid("cannot read the " + what + " " + file + ": " + e.getMessage());
    }
  }

  /** Reads a PEM private key (PKCS#8, or a traditional EC/RSA key); the error names {@code what}. */
  static PrivateKey readPrivateKey(Path file, String what) {
    try (Reader r = Files.newBufferedReader(file, StandardCharsets.US_ASCII); PEMParser parser = new PEMParser(r)) {
      Object o = parser.readObject();
      JcaPEMKeyConverter converter = new JcaPEMKeyConverter();
      if (o instanceof PrivateKeyInfo info) {
        return converter.getPrivateKey(info);
      }
      if (o instanceof org.bouncycastle.openssl.PEMKeyPair pair) {
        return converter.getKeyPair(pair).getPrivate();
      }
      // Never echo what was found: it might be key material in an unexpected form.
      throw invalid("the " + what + " " + file + " holds no unencrypted PEM private key");
    } catch (IOException e) {
      throw invalid("cannot read the " + what + " " + file + ": " + e.getMessage());
    }
  }

  private static void createPrivateDir(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      Path parent = dir.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(DIR_0700));
    }
    // createDirectory honours the umask; set the bits explicitly.
    Files.setPosixFilePermissions(dir, DIR_0700);
  }

  /** Creates the file with its final permissions before any byte is written (no readable window). */
  private static void writeNew(Path file, String content, Set<PosixFilePermission> perms) throws IOException {
    try (SeekableByteChannel ch = Files.newByteChannel(file,
        Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE), PosixFilePermissions.asFileAttribute(perms))) {
      ch.write(ByteBuffer.wrap(content.getBytes(StandardCharsets.US_ASCII)));
    } catch (FileAlreadyExistsException e) {
      throw new IOException(file + " already exists; refusing to overwrite it");
    }
    Files.setPosixFilePermissions(file, perms);
  }

  private static KeyPair newKeyPair() throws GeneralSecurityException {
    KeyPairGenerator gen = KeyPairGenerator.getInstance("EC");
    gen.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
    return gen.generateKeyPair();
  }

  private static X509Certificate sign(X509v3CertificateBuilder builder, PrivateKey signer)
      throws OperatorCreationException, GeneralSecurityException {
    return new JcaX509CertificateConverter().getCertificate(
        builder.build(new JcaContentSignerBuilder(SIGNATURE_ALG).build(signer)));
  }

  private static BigInteger serial() {
    return new BigInteger(159, RANDOM).setBit(0);
  }

  private static GeneralNames sans(List<String> hosts) {
    List<GeneralName> names = new ArrayList<>();
    for (String h : hosts) {
      String host = h == null ? "" : h.trim();
      if (host.isEmpty()) {
        throw invalid("empty host name in a member certificate request");
      }
      names.add(isIpLiteral(host) ? new GeneralName(GeneralName.iPAddress, host) : new GeneralName(GeneralName.dNSName, host));
    }
    return new GeneralNames(names.toArray(new GeneralName[0]));
  }

  static boolean isIpLiteral(String host) {
    if (host.matches("[0-9.]+") || host.contains(":")) {
      try {
        // A literal never triggers a DNS lookup.
        return InetAddress.getByName(host) != null;
      } catch (IOException e) {
        return false;
      }
    }
    return false;
  }

  static String pem(X509Certificate cert) throws IOException {
    StringWriter s = new StringWriter();
    try (JcaPEMWriter pw = new JcaPEMWriter(s)) {
      pw.writeObject(cert);
    }
    return s.toString();
  }

  private static String pem(PemObjectGenerator key) throws IOException {
    StringWriter s = new StringWriter();
    try (JcaPEMWriter pw = new JcaPEMWriter(s)) {
      pw.writeObject(key);
    }
    return s.toString();
  }

  private static HsmException invalid(String message) {
    return new HsmException(ErrorCode.CONFIG_INVALID, message);
  }
}
