package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.examples.JavaGuideExamples;
import io.hsmbridge.jce.HsmBridgeProvider;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyStore;
import java.security.Provider;
import java.security.Security;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue #13 item 6: docs/java.md shows exactly the code of {@link JavaGuideExamples} (each {@code <!-- snippet:
 * NAME -->} block equals the example's {@code docs:start NAME} region), and that code runs on a real one-HSM
 * cluster with the results the guide promises: a signature the JDK verifies, an AES-GCM round trip, a CSR and
 * a certificate stored beside the key, a TLS server with the cluster's key that a JDK client talks to.
 */
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class JavaGuideTest {
  private static final Path GUIDE = Path.of("..", "docs", "java.md");
  private static final Path EXAMPLES = Path.of("src", "test", "java", "io", "hsmbridge", "examples",
      "JavaGuideExamples.java");
  private static Path home;
  private static TestLogins logins;
  private static Provider provider;

  @BeforeAll
  static void up() throws IOException {
    logins = JceClusters.upOneHsm("java-guide");
    home = logins.home();
    // The configuration file of the guide, pointing at this cluster.
    Path config = home.resolve("hsmbridge-jce.properties");
    Files.writeString(config, "endpoints=" + JceClusters.endpoint(home, "hsm1") + "\nca=" + JceClusters.ca(home)
        + "\nuser=" + TestLogins.CRYPTO_USER + "\npasswordFile=" + logins.passwordFile(TestLogins.CRYPTO_USER) + "\n");
    provider = JavaGuideExamples.register(config);
  }

  @AfterAll
  static void down() throws IOException {
    JceClusters.down(logins, provider, "JavaGuideTest");
  }

  @Test
  void theGuideShowsTheCodeTheTestsRun() throws IOException {
    Map<String, String> regions = regions(Files.readString(EXAMPLES));
    Map<String, String> snippets = snippets(Files.readString(GUIDE));
    assertEquals(java.util.Set.of("register", "sign", "aes", "csr", "tls", "typed", "vertx", "eventbus"), regions.keySet(),
        "the examples' regions (a region the pattern misses would leave its code unchecked)");
    assertEquals(regions.keySet(), snippets.keySet(), "every example region is in the guide, and only those");
    regions.forEach((name, code) -> assertEquals(code, snippets.get(name), "docs/java.md snippet " + name));
  }

  @Test
  void theExamplesRunOnACluster() throws Exception {
    byte[] message = "pay 10 EUR to Bob".getBytes(StandardCharsets.UTF_8);
    byte[][] signature = new byte[1][];
    KeyPair pair = JavaGuideExamples.makeAndSign(message, signature);
    Signature jdk = Signature.getInstance("SHA256withECDSA", "SunEC");
    jdk.initVerify(pair.getPublic());
    jdk.update(message);
    assertTrue(jdk.verify(signature[0]), "the JDK verifies the guide's signature");

    byte[] aad = "order 42".getBytes(StandardCharsets.UTF_8);
    assertArrayEquals(message, JavaGuideExamples.encryptAndDecrypt(message, aad));

    byte[] typed = JavaGuideExamples.typedClient(JceClusters.endpoint(home, "hsm1").toString(), JceClusters.ca(home),
        JavaGuideTest::password, message);
    assertTrue(typed.length > 0);
    io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
    try (io.hsmbridge.client.HsmClient hsm = io.hsmbridge.client.HsmClient.connect(io.hsmbridge.client.HsmClient.options()
        .endpoints(JceClusters.endpoint(home, "hsm1").toString()).ca(JceClusters.ca(home)).user(TestLogins.CRYPTO_USER)
        .password(JavaGuideTest::password))) {
      io.hsmbridge.client.Signer signer = hsm.keys().find("typed-signer").get(0)
          .signer(io.hsmbridge.protocol.Algorithm.ECDSA_SHA256);
      assertTrue(JavaGuideExamples.signOnContext(vertx.getOrCreateContext(), signer, message)
          .get(30, TimeUnit.SECONDS), "the future completed on the Vert.x context that called");
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }

    Path member = Files.createTempDirectory("hsmbridge-guide-member").resolve("guide-app");
    CliRun cert0 = CliRun.run(home, "cluster", "member-cert", "guide-app", "--out", member.toString());
    assertEquals(0, cert0.code, cert0.toString());
    byte[] overBus = JavaGuideExamples.eventBusClient(member.resolve("guide-app.properties"), JavaGuideTest::password, message);
    assertTrue(overBus.length > 0, "a signature over the cluster's event bus");

    X509Certificate cert = JavaGuideExamples.csrAndCertificate("payments-signer");
    cert.verify(pair.getPublic(), "SunEC");
    try (SSLServerSocket server = JavaGuideExamples.tlsServer()) {
      Thread serving = new Thread(() -> {
        try (Socket s = server.accept(); InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
          out.write(in.read());
        } catch (IOException e) {
          // the client's assertion reports it
        }
      });
      serving.start();
      KeyStore trust = KeyStore.getInstance("PKCS12");
      trust.load(null, null);
      trust.setCertificateEntry("payments", cert);
      TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
      tmf.init(trust);
      SSLContext client = SSLContext.getInstance("TLS");
      client.init(null, tmf.getTrustManagers(), null);
      try (SSLSocket s = (SSLSocket) client.getSocketFactory().createSocket(server.getInetAddress(),
          server.getLocalPort())) {
        s.setSoTimeout(30_000);
        s.getOutputStream().write(5);
        assertEquals(5, s.getInputStream().read(), "a JDK client talks to the guide's TLS server");
        assertFalse(s.getSession().getCipherSuite().isEmpty());
      }
      serving.join(30_000);
    }
  }

  private static char[] password() {
    return logins.password(TestLogins.CRYPTO_USER);
  }


  /** {@code // docs:start NAME} ... {@code // docs:end NAME} of the examples, dedented. */
  static Map<String, String> regions(String source) {
    Map<String, String> out = new LinkedHashMap<>();
    Matcher m = Pattern.compile("// docs:start (\\S+)\\n(.*?)\\n\\s*// docs:end \\1", Pattern.DOTALL).matcher(source);
    while (m.find()) {
      out.put(m.group(1), dedent(m.group(2)));
    }
    return out;
  }

  /** The ```java block after each {@code <!-- snippet: NAME -->} of the guide. */
  static Map<String, String> snippets(String guide) {
    Map<String, String> out = new LinkedHashMap<>();
    Matcher m = Pattern.compile("<!-- snippet: (\\S+) -->\\s*```java\\n(.*?)\\n```", Pattern.DOTALL).matcher(guide);
    while (m.find()) {
      out.put(m.group(1), dedent(m.group(2)));
    }
    return out;
  }

  private static String dedent(String block) {
    List<String> lines = new ArrayList<>(List.of(block.split("\n", -1)));
    int indent = Integer.MAX_VALUE;
    for (String l : lines) {
      if (!l.isBlank()) {
        indent = Math.min(indent, l.length() - l.stripLeading().length());
      }
    }
    StringBuilder b = new StringBuilder();
    for (String l : lines) {
      b.append(l.isBlank() ? "" : l.substring(indent)).append('\n');
    }
    return b.toString().stripTrailing();
  }
}
