package io.hsmbridge.agent.membership;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static io.hsmbridge.agent.membership.TestMembers.awaitTrue;
import static io.hsmbridge.agent.membership.TestMembers.nodes;
import static io.hsmbridge.agent.membership.TestMembers.routes;

import io.hsmbridge.agent.node.LoopbackPorts;
import io.hsmbridge.agent.replication.RaftTls;
import io.hsmbridge.protocol.Addresses;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.json.JsonObject;
import io.vertx.core.spi.cluster.RegistrationInfo;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The membership attacks of issue #10, as an attacker on the same host would run them against two real
 * members (an agent and a front door serving request/reply traffic to each other): a forged state in the
 * project's own frame format over plain TCP, TLS with no certificate, a self-signed one, a client
 * certificate of the cluster CA, connection floods and lying lengths; and, from a holder of a real member
 * certificate, a claim on another member's node id. Each asserts: refused, the members' view and routing
 * table unchanged, and the legitimate traffic had 0 errors throughout.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class MembershipAttackTest {
  private static final String CLUSTER = "attack";
  private static final String SERVICE = "attack.svc";

  @TempDir Path tmp;
  private ClusterCa ca;
  private TestMembers members;
  private Vertx a;
  private Vertx b;
  private int portA;
  private int portB;
  private LegitLoad load;

  private static final long FRAME_TIMEOUT_MS = 1_500;

  @org.junit.jupiter.api.BeforeAll
  static void shortFrameTimeout() {
    System.setProperty("hsmbridge.eventBus.frameTimeoutMs", Long.toString(FRAME_TIMEOUT_MS));
  }

  @org.junit.jupiter.api.AfterAll
  static void defaultFrameTimeout() {
    System.clearProperty("hsmbridge.eventBus.frameTimeoutMs");
  }

  @BeforeEach
  void twoMembers() throws Exception {
    members = new TestMembers(tmp, CLUSTER);
    ca = members.ca();
    portA = LoopbackPorts.one();
    portB = LoopbackPorts.one();
    String members = "127.0.0.1:" + portA + ",127.0.0.1:" + portB;
    a = join(member("a", ClusterCa.MemberKind.AGENT, portA, members));
    b = join(member("b", ClusterCa.MemberKind.FRONT_DOOR, portB, members));
    a.eventBus().<JsonObject>consumer(SERVICE, m -> m.reply(new JsonObject().put("servedBy", "a")))
        .completion().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    awaitTrue("b routes to a's consumer", () -> routes(b, SERVICE).size() == 1 && nodes(a) == 2 && nodes(b) == 2);
    load = new LegitLoad(b);
  }

  @AfterEach
  void closeAll() {
    if (load != null) {
      load.stop();
    }
    if (members != null) {
      members.close();
    }
  }

  @Test
  void forgedStateOverPlainTcpIsRefused() throws Exception {
    String owner = routes(a, SERVICE).get(0).nodeId();
    try (Socket s = new Socket(InetAddress.getLoopbackAddress(), portA)) {
      s.setSoTimeout(10_000);
      // The project's own format: a state claiming the service, as if from a new member.
      MemberState forged = new MemberState(CLUSTER, "rogue-node", "127.0.0.1:9", 1, null,
          Map.of(SERVICE, List.of(new RegistrationInfo("rogue-node", 1, false))), List.of());
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      MemberFrames.write(out, MemberFrames.STATE, forged.encode().getBytes());
      assertClosedByPeer(s.getInputStream());
    }
    assertUnchanged(owner);
  }

  @Test
  void tlsWithoutCertificateIsRefused() throws Exception {
    assertHandshakeRefused(tlsContext(null, null));
    assertUnchanged(routes(a, SERVICE).get(0).nodeId());
  }

  @Test
  void selfSignedCertificateIsRefused() throws Exception {
    ClusterCa self = ClusterCa.create(tmp.resolve("self"), CLUSTER);
    X509Certificate cert = self.certificate();
    assertHandshakeRefused(tlsContext(cert, ClusterCa.readPrivateKey(self.directory().resolve(ClusterCa.CA_KEY_FILE), "key")));
    assertUnchanged(routes(a, SERVICE).get(0).nodeId());
  }

  @Test
  void clientCertificateOfTheClusterCaIsRefused() throws Exception {
    assertHandshakeRefused(issuedTls("mallory", ClusterCa.MemberKind.CLIENT));
    assertUnchanged(routes(a, SERVICE).get(0).nodeId());
  }

  @Test
  void floodsOfIdleAndLyingConnectionsDoNotStopTheMembership() throws Exception {
    String owner = routes(a, SERVICE).get(0).nodeId();
    List<Socket> flood = new ArrayList<>();
    try {
      for (int i = 0; i < 300; i++) {
        Socket s = new Socket(InetAddress.getLoopbackAddress(), portA);
        if (i % 6 == 0) {
          // A header that promises 2 GiB of state, then nothing.
          new DataOutputStream(s.getOutputStream()).write(new byte[] {MemberFrames.STATE, 0x7f, -1, -1, -1});
        }
        flood.add(s);
      }
      // A member that starts during the flood still joins: unauthenticated connections are bounded and evicted.
      int portC = LoopbackPorts.one();
      Vertx c = join(member("c", ClusterCa.MemberKind.AGENT, portC, "127.0.0.1:" + portA));
      awaitTrue("c joins during the flood", () -> nodes(a) == 3 && nodes(c) == 3);
      // Every flooding connection is closed by the member within the handshake bound (or evicted earlier).
      assertAllClosedWithinTheHandshakeBound(flood);
    } finally {
      for (Socket s : flood) {
        s.close();
      }
    }
    assertEquals(1, routes(b, SERVICE).size());
    assertEquals(owner, routes(b, SERVICE).get(0).nodeId());
    load.assertNoErrors();
  }

  @Test
  void aMemberCertificateCannotSpeakForAnotherMembersNode() throws Exception {
    String owner = routes(a, SERVICE).get(0).nodeId();
    String bNode = ((VertxInternal) b).clusterManager().getNodeId();
    SSLContext tls = issuedTls("mallory", ClusterCa.MemberKind.AGENT);
    try (SSLSocket s = (SSLSocket) tls.getSocketFactory().createSocket(InetAddress.getLoopbackAddress(), portA)) {
      s.setSoTimeout(10_000);
      s.startHandshake();
      // b's node id with no registrations: if taken, b's consumers would vanish from a's table.
      MemberState claim = new MemberState(CLUSTER, bNode, "127.0.0.1:9", Long.MAX_VALUE / 2, null, Map.of(), List.of());
      MemberFrames.write(new DataOutputStream(s.getOutputStream()), MemberFrames.STATE, claim.encode().getBytes());
      assertClosedByPeer(s.getInputStream());
    }
    assertTrue(((VertxInternal) a).clusterManager().getNodes().contains(bNode));
    assertUnchanged(owner);
  }

  @Test
  void aMemberThatDiesLeavesAtOnceAndOneThatComesBackIsReasserted() throws Exception {
    SSLContext tls = issuedTls("ghost", ClusterCa.MemberKind.AGENT);
    MemberState ghost = new MemberState(CLUSTER, "ghost-node", "127.0.0.1:9", 1, null,
        Map.of("ghost.svc", List.of(new RegistrationInfo("ghost-node", 7, false))), List.of());

    SSLSocket first = announce(tls, ghost);
    awaitTrue("the ghost is a member", () -> nodes(a) == 3 && routes(a, "ghost.svc").size() == 1);
    long killedAt = System.nanoTime();
    first.close(); // what a SIGKILL does to its sockets
    awaitTrue("the ghost left", () -> nodes(a) == 2 && routes(a, "ghost.svc").isEmpty());
    long leftMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killedAt);
    assertTrue(leftMs < CertifiedClusterManager.SILENCE_MS, "a closed link is a departure at once, took " + leftMs + " ms");

    // Back again (same state): its registration is in the table again, from its own copy.
    SSLSocket second = announce(tls, ghost);
    awaitTrue("the ghost is back", () -> nodes(a) == 3 && routes(a, "ghost.svc").size() == 1);
    // Silent, connection open (a hung process): gone after the silence bound.
    long silentAt = System.nanoTime();
    awaitTrue("the silent ghost left", () -> nodes(a) == 2);
    long silentMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - silentAt);
    assertTrue(silentMs < CertifiedClusterManager.SILENCE_MS + 3_000, "silence detected after " + silentMs + " ms");
    second.close();
    assertUnchanged(routes(a, SERVICE).get(0).nodeId());
    System.err.println("membership: closed link detected in " + leftMs + " ms, silence in " + silentMs + " ms");
  }

  @Test
  void aLyingLengthFromAMemberClosesOnlyItsOwnLink() throws Exception {
    SSLContext tls = issuedTls("liar", ClusterCa.MemberKind.AGENT);
    try (SSLSocket s = (SSLSocket) tls.getSocketFactory().createSocket(InetAddress.getLoopbackAddress(), portA)) {
      s.setSoTimeout(10_000);
      s.startHandshake();
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      out.write(new byte[] {MemberFrames.STATE, 0x7f, -1, -1, -1});
      out.flush();
      assertClosedByPeer(s.getInputStream());
    }
    assertUnchanged(routes(a, SERVICE).get(0).nodeId());
  }

  /**
   * Vert.x spreads a request over every consumer of its address: an application member that consumed the
   * front doors' client address would get other applications' logins and session tokens. A front door may
   * consume it; an application (kind application, what {@code cluster member-cert} issues) may join and
   * consume addresses of its own, but a state of it that consumes one of hsmbridge's is refused by every
   * member, so no request reaches it.
   */
  @Test
  void anApplicationMemberCannotConsumeTheFrontDoorsAddress() throws Exception {
    int portC = LoopbackPorts.one();
    Vertx app = join(member("app", ClusterCa.MemberKind.APPLICATION, portC, "127.0.0.1:" + portA));
    awaitTrue("the application joins", () -> nodes(a) == 3 && nodes(b) == 3 && nodes(app) == 3);
    app.eventBus().<JsonObject>consumer("payments.own", m -> m.reply(new JsonObject().put("servedBy", "app")))
        .completion().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    awaitTrue("a routes to the application's own address", () -> routes(a, "payments.own").size() == 1);
    b.eventBus().<JsonObject>consumer(Addresses.CLIENT_REQUEST, m -> m.reply(new JsonObject().put("servedBy", "b")))
        .completion().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    awaitTrue("a routes the client address to the front door b", () -> routes(a, Addresses.CLIENT_REQUEST).size() == 1);
    String frontDoor = routes(a, Addresses.CLIENT_REQUEST).get(0).nodeId();

    app.eventBus().<JsonObject>consumer(Addresses.CLIENT_REQUEST, m -> m.reply(new JsonObject().put("servedBy", "app")))
        .completion().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    Thread.sleep(3 * CertifiedClusterManager.HEARTBEAT_MS);
    for (int i = 0; i < 3 * CertifiedClusterManager.HEARTBEAT_MS / 100; i++) {
      List<RegistrationInfo> r = routes(a, Addresses.CLIENT_REQUEST);
      assertEquals(1, r.size(), "a's routes to the client address: " + r);
      assertEquals(frontDoor, r.get(0).nodeId());
      assertEquals(1, routes(b, Addresses.CLIENT_REQUEST).size());
      Thread.sleep(100);
    }
    for (int i = 0; i < 20; i++) {
      JsonObject reply = a.eventBus().<JsonObject>request(Addresses.CLIENT_REQUEST, new JsonObject(),
          new DeliveryOptions().setSendTimeout(5_000)).toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).body();
      assertEquals("b", reply.getString("servedBy"), "request " + i);
    }
    assertEquals(2, nodes(a), "the application's refused state ended its links");
    assertUnchanged(routes(a, SERVICE).get(0).nodeId());
  }

  /**
   * The event bus does not say who sent a message: an application member could otherwise publish forged
   * heartbeats or send straight to an agent's address. Its links may carry messages to addresses of its own
   * and to the front doors' client address only; a frame to any other of hsmbridge's addresses closes the
   * link before Vert.x delivers it, and the application's next request goes out on a new link.
   */
  @Test
  void anApplicationMemberCanSendToTheFrontDoorsButToNoOtherOfHsmbridgesAddresses() throws Exception {
    int portC = LoopbackPorts.one();
    Vertx app = join(member("app", ClusterCa.MemberKind.APPLICATION, portC, "127.0.0.1:" + portA));
    AtomicInteger forged = new AtomicInteger();
    String agentAddress = Addresses.agent("hsm1");
    a.eventBus().<JsonObject>consumer(Addresses.HEARTBEAT, m -> forged.incrementAndGet())
        .completion().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    a.eventBus().<JsonObject>consumer(agentAddress, m -> forged.incrementAndGet())
        .completion().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    a.eventBus().<JsonObject>consumer("payments.echo", m -> m.reply(new JsonObject().put("servedBy", "a")))
        .completion().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    b.eventBus().<JsonObject>consumer(Addresses.CLIENT_REQUEST, m -> m.reply(new JsonObject().put("servedBy", "b")))
        .completion().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    awaitTrue("the application sees every route", () -> nodes(app) == 3 && routes(app, Addresses.CLIENT_REQUEST).size() == 1
        && routes(app, "payments.echo").size() == 1 && routes(app, Addresses.HEARTBEAT).size() == 1
        && routes(app, agentAddress).size() == 1);

    assertEquals("a", appRequest(app, "payments.echo").getString("servedBy"));
    assertEquals("b", appRequest(app, Addresses.CLIENT_REQUEST).getString("servedBy"));
    for (int i = 0; i < 5; i++) {
      app.eventBus().publish(Addresses.HEARTBEAT, new JsonObject().put("hsmId", "hsm1").put("applied", 1_000_000));
      app.eventBus().request(agentAddress, new JsonObject(), new DeliveryOptions().setSendTimeout(1_000));
      Thread.sleep(200);
    }
    Thread.sleep(1_000);
    assertEquals(0, forged.get(), "forged heartbeats and agent requests delivered");
    assertEquals("b", appRequest(app, Addresses.CLIENT_REQUEST).getString("servedBy"), "the application still works");
    assertEquals("a", appRequest(app, "payments.echo").getString("servedBy"));
    assertEquals(3, nodes(a), "the application is still a member");
    assertEquals(1, routes(b, SERVICE).size());
    load.assertNoErrors();
  }

  private static JsonObject appRequest(Vertx app, String address) throws Exception {
    Exception last = null;
    for (int attempt = 0; attempt < 3; attempt++) { // a link just closed for a forged frame fails what it carried
      try {
        return app.eventBus().<JsonObject>request(address, new JsonObject(), new DeliveryOptions().setSendTimeout(5_000))
            .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS).body();
      } catch (java.util.concurrent.ExecutionException e) {
        last = e;
      }
    }
    throw last;
  }

  /**
   * Vert.x's event bus would buffer whatever a frame's header announces (up to 2 GiB, so an OutOfMemoryError):
   * a member's link that announces more than the limit is closed at the header, and the others carry on.
   */
  @Test
  void anOversizedEventBusFrameFromAMemberClosesOnlyItsOwnLink() throws Exception {
    SSLContext tls = issuedTls("hog", ClusterCa.MemberKind.FRONT_DOOR);
    try (SSLSocket s = eventBusLink(tls)) {
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      out.writeInt(Integer.MAX_VALUE);
      out.write(new byte[64 * 1024]);
      out.flush();
      assertClosedByPeer(s.getInputStream());
    }
    try (SSLSocket s = eventBusLink(tls)) {
      new DataOutputStream(s.getOutputStream()).writeInt(-5);
      s.getOutputStream().flush();
      assertClosedByPeer(s.getInputStream());
    }
    assertUnchanged(routes(a, SERVICE).get(0).nodeId());
  }

  /** Vert.x's own event-bus server, behind the guard, is closed: nobody on the host can reach it past the guard. */
  @Test
  void vertxsOwnEventBusServerIsClosedOnceTheGuardListens() throws Exception {
    int port = EventBusGuard.vertxServer(a).actualPort();
    int guard = ((VertxInternal) a).clusterManager().getNodeInfo().port();
    assertTrue(port > 0 && port != guard, "Vert.x's own port " + port + ", the guard's " + guard);
    assertThrows(java.net.ConnectException.class, () -> new Socket(InetAddress.getLoopbackAddress(), port).close());
    try (SSLSocket s = eventBusLink(issuedTls("probe", ClusterCa.MemberKind.FRONT_DOOR))) {
      assertTrue(s.isConnected(), "the guard's port is open");
    }
    assertUnchanged(routes(a, SERVICE).get(0).nodeId());
  }

  /** Idle and garbage connections to the event-bus port never reach Vert.x and are closed within the handshake bound. */
  @Test
  void floodsOfIdleAndGarbageConnectionsToTheEventBusPortAreClosed() throws Exception {
    int port = ((VertxInternal) a).clusterManager().getNodeInfo().port();
    List<Socket> flood = new ArrayList<>();
    try {
      for (int i = 0; i < 300; i++) {
        Socket s = new Socket(InetAddress.getLoopbackAddress(), port);
        if (i % 6 == 0) {
          new DataOutputStream(s.getOutputStream()).writeInt(Integer.MAX_VALUE); // not TLS: a bare length
        }
        flood.add(s);
      }
      assertAllClosedWithinTheHandshakeBound(flood);
    } finally {
      for (Socket s : flood) {
        s.close();
      }
    }
    assertUnchanged(routes(a, SERVICE).get(0).nodeId());
  }

  /** A frame that is announced and then trickles (holding what Vert.x buffered of it) is closed after the timeout. */
  @Test
  void anEventBusFrameThatNeverCompletesIsClosedAfterTheTimeout() throws Exception {
    SSLContext tls = issuedTls("slow", ClusterCa.MemberKind.FRONT_DOOR);
    try (SSLSocket s = eventBusLink(tls)) {
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      out.writeInt(4096);
      out.write(new byte[100]);
      out.flush();
      long start = System.nanoTime();
      assertClosedByPeer(s.getInputStream());
      long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
      assertTrue(ms >= FRAME_TIMEOUT_MS - 200 && ms < FRAME_TIMEOUT_MS + 3_000, "closed after " + ms + " ms");
    }
    assertUnchanged(routes(a, SERVICE).get(0).nodeId());
  }

  // ----- helpers -----

  /** A mutual-TLS connection to member a's advertised event-bus port. */
  private SSLSocket eventBusLink(SSLContext tls) throws IOException {
    int port = ((VertxInternal) a).clusterManager().getNodeInfo().port();
    SSLSocket s = (SSLSocket) tls.getSocketFactory().createSocket(InetAddress.getLoopbackAddress(), port);
    s.setSoTimeout(10_000);
    s.startHandshake();
    return s;
  }

  private SSLSocket announce(SSLContext tls, MemberState state) throws IOException {
    SSLSocket s = (SSLSocket) tls.getSocketFactory().createSocket(InetAddress.getLoopbackAddress(), portA);
    s.setSoTimeout(10_000);
    s.startHandshake();
    MemberFrames.write(new DataOutputStream(s.getOutputStream()), MemberFrames.STATE, state.encode().getBytes());
    assertEquals(state.version(), MemberFrames.ackVersion(MemberFrames.read(new DataInputStream(s.getInputStream()))));
    return s;
  }

  private void assertHandshakeRefused(SSLContext tls) throws Exception {
    try (SSLSocket s = (SSLSocket) tls.getSocketFactory().createSocket(InetAddress.getLoopbackAddress(), portA)) {
      s.setSoTimeout(10_000);
      MemberState forged = new MemberState(CLUSTER, "rogue-node", "127.0.0.1:9", 1, null,
          Map.of(SERVICE, List.of(new RegistrationInfo("rogue-node", 1, false))), List.of());
      // TLS 1.3: the client may believe the handshake done before the server's verdict on its certificate
      // arrives; the refusal then shows at the next read.
      assertThrows(IOException.class, () -> {
        s.startHandshake();
        MemberFrames.write(new DataOutputStream(s.getOutputStream()), MemberFrames.STATE, forged.encode().getBytes());
        if (s.getInputStream().read() < 0) {
          throw new IOException("closed by the member");
        }
      });
    }
  }

  private void assertUnchanged(String owner) throws Exception {
    Thread.sleep(2 * CertifiedClusterManager.HEARTBEAT_MS);
    assertEquals(2, nodes(a), "a's view");
    assertEquals(2, nodes(b), "b's view");
    for (Vertx v : List.of(a, b)) {
      List<RegistrationInfo> r = routes(v, SERVICE);
      assertEquals(1, r.size(), "routes to " + SERVICE + ": " + r);
      assertEquals(owner, r.get(0).nodeId());
    }
    load.assertNoErrors();
  }

  private static void assertAllClosedWithinTheHandshakeBound(List<Socket> flood) throws IOException {
    long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(CertifiedClusterManager.HANDSHAKE_MS + 5_000);
    for (Socket s : flood) {
      s.setSoTimeout((int) Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
      assertClosedByPeer(s.getInputStream());
    }
  }

  private static void assertClosedByPeer(InputStream in) {
    try {
      while (in.read() >= 0) {
        // a member may answer nothing at all; anything it sends is drained until it closes
      }
    } catch (java.net.SocketTimeoutException e) {
      fail("the member kept the connection open");
    } catch (IOException expected) {
      // reset or TLS alert: closed
    }
  }

  /** A TLS client with a certificate of {@code kind} issued by the members' own CA (a real one, stolen or not). */
  private SSLContext issuedTls(String name, ClusterCa.MemberKind kind) throws Exception {
    ClusterCa.MemberFiles f = ca.issueMember(name, kind, List.of("127.0.0.1"), tmp.resolve(name));
    return tlsContext(ClusterCa.readCertificate(f.certificate(), "cert"), ClusterCa.readPrivateKey(f.key(), "key"));
  }

  private SSLContext tlsContext(X509Certificate cert, java.security.PrivateKey key) throws Exception {
    KeyManager[] keys = cert == null ? new KeyManager[0] : new KeyManager[] {RaftTls.keyManager(cert, key)};
    SSLContext c = SSLContext.getInstance("TLSv1.3");
    c.init(keys, new TrustManager[] {RaftAttackTest.TRUST_ANYTHING}, new SecureRandom());
    return c;
  }

  private Vertx join(ClusterConfig config) throws Exception {
    return members.join(config);
  }

  private ClusterConfig member(String name, ClusterCa.MemberKind kind, int port, String members) {
    return this.members.config(name, kind, port, members);
  }

  /** The front door asks the agent's service every 20 ms while an attack runs; every failure is counted. */
  private static final class LegitLoad {
    private final AtomicBoolean running = new AtomicBoolean(true);
    private final AtomicInteger ok = new AtomicInteger();
    private final List<String> errors = java.util.Collections.synchronizedList(new ArrayList<>());
    private final Thread thread;

    LegitLoad(Vertx from) {
      thread = new Thread(() -> {
        while (running.get()) {
          try {
            JsonObject reply = from.eventBus().<JsonObject>request(SERVICE, new JsonObject(),
                    new DeliveryOptions().setSendTimeout(3_000))
                .toCompletionStage().toCompletableFuture().get(5, TimeUnit.SECONDS).body();
            if ("a".equals(reply.getString("servedBy"))) {
              ok.incrementAndGet();
            } else {
              errors.add("served by " + reply);
            }
            Thread.sleep(20);
          } catch (InterruptedException e) {
            return;
          } catch (Exception e) {
            errors.add(String.valueOf(e));
          }
        }
      }, "legit-load");
      thread.setDaemon(true);
      thread.start();
    }

    void assertNoErrors() {
      System.err.println("legitimate requests: " + ok.get() + " answered, " + errors.size() + " failed");
      assertTrue(ok.get() > 0, "the legitimate client got no answer at all");
      assertTrue(errors.isEmpty(), "legitimate requests failed: " + errors);
    }

    void stop() {
      running.set(false);
      thread.interrupt();
    }
  }
}
