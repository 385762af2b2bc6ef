package io.hsmbridge.bridge.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.vertx.core.Completable;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.json.JsonObject;
import io.vertx.core.spi.cluster.ClusterManager;
import io.vertx.core.spi.cluster.RegistrationInfo;
import io.vertx.ext.cluster.infinispan.InfinispanClusterManager;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;
import org.infinispan.manager.DefaultCacheManager;
import org.jgroups.util.DefaultSocketFactory;
import org.jgroups.util.SocketFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The membership attack of issue #10, as an attacker would run it: a process on the same host with the
 * project's own libraries, the right cluster name and the members' addresses, running a complete
 * Infinispan/JGroups cluster manager and Vert.x of its own, tries to join, read the routing table, remove
 * a member's registration, add its own and shut the cluster down, while two real members serve
 * request/reply traffic to each other. Three rogues: no certificate at all (plain TCP), a self-signed
 * certificate, and a CLIENT certificate issued by the real cluster CA.
 *
 * <p>Each asserts: the rogue sees no member and no registration (it stays alone); the members' view and
 * routing table are unchanged; the members' traffic had 0 errors during the attack. A direct TLS probe
 * also shows the refusal is the handshake's (and that a member certificate passes the same probe).
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class MembershipAttackTest {
  private static final String CLUSTER = "attack";
  private static final String SERVICE = "attack.svc";
  private static final long REQUEST_TIMEOUT_MS = 5_000;

  @TempDir Path tmp;
  private ClusterCa ca;
  private final List<Vertx> started = new ArrayList<>();
  private Vertx a;
  private Vertx b;
  private int portA;
  private int portB;
  private int rogueSlot;
  private String members;

  @BeforeEach
  void twoMembers() throws Exception {
    ca = ClusterCa.create(tmp.resolve("ca"), CLUSTER);
    portA = freePort();
    portB = freePort();
    rogueSlot = freePort();
    // The rogue's port is listed too: members actively contact it, the strongest position for a rogue.
    members = "127.0.0.1:" + portA + ",127.0.0.1:" + portB + ",127.0.0.1:" + rogueSlot;
    a = join(member("a", ClusterCa.MemberKind.AGENT, portA));
    b = join(member("b", ClusterCa.MemberKind.FRONT_DOOR, portB));
    a.eventBus().<JsonObject>consumer(SERVICE, m -> m.reply(new JsonObject().put("servedBy", "a")))
        .completion().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    // Settled: one two-member cluster, a's consumer reachable from b five times in a row (members started
    // one after the other on a busy host may first form two clusters that merge).
    int inARow = 0;
    while (inARow < 5) {
      if (System.nanoTime() > deadline) {
        fail("the two members did not form: " + manager(a).getNodes());
      }
      boolean formed = manager(a).getNodes().size() == 2 && manager(b).getNodes().size() == 2;
      inARow = formed && served(b) ? inARow + 1 : 0;
      Thread.sleep(200);
    }
  }

  private static boolean served(Vertx from) {
    try {
      return "a".equals(from.eventBus().<JsonObject>request(SERVICE, new JsonObject(),
              new DeliveryOptions().setSendTimeout(1_000))
          .toCompletionStage().toCompletableFuture().get(3, TimeUnit.SECONDS).body().getString("servedBy"));
    } catch (Exception e) {
      return false;
    }
  }

  @AfterEach
  void closeAll() {
    for (Vertx v : started) {
      try {
        v.close().toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
      } catch (Exception e) {
        System.err.println("vert.x did not close cleanly: " + e);
      }
    }
  }

  @Test
  void rogueWithoutCertificateCannotJoinReadOrChangeTheCluster() throws Exception {
    attack("no certificate", new DefaultSocketFactory());
    // A plaintext connection to the TLS port is not a TLS handshake: closed, nothing read.
    assertPlaintextRefused(portA);
  }

  @Test
  void rogueWithSelfSignedCertificateCannotJoinReadOrChangeTheCluster() throws Exception {
    ClusterCa self = ClusterCa.create(tmp.resolve("self"), CLUSTER);
    Path cert = self.certificateFile();
    Path key = self.directory().resolve(ClusterCa.CA_KEY_FILE);
    attack("self-signed certificate", rogueTls(cert, key));
    assertHandshakeRefused(cert, key, portA);
  }

  @Test
  void rogueWithClientCertificateOfTheClusterCaCannotJoinReadOrChangeTheCluster() throws Exception {
    ClusterCa.MemberFiles client = ca.issueMember("mallory", ClusterCa.MemberKind.CLIENT,
        List.of("127.0.0.1"), tmp.resolve("mallory"));
    attack("CLIENT certificate of the cluster CA", rogueTls(client.certificate(), client.key()));
    assertHandshakeRefused(client.certificate(), client.key(), portA);
    assertHandshakeRefused(client.certificate(), client.key(), portB);
    // The probe can tell: the same probe with a member certificate gets through the handshake.
    ClusterCa.MemberFiles agent = ca.issueMember("control", ClusterCa.MemberKind.AGENT,
        List.of("127.0.0.1"), tmp.resolve("control"));
    assertHandshakeAccepted(agent.certificate(), agent.key(), portA);
  }

  /**
   * Runs the rogue (a full Vert.x + Infinispan cluster manager on the rogue's sockets, on a listed member
   * address) while b sends requests to a's consumer; then checks nothing changed and nothing failed.
   */
  private void attack(String what, SocketFactory rogueSockets) throws Exception {
    List<String> viewBefore = manager(a).getNodes();
    Set<RegistrationInfo> registryBefore = new HashSet<>(registrations(b, SERVICE));
    assertEquals(1, registryBefore.size(), "a's consumer, seen by b: " + registryBefore);
    RegistrationInfo legit = registryBefore.iterator().next();
    long reassertedBefore = ((ReassertingClusterManager) manager(a)).reassertedCount();

    AtomicBoolean stop = new AtomicBoolean();
    AtomicInteger ok = new AtomicInteger();
    List<String> errors = java.util.Collections.synchronizedList(new ArrayList<>());
    Thread traffic = new Thread(() -> {
      // Bounded: at most 2,000 requests, ~40 per second, while the attack lasts.
      for (int i = 0; i < 2_000 && !stop.get(); i++) {
        try {
          JsonObject r = b.eventBus().<JsonObject>request(SERVICE, new JsonObject().put("n", i),
                  new DeliveryOptions().setSendTimeout(REQUEST_TIMEOUT_MS))
              .toCompletionStage().toCompletableFuture().get(REQUEST_TIMEOUT_MS + 2_000, TimeUnit.MILLISECONDS).body();
          if ("a".equals(r.getString("servedBy"))) {
            ok.incrementAndGet();
          } else {
            errors.add("served by " + r);
          }
          Thread.sleep(25);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return;
        } catch (Exception e) {
          errors.add(String.valueOf(e.getCause() != null ? e.getCause() : e));
        }
      }
    }, "legit-traffic");
    traffic.start();

    Rogue rogue = Rogue.start(CLUSTER, rogueSlot, members, rogueSockets);
    try {
      // Longer than a join attempt plus a merge round: had the rogue been let in, it would be by now.
      Thread.sleep(ClusterTransport.JOIN_TIMEOUT_MS + ClusterTransport.MERGE_MAX_MS + 2_000);
      ClusterManager rm = rogue.manager();
      assertEquals(List.of(rm.getNodeId()), rm.getNodes(), what + ": the rogue must see no member but itself");
      assertTrue(rogue.registrations(SERVICE).isEmpty(), what + ": the rogue must see no registration");
      // What the rogue did on main: remove a member's registration, add its own, wipe the routing
      // table, shut the cluster down. Here each can reach only the rogue's own, one-node cluster.
      rogue.<Void>await(p -> rm.removeRegistration(SERVICE, legit, p));
      rogue.<Void>await(p -> rm.addRegistration(SERVICE, new RegistrationInfo(rm.getNodeId(), 1, false), p));
      rogue.caches.getCache("__vertx.subs").clear();
      rogue.caches.getCache("__vertx.nodeInfo").clear();
      try {
        rogue.caches.shutdownAllCaches();
      } catch (RuntimeException e) {
        System.err.println(what + ": the rogue's cluster-wide shutdown failed on its own side: " + e);
      }
      Thread.sleep(ReassertingClusterManager.PERIOD_MS * 2);
    } finally {
      rogue.close();
      stop.set(true);
      traffic.join(TimeUnit.SECONDS.toMillis(REQUEST_TIMEOUT_MS / 1000 + 5));
    }

    assertEquals(List.of(), errors, what + ": legitimate requests must not fail");
    assertTrue(ok.get() >= 20, what + ": the legitimate client was served (" + ok.get() + " replies)");
    assertEquals(viewBefore, manager(a).getNodes(), what + ": the members' view");
    assertEquals(viewBefore, manager(b).getNodes(), what + ": the members' view");
    assertEquals(registryBefore, new HashSet<>(registrations(b, SERVICE)), what + ": the routing table");
    assertEquals(registryBefore, new HashSet<>(registrations(a, SERVICE)), what + ": the routing table");
    assertEquals(reassertedBefore, ((ReassertingClusterManager) manager(a)).reassertedCount(),
        what + ": nothing had to be put back, because nothing was lost");
    System.err.println(what + ": refused; " + ok.get() + " legitimate replies, 0 errors, view " + viewBefore);
  }

  /** A process that holds an Infinispan cluster manager and a Vert.x of its own, on the rogue's sockets. */
  private record Rogue(Vertx vertx, DefaultCacheManager caches) {
    static Rogue start(String cluster, int port, String members, SocketFactory sockets) throws Exception {
      ClusterConfig c = new ClusterConfig(true, cluster, "127.0.0.1", port, 0,
          ClusterConfig.members(members, null), null, null, null);
      DefaultCacheManager caches = new DefaultCacheManager(
          ClusterTransport.infinispanConfig(c, ClusterTransport.channel(c, sockets)), true);
      Vertx v = Vertx.builder().with(new VertxOptions().setEventLoopPoolSize(1))
          .withClusterManager(new InfinispanClusterManager(caches)).buildClustered()
          .toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
      return new Rogue(v, caches);
    }

    ClusterManager manager() {
      return ((VertxInternal) vertx).clusterManager();
    }

    List<RegistrationInfo> registrations(String address) throws Exception {
      return MembershipAttackTest.registrations(vertx, address);
    }

    <T> T await(java.util.function.Consumer<Completable<T>> op) throws Exception {
      Promise<T> p = Promise.promise();
      vertx.runOnContext(x -> op.accept(p));
      return p.future().toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
    }

    void close() {
      try {
        vertx.close().toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
      } catch (Exception e) {
        System.err.println("rogue vert.x did not close cleanly: " + e);
      }
      caches.stop();
    }
  }

  /** The rogue's sockets: TLS with the given certificate, trusting anything (it wants in, not safety). */
  private static SocketFactory rogueTls(Path cert, Path key) throws Exception {
    return new DefaultSocketFactory(rogueContext(cert, key));
  }

  private static SSLContext rogueContext(Path cert, Path key) throws Exception {
    KeyStore ks = KeyStore.getInstance("PKCS12");
    ks.load(null, null);
    ks.setKeyEntry("rogue", ClusterCa.readPrivateKey(key, "rogue key"), "x".toCharArray(),
        new X509Certificate[] {ClusterCa.readCertificate(cert, "rogue certificate")});
    KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    kmf.init(ks, "x".toCharArray());
    TrustManager trustAll = new X509TrustManager() {
      @Override
      public void checkClientTrusted(X509Certificate[] chain, String authType) {}

      @Override
      public void checkServerTrusted(X509Certificate[] chain, String authType) {}

      @Override
      public X509Certificate[] getAcceptedIssuers() {
        return new X509Certificate[0];
      }
    };
    SSLContext ctx = SSLContext.getInstance("TLSv1.3");
    ctx.init(kmf.getKeyManagers(), new TrustManager[] {trustAll}, new SecureRandom());
    return ctx;
  }

  /**
   * TLS 1.3: the server checks the client's certificate after the client's side of the handshake ends,
   * so its refusal arrives on the first read, as an alert or as a closed connection. A member that
   * accepted the handshake would wait for JGroups' preamble instead (the control probe's read times out).
   */
  private static void assertHandshakeRefused(Path cert, Path key, int port) throws Exception {
    Throwable outcome = probe(cert, key, port, 800);
    assertTrue(outcome instanceof SSLException || outcome instanceof java.net.SocketException
        || outcome instanceof java.io.EOFException || outcome == null,
        "the member must refuse the handshake, got " + outcome);
  }

  private static void assertHandshakeAccepted(Path cert, Path key, int port) throws Exception {
    Throwable outcome = probe(cert, key, port, 300);
    assertTrue(outcome instanceof SocketTimeoutException, "a member certificate passes the handshake, got " + outcome);
  }

  /** Handshake, then one read: what came back (an exception, or null for end of stream). */
  private static Throwable probe(Path cert, Path key, int port, int readTimeoutMs) throws Exception {
    try (SSLSocket s = (SSLSocket) rogueContext(cert, key).getSocketFactory().createSocket()) {
      s.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
      s.setSoTimeout(readTimeoutMs);
      s.startHandshake();
      int r = s.getInputStream().read();
      return r < 0 ? null : new IllegalStateException("read a byte: " + r);
    } catch (SocketTimeoutException | SSLException e) {
      return e;
    } catch (IOException e) {
      return e;
    }
  }

  private static void assertPlaintextRefused(int port) throws Exception {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
      s.setSoTimeout(5_000);
      // JGroups' connection preamble: cookie "bela", then a version; a plain member would answer.
      s.getOutputStream().write("bela".getBytes(StandardCharsets.US_ASCII));
      s.getOutputStream().write(new byte[] {0, 5, 0, 2});
      s.getOutputStream().flush();
      InputStream in = s.getInputStream();
      byte[] buf = new byte[256];
      int n;
      try {
        n = in.read(buf);
      } catch (IOException closed) {
        n = -1;
      }
      // Whatever came back is a TLS alert at most (content type 21), never JGroups data.
      assertTrue(n < 0 || buf[0] == 21, "plaintext must get nothing but a TLS alert, got " + n + " bytes");
    }
  }

  private Vertx join(ClusterConfig config) throws Exception {
    Future<Vertx> f = ClusterTransport.start(config, new VertxOptions().setEventLoopPoolSize(1));
    Vertx v = f.toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
    started.add(v);
    return v;
  }

  private ClusterConfig member(String name, ClusterCa.MemberKind kind, int port) {
    ClusterCa.MemberFiles files = ca.issueMember(name, kind, List.of("127.0.0.1"), tmp.resolve("m-" + name));
    Properties p = new Properties();
    p.setProperty("cluster.enabled", "true");
    p.setProperty("cluster.name", CLUSTER);
    p.setProperty("cluster.memberPort", Integer.toString(port));
    p.setProperty("cluster.members", members);
    p.setProperty("cluster.tls.cert", files.certificate().toString());
    p.setProperty("cluster.tls.key", files.key().toString());
    p.setProperty("cluster.tls.ca", files.ca().toString());
    return ClusterConfig.from(p);
  }

  private static ClusterManager manager(Vertx v) {
    return ((VertxInternal) v).clusterManager();
  }

  static List<RegistrationInfo> registrations(Vertx v, String address) throws Exception {
    Promise<List<RegistrationInfo>> p = Promise.promise();
    manager(v).getRegistrations(address, p);
    return p.future().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
  }

  private static int freePort() throws Exception {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }
}
