package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.agent.membership.ClusterCa;
import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.ClientTls;
import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;

/**
 * Issue #10, item 3: the client endpoint attacked as an attacker on the same host would, against a real
 * cluster ({@code up --hsms 1}: one agent process and the bridge process, launched as {@code up} launches
 * them), the bridge restarted with small limits so that timeouts show within a test. Every attack runs
 * beside a legitimate client (TLS pinning the cluster CA, {@code random} requests through the bridge to
 * the HSM) whose error count must stay 0.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class EndpointAttackTest {
  private static final int PER_ADDRESS = 50;
  private static final int IDLE_SECONDS = 5;
  private static final int FRAME_TIMEOUT_MS = 3000;
  private static final int HANDSHAKE_TIMEOUT_MS = 3000;
  private static final String LIMITS = "# EndpointAttackTest: small limits, so that the timeouts show within a test\n"
      + "bridge.tcp.maxConnections=300\n"
      + "bridge.tcp.maxConnectionsPerAddress=" + PER_ADDRESS + "\n"
      + "bridge.tcp.idleTimeoutSeconds=" + IDLE_SECONDS + "\n"
      + "bridge.tcp.frameTimeoutMs=" + FRAME_TIMEOUT_MS + "\n"
      + "bridge.tcp.handshakeTimeoutMs=" + HANDSHAKE_TIMEOUT_MS + "\n";
  /** What no log may ever contain, in any encoding the code might use. */
  private static final String SECRET = "Pw-" + HexFormat.of().formatHex(randomBytes(8));
  private static final StringBuilder REPORT = new StringBuilder();

  private static Path home;
  private static Path work;
  private static String baseProperties;
  private static int port;
  private static long bridgePid;
  private static Path ca;
  private static TestLogins logins;

  @BeforeAll
  static void up() throws Exception {
    home = Files.createTempDirectory("hsmbridge-endpoint-attack");
    work = Files.createTempDirectory("hsmbridge-endpoint-attack-work");
    CliRun up = CliRun.run(home, "up", "--hsms", "1", "--port", "0");
    assertEquals(0, up.code, up.toString());
    ca = home.resolve("bridge").resolve("tls").resolve("ca.pem");
    baseProperties = Files.readString(new Home(home).bridge().nodeProperties());
    assertTrue(baseProperties.contains("bridge.tls=true"), "up runs the endpoint with TLS on loopback too");
    restartBridge("");
    // The operator's path: the CLI finds the local cluster's CA itself and talks TLS.
    logins = TestLogins.activate(home, work);
  }

  @AfterAll
  static void down() {
    CliRun down = CliRun.run(home, "down");
    System.out.println("=== EndpointAttackTest report ===\n" + REPORT + "down: exit " + down.code);
  }

  /** Stops the bridge and starts it again, as 'up' does, with the test's limits and {@code extra} keys. */
  private static void restartBridge(String extra) throws IOException {
    LocalNode bridge = new LocalNode(new Home(home).bridge());
    bridge.stop();
    Files.writeString(new Home(home).bridge().nodeProperties(), baseProperties + LIMITS + extra);
    Endpoint ep = bridge.start();
    port = ep.port();
    bridgePid = ep.pid();
    assertTrue(ep.tls(), "endpoint.json says TLS");
    LocalCluster.Ready ready = new LocalCluster(new Home(home)).awaitServing(List.of(), List.of("hsm1"));
    // Serving in the bridge's view, and answering through it (the first request after a restart may still
    // miss: that is the cluster's start-up, not this test's subject).
    long deadline = System.currentTimeMillis() + 60_000;
    while (true) {
      try (BridgeClient c = ready.bridge().connect(Duration.ofSeconds(10))) {
        c.request(new JsonObject().put("op", "health"));
        return;
      } catch (HsmBridgeException e) {
        if (System.currentTimeMillis() > deadline) {
          throw e;
        }
        LocalNode.sleep(500);
      }
    }
  }

  private static BridgeClient legitConnection() {
    return BridgeClient.connect("127.0.0.1", port, Duration.ofSeconds(30), ClientTls.pinning(ca));
  }

  private static LegitLoad legit() throws InterruptedException {
    LegitLoad l = new LegitLoad(EndpointAttackTest::legitConnection, logins.cuToken());
    l.awaitServed(5, 20_000);
    assertTrue(l.ok() >= 5 && l.errors() == 0, l.toString());
    return l;
  }

  // ------------------------------------------------------------------------------------------- (a)

  @Test
  @Order(1)
  void gigabyteLengthHeadersOnSixtyConnectionsAreRefusedBeforeBuffering() throws Exception {
    long heapBefore = heapUsedKb(bridgePid);
    int closed = 0;
    int errFrames = 0;
    LegitLoad legit = legit();
    List<RawEndpoint> attackers = new ArrayList<>();
    try {
      for (int i = 0; i < 60; i++) {
        RawEndpoint a = RawEndpoint.tls("127.0.1." + (1 + i % 4), port);
        attackers.add(a);
        a.header(1L << 30);
        try {
          a.write(new byte[64 * 1024]);
        } catch (IOException e) {
          // the bridge may have closed already: that is the point
        }
      }
      for (RawEndpoint a : attackers) {
        try {
          JsonObject err = a.read(10_000);
          if (err != null) {
            assertEquals("err", err.getString("type"), err.encode());
            assertEquals(ErrorCode.INPUT_TOO_LARGE.code(), err.getInteger("failureCode"), err.encode());
            assertEquals("frame_too_large", err.getString("message"), err.encode());
            errFrames++;
          }
          if (err == null || a.closedWithin(10_000)) {
            closed++;
          }
        } catch (SocketTimeoutException e) {
          // not closed: counted as such
        } catch (IOException e) {
          closed++; // reset by the bridge
        }
      }
      legit.awaitServed(10, 20_000);
    } finally {
      attackers.forEach(RawEndpoint::close);
      legit.close();
    }
    long heapAfter = heapUsedKb(bridgePid);
    note("(a) 60 TLS connections announcing 1 GiB frames: " + closed + " closed by the bridge, " + errFrames
        + " got err frame_too_large; bridge heap used " + heapBefore / 1024 + " -> " + heapAfter / 1024 + " MiB; " + legit);
    assertEquals(60, closed, "every oversized connection is closed");
    assertTrue(ProcessHandle.of(bridgePid).map(ProcessHandle::isAlive).orElse(false), "the bridge still runs");
    assertTrue(heapAfter < 256 * 1024, "the bridge's heap stayed bounded: " + heapAfter + " KiB used");
    assertEquals(0, legit.errors(), legit.toString());
  }

  // ------------------------------------------------------------------------------------------- (b)

  @Test
  @Order(2)
  void lyingLengthsNeitherHangNorMixFrames() throws Exception {
    LegitLoad legit = legit();
    boolean shortClosed;
    List<JsonObject> seen = new ArrayList<>();
    try {
      // Says 100, sends 10, stalls: closed once the frame timeout passed.
      try (RawEndpoint a = RawEndpoint.tls("127.0.2.1", port)) {
        a.header(100);
        a.write("{\"type\":\"s".getBytes(StandardCharsets.UTF_8));
        shortClosed = a.closedWithin(FRAME_TIMEOUT_MS + 5000);
      }
      // Says 10, sends 100: the 10 bytes are one (unreadable) frame; the frame hidden in the other 90 must
      // never run: the connection is closed after the first.
      byte[] smuggled = RawEndpoint.encode(new JsonObject().put("type", "send").put("address", Addresses.BRIDGE_REQUEST)
          .put("replyAddress", "smuggled").put("body", new JsonObject().put("op", "health")));
      try (RawEndpoint a = RawEndpoint.tls("127.0.2.2", port)) {
        a.header(10);
        byte[] payload = new byte[10 + smuggled.length];
        System.arraycopy("0123456789".getBytes(StandardCharsets.US_ASCII), 0, payload, 0, 10);
        System.arraycopy(smuggled, 0, payload, 10, smuggled.length);
        a.write(payload);
        try {
          for (JsonObject f = a.read(5000); f != null; f = a.read(5000)) {
            seen.add(f);
          }
        } catch (IOException e) {
          // closed by a reset: fine
        }
      }
      legit.awaitServed(5, 10_000);
    } finally {
      legit.close();
    }
    note("(b) header 100 + 10 bytes + stall: closed " + shortClosed + "; header 10 + 100 bytes: frames back " + seen
        + "; " + legit);
    assertTrue(shortClosed, "a frame that never completes is closed after bridge.tcp.frameTimeoutMs");
    assertEquals(1, seen.size(), "one err, then the connection is closed: " + seen);
    assertEquals("invalid_frame", seen.get(0).getString("message"), seen.toString());
    assertTrue(seen.stream().noneMatch(f -> "smuggled".equals(f.getString("address"))), "the hidden frame never ran");
    assertEquals(0, legit.errors(), legit.toString());
  }

  // ------------------------------------------------------------------------------------------- (c)

  @Test
  @Order(3)
  void aConnectionFloodIsCappedPerAddressAndIdleConnectionsAreClosed() throws Exception {
    LegitLoad legit = legit();
    List<Socket> flood = new ArrayList<>();
    int refusedAtConnect = 0;
    int closedAtOnce = 0;
    int leftOpen = 0;
    int openAfterHandshakeTimeout = 0;
    boolean idleClosed;
    boolean pingingOpen;
    try {
      for (int i = 0; i < 2000; i++) {
        try {
          flood.add(RawEndpoint.plainSocket("127.0.3.1", port));
        } catch (IOException e) {
          refusedAtConnect++;
        }
      }
      Thread.sleep(1000);
      for (Socket s : flood) {
        if (isClosed(s)) {
          closedAtOnce++;
        } else {
          leftOpen++;
        }
      }
      legit.awaitServed(5, 10_000);
      // The admitted ones never start TLS: closed by the handshake timeout.
      Thread.sleep(HANDSHAKE_TIMEOUT_MS + 3000);
      for (Socket s : flood) {
        if (!isClosed(s)) {
          openAfterHandshakeTimeout++;
        }
      }
      // An idle TLS connection is closed after the idle timeout; one that pings is not.
      try (RawEndpoint idle = RawEndpoint.tls("127.0.3.2", port); RawEndpoint pinging = RawEndpoint.tls("127.0.3.3", port)) {
        long end = System.currentTimeMillis() + (IDLE_SECONDS + 3) * 1000L;
        while (System.currentTimeMillis() < end) {
          pinging.frame(new JsonObject().put("type", "ping"));
          assertEquals("pong", pinging.read(5000).getString("type"));
          Thread.sleep(1000);
        }
        idleClosed = idle.closedWithin(5000);
        pinging.frame(new JsonObject().put("type", "ping"));
        pingingOpen = "pong".equals(pinging.read(5000).getString("type"));
      }
      legit.awaitServed(5, 10_000);
    } finally {
      for (Socket s : flood) {
        s.close();
      }
      legit.close();
    }
    note("(c) 2000 connections from 127.0.3.1 (cap " + PER_ADDRESS + "/address): " + refusedAtConnect
        + " refused at connect, " + closedAtOnce + " closed at once, " + leftOpen + " admitted, "
        + openAfterHandshakeTimeout + " still open after the handshake timeout; idle TLS connection closed: "
        + idleClosed + ", pinging one open: " + pingingOpen + "; " + legit);
    assertTrue(leftOpen <= PER_ADDRESS, leftOpen + " connections of one address admitted");
    assertEquals(2000, refusedAtConnect + closedAtOnce + leftOpen);
    assertTrue(closedAtOnce + refusedAtConnect >= 2000 - PER_ADDRESS, "the rest were refused");
    assertEquals(0, openAfterHandshakeTimeout, "connections without a TLS handshake are closed");
    assertTrue(idleClosed, "an idle connection is closed after bridge.tcp.idleTimeoutSeconds");
    assertTrue(pingingOpen, "a connection that pings stays open");
    assertEquals(0, legit.errors(), legit.toString());
  }

  /** True when the server closed it (a TLS alert it sent first is read past). */
  private static boolean isClosed(Socket s) {
    try {
      s.setSoTimeout(1);
      for (int i = 0; i < 4096; i++) {
        if (s.getInputStream().read() < 0) {
          return true;
        }
      }
      return false;
    } catch (SocketTimeoutException e) {
      return false;
    } catch (IOException e) {
      return true;
    }
  }

  // ------------------------------------------------------------------------------------------- (d)

  @Test
  @Order(4)
  void publishRegisterAndSendsElsewhereAreRefusedWithAnErrFrame() throws Exception {
    LegitLoad legit = legit();
    List<String> refusals = new ArrayList<>();
    JsonObject generate = new JsonObject().put("op", "key.generate").put("spec", "AES_256").put("label", "smuggled-key")
        .put("session", logins.cuToken());
    try (RawEndpoint a = RawEndpoint.tls("127.0.4.1", port)) {
      JsonObject[] frames = {
          new JsonObject().put("type", "publish").put("address", Addresses.BRIDGE_REQUEST).put("body", generate),
          new JsonObject().put("type", "register").put("address", Addresses.BRIDGE_REQUEST),
          new JsonObject().put("type", "register").put("address", Addresses.agent("hsm1")),
          new JsonObject().put("type", "unregister").put("address", Addresses.BRIDGE_REQUEST),
          new JsonObject().put("type", "send").put("address", Addresses.agent("hsm1")).put("replyAddress", "r-agent")
              .put("body", generate),
          new JsonObject().put("type", "send").put("address", "__vertx.reply.1").put("replyAddress", "r-reply")
              .put("body", generate),
      };
      for (JsonObject f : frames) {
        a.frame(f);
        JsonObject err = a.read(10_000);
        assertNotNull(err, "an answer to " + f.getString("type"));
        assertEquals("err", err.getString("type"), err.encode());
        assertEquals("access_denied", err.getString("message"), err.encode());
        assertEquals(ErrorCode.ACCESS_DENIED.code(), err.getInteger("failureCode"), err.encode());
        if (f.getString("replyAddress") != null) {
          assertEquals(f.getString("replyAddress"), err.getString("address"), "the client can match it");
        }
        refusals.add(f.getString("type") + " " + f.getString("address") + " -> " + err.getString("message"));
      }
      // The same connection still serves a permitted request.
      a.frame(new JsonObject().put("type", "send").put("address", Addresses.BRIDGE_REQUEST).put("replyAddress", "ok")
          .put("body", new JsonObject().put("op", "health")));
      JsonObject ok = a.read(10_000);
      assertEquals("message", ok.getString("type"), ok.encode());
      assertEquals("ok", ok.getString("address"));
    } finally {
      legit.close();
    }
    // Nothing was created through the refused frames.
    try (BridgeClient c = legitConnection()) {
      JsonArray keys = c.request(new JsonObject().put("op", "key.list").put("session", logins.cuToken())).getJsonArray("keys");
      assertTrue(keys.stream().noneMatch(k -> "smuggled-key".equals(((JsonObject) k).getString("label"))), keys.encode());
    }
    note("(d) " + refusals + "; no key 'smuggled-key' exists; " + legit);
    assertEquals(0, legit.errors(), legit.toString());
  }

  // ------------------------------------------------------------------------------------------- (e)

  @Test
  @Order(5)
  void nothingOfAFramesBodyReachesAnyLog() throws Exception {
    LegitLoad legit = legit();
    JsonObject login = new JsonObject().put("op", "auth.login").put("user", "alice").put("password", SECRET);
    try {
      try (RawEndpoint a = RawEndpoint.tls("127.0.5.1", port)) {
        a.frame(new JsonObject().put("type", "send").put("replyAddress", "no-address").put("body", login));
        JsonObject err = a.read(10_000);
        assertEquals("missing_address", err.getString("message"), err.encode());
        a.frame(new JsonObject().put("type", SECRET).put("address", Addresses.BRIDGE_REQUEST).put("body", login));
        assertEquals("unknown_type", a.read(10_000).getString("message"));
        byte[] notJson = ("not json " + SECRET).getBytes(StandardCharsets.US_ASCII);
        a.header(notJson.length);
        a.write(notJson);
        assertEquals("invalid_frame", a.read(10_000).getString("message"));
      }
      // A plaintext client on the TLS port: the TLS decoder's error quotes the bytes it got, in hex.
      try (RawEndpoint p = RawEndpoint.plain("127.0.5.2", port)) {
        p.frame(new JsonObject().put("type", "send").put("address", Addresses.BRIDGE_REQUEST).put("body", login));
        assertTrue(p.closedWithin(10_000), "a plaintext client is closed");
      }
      legit.awaitServed(5, 10_000);
    } finally {
      legit.close();
    }
    Thread.sleep(1000); // let the node flush its log lines
    String hex = HexFormat.of().formatHex(SECRET.getBytes(StandardCharsets.US_ASCII));
    List<String> logFiles = new ArrayList<>();
    int endpointLines = 0;
    try (Stream<Path> files = Files.walk(home)) {
      for (Path f : files.filter(p -> p.getFileName().toString().startsWith("node.log")).toList()) {
        String text = Files.readString(f, StandardCharsets.ISO_8859_1);
        logFiles.add(home.relativize(f).toString());
        assertFalse(text.contains(SECRET), "the password is in " + f);
        assertFalse(text.toLowerCase().contains(hex), "the password is in " + f + " in hex");
        endpointLines += (int) text.lines().filter(l -> l.contains("client endpoint:")).count();
      }
    }
    note("(e) login frames without address, with the password as type, not JSON, and in plaintext on the TLS port:"
        + " refused; the password appears in none of " + logFiles + " (" + endpointLines + " endpoint lines logged); "
        + legit);
    assertTrue(endpointLines > 0, "the refusals were logged (without content)");
    assertEquals(0, legit.errors(), legit.toString());
  }

  // ------------------------------------------------------------------------------------------- (f)

  @Test
  @Order(6)
  void plaintextAndUnpinnedClientsFailClearly() throws Exception {
    LegitLoad legit = legit();
    Path rogueDir = work.resolve("rogue-ca");
    ClusterCa rogue = ClusterCa.create(rogueDir, "rogue");
    ClusterCa.MemberFiles rogueServer = rogue.issueMember("impostor", ClusterCa.MemberKind.FRONT_DOOR,
        List.of("127.0.0.1", "localhost"), work.resolve("impostor"));
    String plaintextFailure;
    String impostorFailure;
    String rogueTrustFailure;
    try {
      // A plaintext client against the TLS endpoint.
      try (BridgeClient plain = BridgeClient.connect("127.0.0.1", port, Duration.ofSeconds(10))) {
        HsmBridgeException e = assertThrows(HsmBridgeException.class,
            () -> plain.request(new JsonObject().put("op", "health")));
        assertEquals(ErrorCode.NO_HSM_AVAILABLE, e.code(), e.getMessage());
        plaintextFailure = e.getMessage();
      }
      // A server with another CA's certificate (a man in the middle): the pinned client refuses it.
      try (javax.net.ssl.SSLServerSocket impostor = impostorServer(rogueServer)) {
        Thread accept = new Thread(() -> {
          try (Socket s = impostor.accept()) {
            ((javax.net.ssl.SSLSocket) s).startHandshake();
          } catch (IOException e) {
            // the client refuses the certificate: expected
          }
        });
        accept.setDaemon(true);
        accept.start();
        HsmBridgeException e1 = assertThrows(HsmBridgeException.class, () -> BridgeClient.connect("127.0.0.1",
            impostor.getLocalPort(), Duration.ofSeconds(10), ClientTls.pinning(ca)));
        impostorFailure = e1.getMessage();
      }
      // A client that pins another CA does not accept the real bridge either.
      HsmBridgeException e2 = assertThrows(HsmBridgeException.class,
          () -> BridgeClient.connect("127.0.0.1", port, Duration.ofSeconds(10), ClientTls.pinning(rogue.certificateFile())));
      rogueTrustFailure = e2.getMessage();
      legit.awaitServed(5, 10_000);
    } finally {
      legit.close();
    }
    note("(f) plaintext client: " + plaintextFailure + " | impostor server: " + impostorFailure + " | wrong pin: "
        + rogueTrustFailure + "; " + legit);
    assertTrue(plaintextFailure.contains("closed the connection"), plaintextFailure);
    assertTrue(impostorFailure.contains("TLS handshake"), impostorFailure);
    assertTrue(rogueTrustFailure.contains("TLS handshake"), rogueTrustFailure);
    assertEquals(0, legit.errors(), legit.toString());
  }

  @Test
  @Order(7)
  void withMutualTlsOnlyClientCertificatesOfKindClientGetIn() throws Exception {
    restartBridge("bridge.tls.clientAuth=required\n");
    ClusterCa clusterCa = ClusterCa.load(new Home(home).caDir());
    ClusterCa clientCa = ClusterCa.load(new Home(home).clientCaDir());
    ClusterCa.MemberFiles app = clientCa.issueMember("app1", ClusterCa.MemberKind.CLIENT, List.of("127.0.0.1"),
        work.resolve("app1"));
    // A client certificate from the cluster CA (not the client CA) is refused too.
    ClusterCa.MemberFiles wrongCa = clusterCa.issueMember("app-of-cluster-ca", ClusterCa.MemberKind.CLIENT,
        List.of("127.0.0.1"), work.resolve("app-of-cluster-ca"));
    ClusterCa.MemberFiles agentLike = clusterCa.issueMember("not-a-client", ClusterCa.MemberKind.AGENT,
        List.of("127.0.0.1"), work.resolve("not-a-client"));
    Path rogueDir = work.resolve("rogue-ca-2");
    ClusterCa.create(rogueDir, "rogue2");
    ClientTls client = ClientTls.pinning(ca).withClientCertificate(app.certificate(), app.key());
    Path bridgeTls = home.resolve("bridge").resolve("tls");
    List<String> refused = new ArrayList<>();
    String[][] others = {
        {"no certificate", null, null},
        {"front door (the bridge's own)", bridgeTls.resolve("bridge.pem").toString(), bridgeTls.resolve("bridge-key.pem").toString()},
        {"agent", agentLike.certificate().toString(), agentLike.key().toString()},
        {"client kind from the cluster CA", wrongCa.certificate().toString(), wrongCa.key().toString()},
        {"self-signed", rogueDir.resolve("ca.pem").toString(), rogueDir.resolve("ca-key.pem").toString()},
    };
    // The legitimate application logs in again with its client certificate (the bridge restarted).
    String session;
    try (Hsm hsm = Hsm.connect("127.0.0.1", port, client)) {
      char[] pw = logins.password(TestLogins.CRYPTO_USER);
      session = hsm.login(TestLogins.CRYPTO_USER, pw).token();
    }
    LegitLoad legit = new LegitLoad(() -> BridgeClient.connect("127.0.0.1", port, Duration.ofSeconds(30), client), session);
    try {
      legit.awaitServed(5, 20_000);
      for (String[] o : others) {
        ClientTls tls = o[1] == null ? ClientTls.pinning(ca) : ClientTls.pinning(ca).withClientCertificate(Path.of(o[1]), Path.of(o[2]));
        HsmBridgeException e = assertThrows(HsmBridgeException.class, () -> {
          try (BridgeClient c = BridgeClient.connect("127.0.0.1", port, Duration.ofSeconds(10), tls)) {
            // TLS 1.3: the client may finish its side of the handshake before the server refuses it.
            c.request(new JsonObject().put("op", "health"));
          }
        }, o[0]);
        assertEquals(ErrorCode.NO_HSM_AVAILABLE, e.code(), o[0] + ": " + e.getMessage());
        refused.add(o[0] + ": " + e.getMessage());
      }
      legit.awaitServed(5, 10_000);
    } finally {
      legit.close();
    }
    note("(f) mutual TLS: a CLIENT certificate served (" + legit + "); refused: " + refused);
    assertTrue(legit.ok() >= 10, legit.toString());
    assertEquals(0, legit.errors(), legit.toString());
  }

  // ------------------------------------------------------------------------------------------- helpers

  /** A TLS 1.3 server on loopback holding a certificate of another CA. */
  private static javax.net.ssl.SSLServerSocket impostorServer(ClusterCa.MemberFiles files) throws Exception {
    java.security.PrivateKey key;
    try (org.bouncycastle.openssl.PEMParser parser = new org.bouncycastle.openssl.PEMParser(Files.newBufferedReader(files.key()))) {
      key = new org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter()
          .getPrivateKey((org.bouncycastle.asn1.pkcs.PrivateKeyInfo) parser.readObject());
    }
    java.security.cert.Certificate cert;
    try (var in = Files.newInputStream(files.certificate())) {
      cert = java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
    java.security.KeyStore ks = java.security.KeyStore.getInstance("PKCS12");
    ks.load(null, null);
    ks.setKeyEntry("impostor", key, new char[0], new java.security.cert.Certificate[] {cert});
    javax.net.ssl.KeyManagerFactory kmf = javax.net.ssl.KeyManagerFactory.getInstance("SunX509");
    kmf.init(ks, new char[0]);
    javax.net.ssl.SSLContext ctx = javax.net.ssl.SSLContext.getInstance("TLSv1.3");
    ctx.init(kmf.getKeyManagers(), null, new SecureRandom());
    return (javax.net.ssl.SSLServerSocket) ctx.getServerSocketFactory()
        .createServerSocket(0, 5, java.net.InetAddress.getByName("127.0.0.1"));
  }

  /** The bridge's used heap in KiB, from {@code jcmd <pid> GC.heap_info}. */
  private static long heapUsedKb(long pid) throws Exception {
    Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
    Process p = new ProcessBuilder(jcmd.toString(), Long.toString(pid), "GC.heap_info").redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    p.waitFor(30, TimeUnit.SECONDS);
    Matcher m = Pattern.compile("used (\\d+)K").matcher(out);
    assertTrue(m.find(), "jcmd GC.heap_info: " + out);
    return Long.parseLong(m.group(1));
  }

  private static byte[] randomBytes(int n) {
    byte[] b = new byte[n];
    new SecureRandom().nextBytes(b);
    return b;
  }

  private static void note(String line) {
    REPORT.append(line).append('\n');
    System.out.println(line);
  }
}
