package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.jce.HsmBridgeProvider;
import io.hsmbridge.jce.HsmKeyGenParameterSpec;
import io.hsmbridge.jce.HsmPrivateKey;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.Security;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.Date;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue #13 item 3, certificates and TLS with keys in a real one-HSM cluster: Bouncy Castle's
 * {@code JcaContentSignerBuilder} with the provider signs a PKCS#10 request and an X.509 certificate that the
 * JDK verifies; the certificate is stored beside its key in the cluster through the provider's KeyStore; a
 * JSSE server whose KeyManager comes from that KeyStore (a new provider instance: the chain is read back from
 * the cluster) completes TLS 1.3 and 1.2 handshakes with an ordinary JDK client, with an RSA and an ECDSA key.
 */
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class JceTlsTest {
  private static final int HANDSHAKES = 5;
  private static Path home;
  private static TestLogins logins;
  private static HsmBridgeProvider provider;

  @BeforeAll
  static void up() throws IOException {
    logins = JceClusters.upOneHsm("jce-tls");
    home = logins.home();
    provider = JceClusters.provider(home, logins, "hsm1");
    Security.addProvider(provider);
  }

  @AfterAll
  static void down() throws IOException {
    JceClusters.down(logins, provider, "JceTlsTest");
  }

  @Test
  void rsaKeySignsCsrAndCertificateAndServesTls() throws Exception {
    serveTlsWith("RSA", 2048, "SHA256withRSA", "tls-rsa");
  }

  @Test
  void ecKeySignsCsrAndCertificateAndServesTls() throws Exception {
    serveTlsWith("EC", 256, "SHA256withECDSA", "tls-ec");
  }

  /** The operator's side of the same chains: {@code key certificates} prints, stores (--set PEM) and removes them. */
  @Test
  void theCliPrintsStoresAndClearsAChain() throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC", provider);
    g.initialize(new HsmKeyGenParameterSpec("cli-chain", 256));
    KeyPair pair = g.generateKeyPair();
    String keyId = ((HsmPrivateKey) pair.getPrivate()).keyId();
    X509Certificate cert = selfSigned(pair, "SHA256withECDSA", "cli-chain");
    Path pem = home.resolve("cli-chain.pem");
    Files.writeString(pem, "-----BEGIN CERTIFICATE-----\n"
        + java.util.Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(cert.getEncoded())
        + "\n-----END CERTIFICATE-----\n");
    CliRun set = CliRun.run(home, logins.cu(), "key", "certificates", keyId, "--set", pem.toString());
    assertEquals(0, set.code, set.toString());
    KeyStore store = KeyStore.getInstance(HsmBridgeProvider.NAME, provider);
    store.load(null, null);
    assertArrayEquals(cert.getEncoded(), store.getCertificateChain("cli-chain")[0].getEncoded());
    CliRun print = CliRun.run(home, logins.cu(), "key", "certificates", keyId);
    assertEquals(0, print.code, print.toString());
    assertEquals(cert, java.security.cert.CertificateFactory.getInstance("X.509")
        .generateCertificate(new java.io.ByteArrayInputStream(print.out.getBytes(java.nio.charset.StandardCharsets.US_ASCII))));
    // Another key's certificate is refused by the cluster, and nothing changes.
    KeyPair other = KeyPairGenerator.getInstance("EC").generateKeyPair();
    Files.writeString(pem, "-----BEGIN CERTIFICATE-----\n" + java.util.Base64.getMimeEncoder(64, new byte[] {'\n'})
        .encodeToString(selfSignedInMemory(other).getEncoded()) + "\n-----END CERTIFICATE-----\n");
    CliRun wrong = CliRun.run(home, logins.cu(), "key", "certificates", keyId, "--set", pem.toString());
    assertTrue(wrong.code != 0 && wrong.err.contains("INVALID_PARAMETER"), wrong.toString());
    assertArrayEquals(cert.getEncoded(), store.getCertificateChain("cli-chain")[0].getEncoded());
    CliRun clear = CliRun.run(home, logins.cu(), "key", "certificates", keyId, "--clear");
    assertEquals(0, clear.code, clear.toString());
    assertEquals(null, store.getCertificateChain("cli-chain"));
  }

  private static X509Certificate selfSigned(KeyPair pair, String sigAlg, String cn) throws Exception {
    long now = System.currentTimeMillis();
    return new JcaX509CertificateConverter().getCertificate(new JcaX509v3CertificateBuilder(new X500Name("CN=" + cn),
        BigInteger.valueOf(now), new Date(now - 60_000), new Date(now + 86_400_000L), new X500Name("CN=" + cn),
        pair.getPublic()).build(new JcaContentSignerBuilder(sigAlg).setProvider(provider).build(pair.getPrivate())));
  }

  private static X509Certificate selfSignedInMemory(KeyPair pair) throws Exception {
    long now = System.currentTimeMillis();
    return new JcaX509CertificateConverter().getCertificate(new JcaX509v3CertificateBuilder(new X500Name("CN=other"),
        BigInteger.valueOf(now), new Date(now - 60_000), new Date(now + 86_400_000L), new X500Name("CN=other"),
        pair.getPublic()).build(new JcaContentSignerBuilder("SHA256withECDSA").build(pair.getPrivate())));
  }

  private static void serveTlsWith(String keyAlg, int size, String sigAlg, String alias) throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance(keyAlg, provider);
    g.initialize(new HsmKeyGenParameterSpec(alias, size));
    KeyPair pair = g.generateKeyPair();
    String jdkProvider = keyAlg.equals("EC") ? "SunEC" : "SunRsaSign";

    ContentSigner signer = new JcaContentSignerBuilder(sigAlg).setProvider(provider).build(pair.getPrivate());
    PKCS10CertificationRequest csr = new JcaPKCS10CertificationRequestBuilder(new X500Name("CN=" + alias),
        pair.getPublic()).build(signer);
    assertTrue(csr.isSignatureValid(new JcaContentVerifierProviderBuilder().setProvider(jdkProvider)
        .build(pair.getPublic())), "the JDK (" + jdkProvider + ") verifies the CSR signed in the cluster");

    long now = System.currentTimeMillis();
    X509CertificateHolder holder = new JcaX509v3CertificateBuilder(new X500Name("CN=" + alias), BigInteger.valueOf(now),
        new Date(now - 60_000), new Date(now + 86_400_000L), new X500Name("CN=" + alias), pair.getPublic())
        .build(new JcaContentSignerBuilder(sigAlg).setProvider(provider).build(pair.getPrivate()));
    X509Certificate cert = new JcaX509CertificateConverter().getCertificate(holder);
    cert.verify(pair.getPublic(), jdkProvider); // throws when the signature is not the key's

    KeyStore store = KeyStore.getInstance(HsmBridgeProvider.NAME, provider);
    store.load(null, null);
    store.setKeyEntry(alias, pair.getPrivate(), null, new Certificate[] {cert});

    // A second provider instance, as another process would have: the chain comes back from the cluster.
    HsmBridgeProvider other = JceClusters.provider(home, logins, "hsm1");
    try {
      KeyStore fromCluster = KeyStore.getInstance(HsmBridgeProvider.NAME, other);
      fromCluster.load(null, null);
      Certificate[] chain = fromCluster.getCertificateChain(alias);
      assertNotNull(chain, "the chain stored beside " + alias);
      assertArrayEquals(cert.getEncoded(), chain[0].getEncoded());
      assertEquals(alias, fromCluster.getCertificateAlias(cert));
      assertTrue(fromCluster.getKey(alias, null) instanceof HsmPrivateKey);

      KeyManagerFactory kmf = KeyManagerFactory.getInstance("SunX509");
      kmf.init(fromCluster, new char[0]);
      X509ExtendedKeyManager keys = new OnlyAlias((X509ExtendedKeyManager) kmf.getKeyManagers()[0], alias);
      SSLContext server = SSLContext.getInstance("TLS");
      server.init(new javax.net.ssl.KeyManager[] {keys}, null, null);
      SSLContext client = clientTrusting(cert);
      for (String protocol : new String[] {"TLSv1.3", "TLSv1.2"}) {
        for (int i = 0; i < HANDSHAKES; i++) {
          handshake(server, client, protocol);
        }
      }
    } finally {
      other.logout();
    }
  }

  /** One handshake and one echoed byte between a JSSE server on loopback and an ordinary JDK client. */
  private static void handshake(SSLContext server, SSLContext client, String protocol) throws Exception {
    try (SSLServerSocket listener = (SSLServerSocket) server.getServerSocketFactory()
        .createServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      listener.setEnabledProtocols(new String[] {protocol});
      Thread serving = new Thread(() -> {
        try (Socket s = listener.accept(); InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
          out.write(in.read());
          out.flush();
        } catch (IOException e) {
          // the client's assertion reports it
        }
      }, "tls-server");
      serving.start();
      try (SSLSocket s = (SSLSocket) client.getSocketFactory().createSocket(InetAddress.getLoopbackAddress(),
          listener.getLocalPort())) {
        s.setEnabledProtocols(new String[] {protocol});
        s.setSoTimeout(30_000);
        s.getOutputStream().write(42);
        s.getOutputStream().flush();
        assertEquals(42, s.getInputStream().read(), "echo over " + protocol);
        assertEquals(protocol, s.getSession().getProtocol());
      }
      serving.join(30_000);
    }
  }

  private static SSLContext clientTrusting(X509Certificate cert) throws Exception {
    KeyStore trust = KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    trust.setCertificateEntry("server", cert);
    TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
    tmf.init(trust);
    SSLContext c = SSLContext.getInstance("TLS");
    c.init(null, tmf.getTrustManagers(), null);
    return c;
  }

  /** The KeyStore's key manager, offering one alias only (so that each test's key, RSA or EC, is the one used). */
  private static final class OnlyAlias extends X509ExtendedKeyManager {
    private final X509ExtendedKeyManager keys;
    private final String alias;

    OnlyAlias(X509ExtendedKeyManager keys, String alias) {
      this.keys = keys;
      this.alias = alias;
    }

    private String ifOffered(String[] offered) {
      return offered != null && Arrays.asList(offered).contains(alias) ? alias : null;
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
      return ifOffered(keys.getServerAliases(keyType, issuers));
    }

    @Override
    public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
      return ifOffered(keys.getServerAliases(keyType, issuers));
    }

    @Override
    public String[] getServerAliases(String keyType, Principal[] issuers) {
      String a = ifOffered(keys.getServerAliases(keyType, issuers));
      return a == null ? null : new String[] {a};
    }

    @Override
    public String[] getClientAliases(String keyType, Principal[] issuers) {
      return null;
    }

    @Override
    public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
      return null;
    }

    @Override
    public X509Certificate[] getCertificateChain(String a) {
      return keys.getCertificateChain(a);
    }

    @Override
    public PrivateKey getPrivateKey(String a) {
      return keys.getPrivateKey(a);
    }
  }
}
