package io.hsmbridge.cli.bench;

import io.hsmbridge.client.FailoverSender;
import io.hsmbridge.jce.HsmBridgeProvider;
import io.hsmbridge.jce.HsmKeyGenParameterSpec;
import io.hsmbridge.jce.JceConfig;
import java.io.InputStream;
import java.io.OutputStream;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.Socket;
import java.security.Key;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.Security;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * The rows of issue #13 item 5: the same ops as the client's rows, through the JCE provider ({@code
 * Signature}, {@code Cipher}, {@code Mac} of {@value HsmBridgeProvider#NAME}, one provider instance and so
 * one connection per client thread, as the client rows have), and TLS 1.3 handshakes per second of a JSSE
 * server on loopback whose key is in the cluster, beside the same server with a JDK key in memory.
 */
final class JceBench implements AutoCloseable {
  private final List<HsmBridgeProvider> providers = new ArrayList<>();
  private final JceConfig config;
  private final AtomicInteger next = new AtomicInteger();

  /**
   * @param password the crypto user's password, for the providers' logins (the keys the rows use are its own)
   */
  JceBench(String host, int frontDoorPort, java.nio.file.Path ca, String user, Supplier<char[]> password) {
    this.config = JceConfig.of(List.of(new FailoverSender.Endpoint(host, frontDoorPort)), ca, user, password);
  }

  /** Starts handing out providers from the first again: call before each measured run. */
  void rewind() {
    next.set(0);
  }

  /** The next thread's provider, made (and logged in at first use) when this many threads never ran. */
  private synchronized HsmBridgeProvider provider() {
    int i = next.getAndIncrement();
    while (providers.size() <= i) {
      providers.add(new HsmBridgeProvider(config));
    }
    return providers.get(i);
  }

  /** One client thread's JCA engine for {@code op} on the key labelled {@code label}. */
  Measurement.Worker worker(BenchOp op, String label, byte[] input) throws Exception {
    HsmBridgeProvider p = provider();
    KeyStore ks = KeyStore.getInstance(HsmBridgeProvider.NAME, p);
    ks.load(null, null);
    Key key = ks.getKey(label, null);
    if (key == null) {
      throw new IllegalStateException("no key labelled " + label + " for the JCE rows");
    }
    switch (op.alg.kind()) {
      case SIGNATURE: {
        Signature s = Signature.getInstance(op == BenchOp.RSA2048_SIGN ? "SHA256withRSA" : "SHA256withECDSA", p);
        s.initSign((PrivateKey) key);
        return engine(() -> {
          s.update(input);
          s.sign();
        });
      }
      case MAC: {
        Mac m = Mac.getInstance("HmacSHA256", p);
        m.init(key);
        return engine(() -> m.doFinal(input));
      }
      default: {
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding", p);
        c.init(Cipher.ENCRYPT_MODE, key);
        return engine(() -> c.doFinal(input));
      }
    }
  }

  /** One call of a worker. */
  private interface Step {
    void run() throws Exception;
  }

  private static Measurement.Worker engine(Step step) {
    return new Measurement.Worker() {
      @Override
      public void runOnce() throws Exception {
        step.run();
      }

      @Override
      public void close() {
        // the engines and providers outlive the run (closed with the bench)
      }
    };
  }

  /** The TLS rows: handshakes per second with the key in the cluster and with a JDK key, per key type and threads. */
  List<String> handshakes(List<Integer> threads, long warmupMillis, long measureMillis) throws Exception {
    List<String> lines = new ArrayList<>();
    rewind();
    HsmBridgeProvider p = provider();
    // JSSE looks the signature engine up among the registered providers; the handle brings it to this one.
    Security.addProvider(p);
    try {
      for (String type : new String[] {"EC", "RSA"}) {
        KeyPairGenerator g = KeyPairGenerator.getInstance(type, p);
        g.initialize(new HsmKeyGenParameterSpec("bench-tls-" + type.toLowerCase(Locale.ROOT), type.equals("EC") ? 256 : 2048));
        KeyPair inCluster = g.generateKeyPair();
        KeyPairGenerator jdkGen = KeyPairGenerator.getInstance(type);
        jdkGen.initialize(type.equals("EC") ? 256 : 2048);
        KeyPair inMemory = jdkGen.generateKeyPair();
        String sigAlg = type.equals("EC") ? "SHA256withECDSA" : "SHA256withRSA";
        for (int t : threads) {
          Measurement.Result jdk = handshakeRun(inMemory, selfSigned(inMemory, sigAlg, null), t, warmupMillis,
              measureMillis);
          Measurement.Result cluster = handshakeRun(inCluster, selfSigned(inCluster, sigAlg, p), t, warmupMillis,
              measureMillis);
          lines.add(String.format(Locale.ROOT, "%-26s %4d %12.0f %12.0f %6.2f %9.0f %9.0f",
              "tls13_handshake_" + (type.equals("EC") ? "ecdsa_p256" : "rsa2048"), t, jdk.opsPerSecond(),
              cluster.opsPerSecond(), cluster.opsPerSecond() / jdk.opsPerSecond(), jdk.p50Micros(), cluster.p50Micros()));
        }
      }
    } finally {
      Security.removeProvider(HsmBridgeProvider.NAME);
    }
    return lines;
  }

  private static X509Certificate selfSigned(KeyPair pair, String sigAlg, Provider signer) throws Exception {
    long now = System.currentTimeMillis();
    JcaContentSignerBuilder b = new JcaContentSignerBuilder(sigAlg);
    if (signer != null) {
      b.setProvider(signer);
    }
    return new JcaX509CertificateConverter().getCertificate(new JcaX509v3CertificateBuilder(new X500Name("CN=bench"),
        BigInteger.valueOf(now), new Date(now - 60_000), new Date(now + 3_600_000), new X500Name("CN=bench"),
        pair.getPublic()).build(b.build(pair.getPrivate())));
  }

  /** Full TLS 1.3 handshakes (a new client context each: no resumption) from {@code threads} clients, one echo each. */
  private static Measurement.Result handshakeRun(KeyPair pair, X509Certificate cert, int threads, long warmupMillis,
      long measureMillis) throws Exception {
    SSLContext server = SSLContext.getInstance("TLS");
    server.init(new KeyManager[] {new OneKey(pair.getPrivate(), cert)}, null, null);
    KeyStore trust = KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    trust.setCertificateEntry("bench", cert);
    TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
    tmf.init(trust);
    try (SSLServerSocket listener = (SSLServerSocket) server.getServerSocketFactory()
        .createServerSocket(0, 64, InetAddress.getLoopbackAddress())) {
      listener.setEnabledProtocols(new String[] {"TLSv1.3"});
      List<Thread> servers = new ArrayList<>();
      for (int i = 0; i < threads; i++) {
        Thread s = new Thread(() -> serve(listener), "bench-tls-server-" + i);
        s.setDaemon(true);
        s.start();
        servers.add(s);
      }
      int port = listener.getLocalPort();
      return Measurement.run(() -> engine(() -> {
        SSLContext client = SSLContext.getInstance("TLS");
        client.init(null, tmf.getTrustManagers(), null);
        try (SSLSocket s = (SSLSocket) client.getSocketFactory().createSocket(InetAddress.getLoopbackAddress(), port)) {
          s.setSoTimeout(30_000);
          s.setTcpNoDelay(true); // else Nagle and delayed ACKs add ~40 ms to every handshake's last flight
          s.getOutputStream().write(1);
          s.getOutputStream().flush();
          if (s.getInputStream().read() != 1) {
            throw new IllegalStateException("no echo");
          }
        }
      }), threads, warmupMillis, measureMillis);
    }
  }

  private static void serve(SSLServerSocket listener) {
    while (!listener.isClosed()) {
      try (Socket s = listener.accept(); InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
        s.setSoTimeout(30_000);
        s.setTcpNoDelay(true);
        out.write(in.read());
        out.flush();
      } catch (java.io.IOException e) {
        // closed at the end of the run, or a client gone: the client's failure ends the run
      }
    }
  }

  /** A server key manager with one key and its certificate. */
  private static final class OneKey extends X509ExtendedKeyManager {
    private final PrivateKey key;
    private final X509Certificate cert;

    OneKey(PrivateKey key, X509Certificate cert) {
      this.key = key;
      this.cert = cert;
    }

    private String ifType(String keyType) {
      return cert.getPublicKey().getAlgorithm().equals(keyType) ? "the-key" : null;
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
      return ifType(keyType);
    }

    @Override
    public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
      return ifType(keyType);
    }

    @Override
    public String[] getServerAliases(String keyType, Principal[] issuers) {
      return ifType(keyType) == null ? null : new String[] {"the-key"};
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
    public X509Certificate[] getCertificateChain(String alias) {
      return new X509Certificate[] {cert};
    }

    @Override
    public PrivateKey getPrivateKey(String alias) {
      return key;
    }
  }

  @Override
  public void close() {
    providers.forEach(HsmBridgeProvider::logout);
  }
}
