package io.hsmbridge.cli.bench;

import java.io.BufferedReader;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.io.ByteArrayInputStream;
import java.util.Arrays;
import java.util.Base64;
import java.util.Date;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * The floor under any client-to-front-door hop on this machine: one request at a time between two JVMs on
 * loopback, a 1 KiB request and a 64-byte reply over a bare blocking socket, plain TCP and TLS 1.3 — no
 * JSON, no event loop, no hand-off to another thread, no token. Whatever a request through hsmbridge
 * adds beyond direct PKCS#11 includes at least one such round trip, so this is the least a design with
 * a process boundary can add ({@code bench} prints it beside the goal of issue #11, "added p50 ≤ 150 µs").
 *
 * <p>The echo server runs in a child JVM ({@code LinkFloor serve [--tls]}) with a throwaway self-signed
 * EC certificate that the measuring side pins; only loopback is used.
 */
public final class LinkFloor {
  static final int REQUEST_BYTES = 1024;
  static final int REPLY_BYTES = 64;

  private LinkFloor() {}

  /** p50, p99 and mean of one round trip in microseconds, over {@code count} round trips after a warm-up. */
  public record Result(boolean tls, int count, double p50Micros, double p99Micros, double meanMicros) {
    @Override
    public String toString() {
      return String.format("%-5s %,d round trips: p50 %.0f us, p99 %.0f us, mean %.0f us",
          tls ? "TLS" : "plain", count, p50Micros, p99Micros, meanMicros);
    }
  }

  /** Starts the echo server JVM, measures {@code count} round trips after {@code warmup}, stops it. */
  public static Result measure(boolean tls, int warmup, int count) throws IOException, InterruptedException {
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    ProcessBuilder pb = new ProcessBuilder(java.toString(), "-Xmx128m", "-cp", System.getProperty("java.class.path"),
        LinkFloor.class.getName(), "serve", tls ? "--tls" : "--plain").redirectErrorStream(true);
    Process server = pb.start();
    try {
      BufferedReader out = new BufferedReader(new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8));
      String line = out.readLine(); // "port <n> [cert <base64 DER>]"
      if (line == null || !line.startsWith("port ")) {
        throw new IOException("the echo server did not start: " + line);
      }
      String[] parts = line.split(" ");
      int port = Integer.parseInt(parts[1]);
      try (Socket s = tls ? tlsClient(port, Base64.getDecoder().decode(parts[3])) : new Socket(InetAddress.getLoopbackAddress(), port)) {
        s.setTcpNoDelay(true);
        DataOutputStream w = new DataOutputStream(s.getOutputStream());
        DataInputStream r = new DataInputStream(s.getInputStream());
        byte[] request = new byte[REQUEST_BYTES];
        byte[] reply = new byte[REPLY_BYTES];
        for (int i = 0; i < warmup; i++) {
          roundTrip(w, r, request, reply);
        }
        long[] nanos = new long[count];
        for (int i = 0; i < count; i++) {
          long t0 = System.nanoTime();
          roundTrip(w, r, request, reply);
          nanos[i] = System.nanoTime() - t0;
        }
        Arrays.sort(nanos);
        double mean = Arrays.stream(nanos).average().orElse(0) / 1000.0;
        return new Result(tls, count, nanos[count / 2] / 1000.0, nanos[(int) (count * 0.99)] / 1000.0, mean);
      }
    } catch (GeneralSecurityException e) {
      throw new IOException("TLS set-up failed: " + e.getMessage(), e);
    } finally {
      server.destroy();
      server.waitFor(10, TimeUnit.SECONDS);
    }
  }

  private static void roundTrip(DataOutputStream w, DataInputStream r, byte[] request, byte[] reply) throws IOException {
    w.writeInt(request.length);
    w.write(request);
    w.flush();
    int n = r.readInt();
    if (n != REPLY_BYTES) {
      throw new IOException("bad reply length " + n);
    }
    r.readFully(reply);
  }

  private static Socket tlsClient(int port, byte[] pinnedCert) throws IOException, GeneralSecurityException {
    X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509")
        .generateCertificate(new ByteArrayInputStream(pinnedCert));
    KeyStore trust = KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    trust.setCertificateEntry("floor", cert);
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(trust);
    SSLContext ctx = SSLContext.getInstance("TLSv1.3");
    ctx.init(null, tmf.getTrustManagers(), null);
    SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(InetAddress.getLoopbackAddress(), port);
    s.setEnabledProtocols(new String[] {"TLSv1.3"});
    s.startHandshake();
    return s;
  }

  /**
   * {@code measure}: both rows on standard output. {@code serve --tls|--plain}: the echo server, which prints
   * its port (and certificate) on one line and serves one client.
   */
  public static void main(String[] args) throws Exception {
    if (args.length == 1 && args[0].equals("measure")) {
      System.out.println(measure(false, 2_000, 20_000));
      System.out.println(measure(true, 2_000, 20_000));
      return;
    }
    if (args.length != 2 || !args[0].equals("serve")) {
      System.err.println("usage: LinkFloor measure | LinkFloor serve --tls|--plain");
      System.exit(2);
    }
    boolean tls = args[1].equals("--tls");
    ServerSocket listener;
    String certLine = "";
    if (tls) {
      KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
      g.initialize(256);
      KeyPair kp = g.generateKeyPair();
      X500Name name = new X500Name("CN=localhost");
      Date now = new Date();
      X509Certificate cert = new JcaX509CertificateConverter().getCertificate(new JcaX509v3CertificateBuilder(name,
          BigInteger.ONE, now, new Date(now.getTime() + 3_600_000L), name, kp.getPublic())
          .build(new JcaContentSignerBuilder("SHA256withECDSA").build(kp.getPrivate())));
      char[] pass = "throwaway".toCharArray(); // an in-memory store of a throwaway key: no secret
      KeyStore ks = KeyStore.getInstance("PKCS12");
      ks.load(null, null);
      ks.setKeyEntry("floor", kp.getPrivate(), pass, new X509Certificate[] {cert});
      KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(ks, pass);
      SSLContext ctx = SSLContext.getInstance("TLSv1.3");
      ctx.init(kmf.getKeyManagers(), null, null);
      SSLServerSocket ss = (SSLServerSocket) ctx.getServerSocketFactory().createServerSocket(0, 1, InetAddress.getLoopbackAddress());
      ss.setEnabledProtocols(new String[] {"TLSv1.3"});
      listener = ss;
      certLine = " cert " + Base64.getEncoder().encodeToString(cert.getEncoded());
    } else {
      listener = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
    }
    System.out.println("port " + listener.getLocalPort() + certLine);
    System.out.flush();
    try (Socket s = listener.accept()) {
      s.setTcpNoDelay(true);
      DataInputStream r = new DataInputStream(s.getInputStream());
      DataOutputStream w = new DataOutputStream(s.getOutputStream());
      byte[] request = new byte[REQUEST_BYTES];
      byte[] reply = new byte[REPLY_BYTES];
      while (true) {
        int n = r.readInt();
        if (n != REQUEST_BYTES) {
          return;
        }
        r.readFully(request);
        w.writeInt(reply.length);
        w.write(reply);
        w.flush();
      }
    } catch (IOException e) {
      // the measuring side closed the connection: done
    } finally {
      listener.close();
    }
  }
}
