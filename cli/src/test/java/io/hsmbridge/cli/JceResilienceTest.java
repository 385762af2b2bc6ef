package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.jce.HsmBridgeProvider;
import io.hsmbridge.jce.HsmKeyGenParameterSpec;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.Security;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Date;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue #13 item 4 on a real 3-HSM cluster: a JCE signing loop and a JSSE TLS server under handshake load (its
 * key and certificate in the cluster, read through the provider's KeyStore) keep working while each HSM host in
 * turn is SIGKILLed and started again with {@code up}. Asserts 0 errors surfaced to the application (a
 * signature that fails or does not verify in the JDK, a handshake that fails) and no new login by the provider;
 * reports the longest stall of each loop.
 */
@Timeout(value = 900, unit = TimeUnit.SECONDS)
class JceResilienceTest {
  private static final List<String> HOSTS = List.of("hsm1", "hsm2", "hsm3");
  private static TestLogins logins;
  private static HsmBridgeProvider provider;
  private static final StringBuilder REPORT = new StringBuilder();

  @BeforeAll
  static void up() throws IOException {
    logins = TestLogins.upAndActivate("jce-resilience");
    provider = JceClusters.provider(logins.home(), logins, HOSTS.toArray(new String[0]));
    Security.addProvider(provider); // JSSE finds the engines for the handle among the registered providers
  }

  @AfterAll
  static void down() throws IOException {
    Security.removeProvider(HsmBridgeProvider.NAME);
    if (provider != null) {
      provider.logout();
    }
    logins.down("JceResilienceTest", REPORT, "jce-resilience.txt");
  }

  @Test
  void signingAndTlsRideOverTheLossOfEachHost() throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC", provider);
    g.initialize(new HsmKeyGenParameterSpec("jce-chaos", 256));
    KeyPair pair = g.generateKeyPair();
    long now = System.currentTimeMillis();
    X509Certificate cert = new JcaX509CertificateConverter().getCertificate(new JcaX509v3CertificateBuilder(
        new X500Name("CN=jce-chaos"), BigInteger.valueOf(now), new Date(now - 60_000), new Date(now + 86_400_000L),
        new X500Name("CN=jce-chaos"), pair.getPublic())
        .build(new JcaContentSignerBuilder("SHA256withECDSA").setProvider(provider).build(pair.getPrivate())));
    KeyStore store = KeyStore.getInstance(HsmBridgeProvider.NAME, provider);
    store.load(null, null);
    store.setKeyEntry("jce-chaos", pair.getPrivate(), null, new Certificate[] {cert});
    KeyManagerFactory kmf = KeyManagerFactory.getInstance("SunX509");
    kmf.init(store, new char[0]);
    SSLContext server = SSLContext.getInstance("TLS");
    server.init(kmf.getKeyManagers(), null, null);
    KeyStore trust = KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    trust.setCertificateEntry("server", cert);
    TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
    tmf.init(trust);

    AtomicBoolean running = new AtomicBoolean(true);
    List<String> errors = Collections.synchronizedList(new ArrayList<>());
    List<long[]> signMillis = Collections.synchronizedList(new ArrayList<>());
    List<long[]> handshakeMillis = Collections.synchronizedList(new ArrayList<>());
    long runStart = System.nanoTime();
    SSLServerSocket listener = (SSLServerSocket) server.getServerSocketFactory()
        .createServerSocket(0, 50, InetAddress.getLoopbackAddress());
    listener.setEnabledProtocols(new String[] {"TLSv1.3"});
    Thread acceptor = new Thread(() -> serve(listener), "tls-server");
    acceptor.start();
    Thread signer = new Thread(() -> {
      try {
        for (int i = 0; running.get() && i < 1_000_000; i++) {
          long t0 = System.nanoTime();
          byte[] m = ("message " + i).getBytes(StandardCharsets.UTF_8);
          try {
            Signature s = Signature.getInstance("SHA256withECDSA", provider);
            s.initSign(pair.getPrivate());
            s.update(m);
            byte[] sig = s.sign();
            Signature v = Signature.getInstance("SHA256withECDSA", "SunEC");
            v.initVerify(pair.getPublic());
            v.update(m);
            if (!v.verify(sig)) {
              errors.add("signature " + i + " does not verify");
            }
          } catch (Exception e) {
            errors.add("signature " + i + " at +" + msSince(runStart) + " ms: " + e);
          }
          signMillis.add(new long[] {msSince(runStart), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0)});
        }
      } catch (Throwable t) {
        errors.add("signer: " + t);
      }
    }, "jce-signer");
    Thread handshaker = new Thread(() -> {
      for (int i = 0; running.get() && i < 1_000_000; i++) {
        long t0 = System.nanoTime();
        try {
          SSLContext client = SSLContext.getInstance("TLS"); // a new context: a full handshake, no resumption
          client.init(null, tmf.getTrustManagers(), null);
          try (SSLSocket s = (SSLSocket) client.getSocketFactory().createSocket(InetAddress.getLoopbackAddress(),
              listener.getLocalPort())) {
            s.setSoTimeout(60_000);
            s.getOutputStream().write(7);
            s.getOutputStream().flush();
            if (s.getInputStream().read() != 7) {
              errors.add("handshake " + i + ": no echo");
            }
          }
        } catch (Exception e) {
          errors.add("handshake " + i + " at +" + msSince(runStart) + " ms: " + e);
        }
        handshakeMillis.add(new long[] {msSince(runStart), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0)});
      }
    }, "tls-client");
    signer.start();
    handshaker.start();
    List<String> faults = new ArrayList<>();
    try {
      Thread.sleep(3_000);
      for (String victim : HOSTS) {
        long pid = new JsonObject(Files.readString(logins.home().resolve(victim).resolve("endpoint.json"))).getLong("pid");
        ProcessHandle p = ProcessHandle.of(pid).orElseThrow();
        long killedAt = msSince(runStart);
        p.destroyForcibly();
        p.onExit().get(30, TimeUnit.SECONDS);
        Thread.sleep(2_000);
        long t0 = System.nanoTime();
        CliRun up = CliRun.run(logins.home(), "up");
        assertEquals(0, up.code, up.toString());
        faults.add(victim + " SIGKILLed at +" + killedAt + " ms, `up` took " + msSince(t0) + " ms");
        Thread.sleep(3_000);
      }
    } finally {
      running.set(false);
      signer.join(120_000);
      handshaker.join(120_000);
      listener.close();
      acceptor.join(30_000);
    }
    REPORT.append(String.join("; ", faults)).append('\n')
        .append("JCE signatures: ").append(summary(signMillis)).append("; TLS 1.3 handshakes (ECDSA key in the cluster): ")
        .append(summary(handshakeMillis)).append("; errors surfaced: ").append(errors.size())
        .append("; provider logins: ").append(provider.logins()).append('\n');
    assertTrue(errors.isEmpty(), "errors surfaced to the application: " + errors.subList(0, Math.min(10, errors.size())));
    assertTrue(signMillis.size() > 50 && handshakeMillis.size() > 20,
        "the loops ran: " + signMillis.size() + " signatures, " + handshakeMillis.size() + " handshakes");
    assertEquals(1, provider.logins(), "the provider logged in once: sessions survive the hosts' restarts");
  }

  /** The TLS server: one connection at a time, one echoed byte each. */
  private static void serve(SSLServerSocket listener) {
    while (!listener.isClosed()) {
      try (Socket s = listener.accept(); InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
        s.setSoTimeout(60_000);
        out.write(in.read());
        out.flush();
      } catch (IOException e) {
        // closed at the end of the test, or a failed connection the client counts
      }
    }
  }

  private static String summary(List<long[]> samples) {
    long max = 0;
    long at = 0;
    for (long[] s : samples) {
      if (s[1] > max) {
        max = s[1];
        at = s[0];
      }
    }
    List<Long> sorted = new ArrayList<>();
    samples.forEach(s -> sorted.add(s[1]));
    Collections.sort(sorted);
    long p999 = sorted.isEmpty() ? 0 : sorted.get(Math.min(sorted.size() - 1, (int) Math.ceil(sorted.size() * 0.999) - 1));
    return samples.size() + ", longest stall " + max + " ms (at +" + at + " ms), p99.9 " + p999 + " ms";
  }

  private static long msSince(long t0) {
    return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
  }
}
