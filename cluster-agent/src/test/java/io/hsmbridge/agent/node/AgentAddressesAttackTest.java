package io.hsmbridge.agent.node;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static io.hsmbridge.agent.membership.TestMembers.awaitTrue;
import static io.hsmbridge.agent.membership.TestMembers.routes;

import io.hsmbridge.agent.membership.ClusterCa;
import io.hsmbridge.agent.membership.TestMembers;
import io.hsmbridge.agent.node.LoopbackPorts;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.security.KeyPairGenerator;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cluster key is handed to a joining HSM wrapped to the public key in its request (ClusterKeyJoin). A
 * member that could send there with a key pair of its own would unwrap the cluster key in software, and
 * with it every key the cluster replicates; one that could consume there would hand joiners a key of its
 * choosing. A front door (the bridge, exposed in a DMZ) and an application member are members: both try,
 * beside a real agent whose token holds the cluster key, and an agent joining the same way gets its key.
 * Likewise a front door cannot consume an agent's address (it would receive other front doors' requests,
 * logins included) nor publish heartbeats (the front doors route by them).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AgentAddressesAttackTest {
  @TempDir Path tmp;
  private TestMembers members;

  private int agentPort;
  private String seeds;

  @BeforeEach
  void members() throws Exception {
    members = new TestMembers(tmp, "theft");
    agentPort = LoopbackPorts.one();
    seeds = "127.0.0.1:" + agentPort;
  }

  /** The agent hsm1, on the membership port every other member is seeded with. */
  private Vertx agent() throws Exception {
    return members.join("hsm1", ClusterCa.MemberKind.AGENT, agentPort, seeds);
  }

  private Vertx member(String name, ClusterCa.MemberKind kind) throws Exception {
    return members.join(name, kind, LoopbackPorts.one(), seeds);
  }

  @AfterEach
  void closeAll() {
    if (members != null) {
      members.close();
    }
  }

  @Test
  void onlyAnAgentCanAskForOrAnswerWithTheClusterKey() throws Exception {
    try (HsmToken hsm = HsmToken.open(SoftHsmFixture.newToken("theft"));
        HsmToken joinerToken = HsmToken.open(SoftHsmFixture.newToken("joiner"))) {
      hsm.clusterKeys().createClusterKey();
      Vertx agent = agent();
      ClusterKeyJoin.serve(agent, hsm, members.ca().certificate());
      Vertx frontDoor = member("bridge", ClusterCa.MemberKind.FRONT_DOOR);
      Vertx app = member("app", ClusterCa.MemberKind.APPLICATION);
      Vertx joiner = member("hsm2", ClusterCa.MemberKind.AGENT);
      awaitTrue("every member routes the cluster-key address to the agent", () -> List.of(frontDoor, app, joiner).stream()
          .allMatch(v -> routes(v, Addresses.CLUSTER_KEY).size() == 1));

      // Another (rogue) front door consumes the address too, to answer joiners with a key of its choosing.
      Vertx rogue = member("bridge2", ClusterCa.MemberKind.FRONT_DOOR);
      AtomicInteger rogueAsked = new AtomicInteger();
      rogue.eventBus().<JsonObject>consumer(Addresses.CLUSTER_KEY, m -> {
        rogueAsked.incrementAndGet();
        m.reply(new JsonObject().put("wrapped", "AAAA").put("from", "rogue"));
      });
      Thread.sleep(3_000);
      assertEquals(1, routes(joiner, Addresses.CLUSTER_KEY).size(), "the rogue's registration reached the joiner");

      // The joiner's token made its transport key; the cluster CA certified it (as the CLI does).
      byte[] transportKey = joinerToken.clusterKeys().createTransportKey();
      JsonObject ask = ask("hsm2", members.ca().issueTransportCertificate("hsm2", transportKey,
          hsm.clusterKeys().clusterKeyCheckValue()).getEncoded());
      JsonObject reply = null;
      for (int i = 0; i < 4; i++) {
        reply = request(joiner, ask, 20_000);
        assertEquals(hsm.label(), reply.getString("from"), "answer " + i + " came from the agent's token");
        assertNotNull(reply.getString("wrapped"));
      }
      assertEquals(0, rogueAsked.get(), "requests routed to the rogue front door");
      joinerToken.clusterKeys().installClusterKey(ClusterKeyJoin.joinerKeys(reply));
      assertTrue(joinerToken.clusterKeys().hasClusterKey(), "the joiner's token unwrapped the cluster key");

      for (Vertx thief : List.of(frontDoor, app)) {
        try {
          JsonObject answer = request(thief, ask, 3_000);
          fail("a " + (thief == app ? "application" : "front door") + " got an answer from the cluster-key address: "
              + answer.fieldNames());
        } catch (ExecutionException expected) {
          // its link was closed before the agent saw the request; no answer comes
        }
      }
    }
  }

  /**
   * The holder of an agent's TLS certificate and key, without that HSM's token (a copied key file): it asks as a
   * joiner would, with every key and certificate it can make or find. Each ask is refused, and the agent's
   * token still answers the real joiner.
   */
  @Test
  void anAgentsTlsKeyWithoutItsTokenCannotGetTheClusterKey() throws Exception {
    try (HsmToken hsm = HsmToken.open(SoftHsmFixture.newToken("theft"));
        HsmToken joinerToken = HsmToken.open(SoftHsmFixture.newToken("joiner"))) {
      hsm.clusterKeys().createClusterKey();
      Vertx agent = agent();
      ClusterKeyJoin.serve(agent, hsm, members.ca().certificate());
      Vertx thief = member("hsm3", ClusterCa.MemberKind.AGENT);
      awaitTrue("the thief routes the cluster-key address to the agent", () -> routes(thief, Addresses.CLUSTER_KEY).size() == 1);

      byte[] softwareKey = softwareRsaKey();
      ClusterCa otherCa = ClusterCa.create(tmp.resolve("other-ca"), "theft");
      byte[] check = hsm.clusterKeys().clusterKeyCheckValue();
      byte[] genuine = members.ca().issueTransportCertificate("hsm2", joinerToken.clusterKeys().createTransportKey(), check)
          .getEncoded();
      Path agentCert = members.ca().issueMember("hsm4", ClusterCa.MemberKind.AGENT, List.of("127.0.0.1"),
          tmp.resolve("hsm4")).certificate();
      Map<String, JsonObject> asks = new LinkedHashMap<>();
      asks.put("a bare public key (the request before transport certificates)",
          new JsonObject().put("hsmId", "hsm3").put("spki", Base64.getEncoder().encodeToString(softwareKey)));
      asks.put("a transport certificate of another CA", ask("hsm3", otherCa.issueTransportCertificate("hsm3", softwareKey, check)
          .getEncoded()));
      asks.put("a transport certificate of the cluster CA for another cluster key", ask("hsm3",
          members.ca().issueTransportCertificate("hsm3", softwareKey, new byte[check.length]).getEncoded()));
      asks.put("an agent certificate of the cluster CA", ask("hsm4", readDer(agentCert)));
      asks.put("the real joiner's certificate, asking as another HSM", ask("hsm3", genuine));
      asks.put("garbage", ask("hsm3", new byte[] {0x30, 0x03, 0x02, 0x01, 0x01}));
      asks.put("an oversized field", new JsonObject().put("hsmId", "hsm3").put("certificate", "A".repeat(4 << 20)));
      for (Map.Entry<String, JsonObject> a : asks.entrySet()) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> request(thief, a.getValue(), 20_000), a.getKey());
        assertTrue(e.getCause() instanceof ReplyException r && r.failureCode() == ErrorCode.ACCESS_DENIED.code(),
            a.getKey() + ": " + e.getCause());
      }
      // The agent still serves the real joiner (any agent link may carry its request).
      JsonObject reply = request(thief, ask("hsm2", genuine), 20_000);
      joinerToken.clusterKeys().installClusterKey(ClusterKeyJoin.joinerKeys(reply));
      assertTrue(joinerToken.clusterKeys().hasClusterKey(), "the joiner's token unwrapped the cluster key");
    }
  }

  /**
   * The same thief answers joiners instead (it may consume the address: it holds an agent certificate), with a
   * cluster key of its own wrapped to the joiner's certified transport key. The joiner checks the key it received
   * inside its token against the check value in its certificate, refuses it, asks again, and installs the key of
   * the agent that holds the cluster's own.
   */
  @Test
  void aJoinerInstallsOnlyTheClustersOwnKeyWhoeverAnswers() throws Exception {
    try (HsmToken hsm = HsmToken.open(SoftHsmFixture.newToken("theft"));
        HsmToken rogueToken = HsmToken.open(SoftHsmFixture.newToken("rogue"));
        HsmToken joinerToken = HsmToken.open(SoftHsmFixture.newToken("joiner"))) {
      hsm.clusterKeys().createClusterKey();
      rogueToken.clusterKeys().createClusterKey();
      Vertx agent = agent();
      Vertx thief = member("hsm3", ClusterCa.MemberKind.AGENT);
      Vertx joiner = member("hsm2", ClusterCa.MemberKind.AGENT);
      AtomicInteger thiefAsked = new AtomicInteger();
      thief.eventBus().<JsonObject>consumer(Addresses.CLUSTER_KEY, m -> thief.executeBlocking(() -> {
        byte[] der = Base64.getDecoder().decode(m.body().getString("certificate"));
        byte[] spki = java.security.cert.CertificateFactory.getInstance("X.509")
            .generateCertificate(new java.io.ByteArrayInputStream(der)).getPublicKey().getEncoded();
        thiefAsked.incrementAndGet();
        return ClusterKeyJoin.toJson(rogueToken.clusterKeys().wrapForJoiner(spki)).put("from", "thief");
      }).onSuccess(m::reply));
      awaitTrue("the joiner routes the cluster-key address to the thief", () -> routes(joiner, Addresses.CLUSTER_KEY).size() == 1);

      // The joiner's transport key, certified as `up` does it (request file, the CA, the cluster's check value).
      Path dir = java.nio.file.Files.createDirectories(tmp.resolve("hsm2-state"));
      io.hsmbridge.agent.membership.TransportCertificates.writeRequest(dir.resolve("req.pem"),
          joinerToken.clusterKeys().createTransportKey());
      io.hsmbridge.agent.membership.TransportCertificates.sign(members.ca(), "hsm2", dir.resolve("req.pem"),
          hsm.clusterKeys().clusterKeyCheckValue(),
          dir.resolve(io.hsmbridge.agent.membership.TransportCertificates.CERTIFICATE_FILE));
      java.util.concurrent.CompletableFuture<Void> joined = java.util.concurrent.CompletableFuture.runAsync(
          () -> new ClusterKeyJoin(joiner, joinerToken, "hsm2", dir).ensure(false));
      awaitTrue("the thief answered twice, or the joiner took its key", () -> thiefAsked.get() >= 2
          || joinerToken.clusterKeys().hasClusterKey());
      assertFalse(joinerToken.clusterKeys().hasClusterKey(), "the joiner installed the thief's key");
      ClusterKeyJoin.serve(agent, hsm, members.ca().certificate());
      joined.get(60, TimeUnit.SECONDS);
      assertArrayEquals(hsm.clusterKeys().clusterKeyCheckValue(), joinerToken.clusterKeys().clusterKeyCheckValue());
      assertEquals(java.util.HexFormat.of().formatHex(hsm.clusterKeys().clusterKeyCheckValue()), java.nio.file.Files.readString(
          dir.resolve(io.hsmbridge.agent.membership.TransportCertificates.CHECK_VALUE_FILE)).trim());
    }
  }

  @Test
  void aFrontDoorCannotConsumeAnAgentsAddressNorPublishHeartbeats() throws Exception {
    Vertx agent = agent();
    Vertx frontDoor = member("bridge", ClusterCa.MemberKind.FRONT_DOOR);
    Vertx rogue = member("bridge2", ClusterCa.MemberKind.FRONT_DOOR);
    String agentAddress = Addresses.agentIncarnation("hsm1", "run1");
    AtomicInteger heartbeats = new AtomicInteger();
    agent.eventBus().<JsonObject>consumer(Addresses.HEARTBEAT, m -> heartbeats.incrementAndGet());
    agent.eventBus().<JsonObject>consumer(agentAddress, m -> m.reply(new JsonObject().put("servedBy", "hsm1")));
    frontDoor.eventBus().<JsonObject>consumer(Addresses.HEARTBEAT, m -> { });
    awaitTrue("the front door routes to the agent", () -> routes(frontDoor, agentAddress).size() == 1
        && routes(rogue, Addresses.HEARTBEAT).size() == 2);

    rogue.eventBus().<JsonObject>consumer(agentAddress, m -> m.reply(new JsonObject().put("servedBy", "rogue")));
    Thread.sleep(3_000);
    assertEquals(1, routes(frontDoor, agentAddress).size(), "the rogue's registration reached the front door");
    for (int i = 0; i < 10; i++) {
      JsonObject reply = frontDoor.eventBus().<JsonObject>request(agentAddress, new JsonObject(),
          new DeliveryOptions().setSendTimeout(5_000)).toCompletionStage().toCompletableFuture().get(15, TimeUnit.SECONDS).body();
      assertEquals("hsm1", reply.getString("servedBy"), "request " + i);
    }

    for (int i = 0; i < 3; i++) {
      frontDoor.eventBus().publish(Addresses.HEARTBEAT, new JsonObject().put("hsmId", "hsm9").put("applied", 1));
      Thread.sleep(200);
    }
    Thread.sleep(1_000);
    assertEquals(0, heartbeats.get(), "forged heartbeats reached the agent");
  }

  private static JsonObject request(Vertx from, JsonObject ask, long timeoutMs) throws Exception {
    return from.eventBus().<JsonObject>request(Addresses.CLUSTER_KEY, ask, new DeliveryOptions().setSendTimeout(timeoutMs))
        .toCompletionStage().toCompletableFuture().get(timeoutMs + 10_000, TimeUnit.MILLISECONDS).body();
  }

  private static JsonObject ask(String hsmId, byte[] certificate) {
    return new JsonObject().put("hsmId", hsmId).put("certificate", Base64.getEncoder().encodeToString(certificate));
  }

  private static byte[] readDer(Path pem) throws Exception {
    try (var in = java.nio.file.Files.newInputStream(pem)) {
      return java.security.cert.CertificateFactory.getInstance("X.509").generateCertificate(in).getEncoded();
    }
  }

  private static byte[] softwareRsaKey() throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
    g.initialize(3072);
    return g.generateKeyPair().getPublic().getEncoded();
  }
}
