package io.hsmbridge.client;

import io.hsmbridge.protocol.ErrorCode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.Collection;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

/**
 * How a {@link BridgeClient} speaks TLS to the client endpoint: TLS 1.3, the cluster CA as the ONLY
 * trust anchor (pinned: the JDK's public CAs are not consulted), the server's name or address checked
 * against its certificate's subjectAltName, and optionally a client certificate (PEM, kind
 * {@code client}) for an endpoint that requires mutual TLS.
 *
 * <p>Immutable and thread-safe; build one and share it between connections. The private key is read once
 * and held only inside the SSL context; {@link #toString()} shows file names, never key material.
 */
public final class ClientTls {
  private static final String PROTOCOL = "TLSv1.3";
  private static final Pattern KEY_BLOCK = Pattern.compile(
      "-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\\s]+)-----END PRIVATE KEY-----");

  private final Path ca;
  private final Path clientCert;
  private final SSLContext context;

  private ClientTls(Path ca, Path clientCert, SSLContext context) {
    this.ca = ca;
    this.clientCert = clientCert;
    this.context = context;
  }

  /**
   * Trusts exactly the CA certificate(s) in {@code caPem} (the cluster's {@code ca.pem}).
   *
   * @throws HsmBridgeException CONFIG_INVALID when the file cannot be read as PEM certificates
   */
  public static ClientTls pinning(Path caPem) {
    return build(caPem, null, null);
  }

  /**
   * Also presents a client certificate (PEM) and its PKCS#8 PEM private key, for an endpoint with
   * {@code bridge.tls.clientAuth=required}.
   */
  public ClientTls withClientCertificate(Path certPem, Path keyPem) {
    return build(ca, Objects.requireNonNull(certPem, "certPem"), Objects.requireNonNull(keyPem, "keyPem"));
  }

  /** The pinned CA file. */
  public Path ca() {
    return ca;
  }

  private static ClientTls build(Path caPem, Path certPem, Path keyPem) {
    Objects.requireNonNull(caPem, "caPem");
    try {
      KeyStore trust = KeyStore.getInstance("PKCS12");
      trust.load(null, null);
      int i = 0;
      for (Certificate c : readCertificates(caPem)) {
        trust.setCertificateEntry("ca-" + i++, c);
      }
      if (i == 0) {
        throw invalid("no certificate in the CA file " + caPem);
      }
      TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
      tmf.init(trust);
      KeyManager[] keys = null;
      if (certPem != null) {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        char[] none = new char[0];
        ks.setKeyEntry("client", readKey(keyPem), none, readCertificates(certPem).toArray(new Certificate[0]));
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, none);
        keys = kmf.getKeyManagers();
      }
      SSLContext ctx = SSLContext.getInstance(PROTOCOL);
      ctx.init(keys, tmf.getTrustManagers(), new SecureRandom());
      return new ClientTls(caPem, certPem, ctx);
    } catch (IOException | GeneralSecurityException e) {
      throw invalid("cannot set up TLS with CA " + caPem + (certPem == null ? "" : " and client certificate " + certPem)
          + ": " + e.getMessage());
    }
  }

  /**
   * Wraps a connected socket and completes the handshake: TLS 1.3 only, the host name checked against the
   * certificate (an IP address against its IP SANs).
   */
  SSLSocket handshake(java.net.Socket plain, String host, int port, int timeoutMs) throws IOException {
    SSLSocket s = (SSLSocket) context.getSocketFactory().createSocket(plain, host, port, true);
    SSLParameters p = s.getSSLParameters();
    p.setProtocols(new String[] {PROTOCOL});
    p.setEndpointIdentificationAlgorithm("HTTPS");
    s.setSSLParameters(p);
    s.setSoTimeout(timeoutMs);
    s.startHandshake();
    return s;
  }

  private static Collection<? extends Certificate> readCertificates(Path file) throws IOException, GeneralSecurityException {
    try (InputStream in = Files.newInputStream(file)) {
      Collection<? extends Certificate> certs = CertificateFactory.getInstance("X.509").generateCertificates(in);
      for (Certificate c : certs) {
        if (!(c instanceof X509Certificate)) {
          throw new GeneralSecurityException("not an X.509 certificate in " + file);
        }
      }
      return certs;
    }
  }

  /** A PKCS#8 PEM key (what the cluster CA issues), EC or RSA. Never echoes the file's content. */
  private static PrivateKey readKey(Path file) throws IOException, GeneralSecurityException {
    Matcher m = KEY_BLOCK.matcher(Files.readString(file, StandardCharsets.US_ASCII));
    if (!m.find()) {
      throw new GeneralSecurityException("no unencrypted PKCS#8 'PRIVATE KEY' block in " + file);
    }
    byte[] der = Base64.getMimeDecoder().decode(m.group(1));
    PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(der);
    for (String alg : new String[] {"EC", "RSA", "Ed25519"}) {
      try {
        return KeyFactory.getInstance(alg).generatePrivate(spec);
      } catch (GeneralSecurityException e) {
        // try the next algorithm
      }
    }
    throw new GeneralSecurityException("the private key in " + file + " is not an EC, RSA or Ed25519 key");
  }

  private static HsmBridgeException invalid(String message) {
    return new HsmBridgeException(ErrorCode.CONFIG_INVALID, message);
  }

  @Override
  public String toString() {
    return "ClientTls[ca=" + ca + (clientCert == null ? "" : ", clientCert=" + clientCert) + "]";
  }
}
