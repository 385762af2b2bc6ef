package io.hsmbridge.agent.replication;

import static io.hsmbridge.agent.replication.TestCluster.await;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.agent.node.LoopbackPorts;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;
import org.apache.ratis.RaftConfigKeys;
import org.apache.ratis.client.RaftClient;
import org.apache.ratis.client.RaftClientConfigKeys;
import org.apache.ratis.conf.Parameters;
import org.apache.ratis.conf.RaftProperties;
import org.apache.ratis.grpc.GrpcConfigKeys;
import org.apache.ratis.grpc.GrpcTlsConfig;
import org.apache.ratis.protocol.ClientId;
import org.apache.ratis.protocol.Message;
import org.apache.ratis.protocol.RaftClientReply;
import org.apache.ratis.protocol.RaftGroup;
import org.apache.ratis.protocol.RaftGroupId;
import org.apache.ratis.protocol.RaftPeerId;
import org.apache.ratis.protocol.exceptions.StateMachineException;
import org.apache.ratis.retry.RetryPolicies;
import org.apache.ratis.rpc.SupportedRpcType;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;
import org.apache.ratis.util.TimeDuration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The mutation log's transport: one gRPC port per peer, mutual TLS on it, agent certificates of the
 * group's CA only, checked by servers and by clients; and the leader's check of every entry before it is
 * logged. Attackers here are plain Ratis clients over loopback sockets with the right group id.
 */
class RaftTransportTest {
  @TempDir
  Path dir;
  private TestCluster c;
  private List<RecordingApplier> appliers;

  @BeforeEach
  void start() {
    appliers = List.of(new RecordingApplier(), new RecordingApplier(), new RecordingApplier());
    c = new TestCluster(dir, appliers).startAll();
  }

  @AfterEach
  void stop() {
    c.close();
  }

  /** A client of the group as anyone can build one: gRPC, a few retries (to follow the leader), TLS as given (null: plaintext). */
  static RaftClient client(RaftGroup group, GrpcTlsConfig tls) {
    RaftProperties p = new RaftProperties();
    RaftConfigKeys.Rpc.setType(p, SupportedRpcType.GRPC);
    RaftClientConfigKeys.Rpc.setRequestTimeout(p, TimeDuration.valueOf(3, TimeUnit.SECONDS));
    Parameters params = new Parameters();
    if (tls != null) {
      GrpcConfigKeys.Client.setTlsConf(params, tls);
      GrpcConfigKeys.Admin.setTlsConf(params, tls);
      GrpcConfigKeys.Server.setTlsConf(params, tls);
    }
    return RaftClient.newBuilder().setProperties(p).setParameters(params).setRaftGroup(group)
        .setClientId(ClientId.randomId()).setRetryPolicy(RetryPolicies.retryUpToMaximumCountWithFixedSleep(10, TimeDuration.valueOf(100, TimeUnit.MILLISECONDS)))
        .build();
  }

  /** An attacker's TLS: its own certificate, and it trusts whatever the server shows. */
  static GrpcTlsConfig attackerTls(TestPki.Member m) {
    return new GrpcTlsConfig(RaftTls.keyManager(m.certificate(), m.key()), TRUST_ALL, true);
  }

  static final TrustManager TRUST_ALL = new X509TrustManager() {
    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) {}

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) {}

    @Override
    public X509Certificate[] getAcceptedIssuers() {
      return new X509Certificate[0];
    }
  };

  private RaftGroup group() {
    return RaftGroup.valueOf(RaftGroupId.valueOf(c.groupId), c.peers.stream().map(MutationLog.Peer::toRaft).toList());
  }

  private static RaftPeerId id(String id) {
    return RaftPeerId.valueOf(id);
  }

  /** Group list, submit and setConfiguration all fail at the transport: nothing reaches the group. */
  private void assertLocked(GrpcTlsConfig tls) throws IOException {
    try (RaftClient rogue = client(group(), tls)) {
      // Group management fails with gRPC's own StatusRuntimeException (UNAVAILABLE), the rest with an IOException.
      assertThrows(Exception.class, () -> rogue.getGroupManagementApi(id("hsm-1")).list(), "group list");
      assertThrows(Exception.class, () -> rogue.getGroupManagementApi(id("hsm-1")).info(RaftGroupId.valueOf(c.groupId)),
          "group info");
      assertThrows(Exception.class, () -> rogue.getGroupManagementApi(id("hsm-1")).remove(RaftGroupId.valueOf(c.groupId),
          true, false), "group remove");
      assertRefused(() -> rogue.io().send(Message.valueOf(ByteString.copyFrom(new Mutation.DeleteKey("k").toBytes()))),
          "submit");
      assertRefused(() -> rogue.admin().setConfiguration(List.of(c.peers.get(0).toRaft())), "setConfiguration");
    }
  }

  private interface Call {
    RaftClientReply call() throws IOException;
  }

  /** The messages of {@code e} and its causes, one per line. */
  static String causes(Throwable e) {
    StringBuilder b = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause()) {
      b.append(t.getClass().getSimpleName()).append(": ").append(t.getMessage()).append('\n');
    }
    return b.toString();
  }

  private static void assertRefused(Call call, String what) {
    try {
      RaftClientReply reply = call.call();
      assertFalse(reply.isSuccess(), what + " succeeded: " + reply);
    } catch (IOException expected) {
      // refused during the TLS handshake
    }
  }

  @Test
  @Timeout(120)
  void peerClientAndAdminServicesShareOnePortPerPeer() {
    for (int i = 0; i < 3; i++) {
      int port = c.peers.get(i).port();
      for (InetSocketAddress a : c.logs[i].listeningAddresses()) {
        assertEquals(port, a.getPort(), "every service on the peer's one TLS port: " + c.logs[i].listeningAddresses());
      }
    }
  }

  @Test
  @Timeout(120)
  void anAgentCertificateOfTheGroupsCaIsServedAndNothingElseIs() throws Exception {
    // The control: with an agent certificate of the CA, the same calls work (so the refusals below mean something).
    try (RaftClient agent = client(group(), attackerTls(c.pki.issue("hsm-9", TestPki.AGENT)))) {
      assertEquals(List.of(RaftGroupId.valueOf(c.groupId)), agent.getGroupManagementApi(id("hsm-1")).list().getGroupIds());
    }
    long applied = c.logs[0].appliedIndex();

    assertLocked(null);                                             // plaintext gRPC
    assertLocked(attackerTls(TestPki.selfSigned("hsm-1")));         // a self-signed "agent"
    assertLocked(attackerTls(c.pki.issue("bridge", "front-door"))); // the right CA, another kind
    assertLocked(attackerTls(c.pki.issue("app", "client")));
    assertLocked(attackerTls(c.pki.issue("old-member", null)));     // issued before kinds existed
    assertLocked(attackerTls(TestPki.create().issue("hsm-1", TestPki.AGENT))); // an agent of another CA

    // The group still has its three peers and commits; nothing of the attackers was applied.
    long index = c.logs[1].submit(new Mutation.DeleteKey("legit")).get(20, TimeUnit.SECONDS);
    for (int i = 0; i < 3; i++) {
      MutationLog log = c.logs[i];
      await("applied", 20_000, () -> log.appliedIndex() >= index);
      assertEquals(List.of(new Mutation.DeleteKey("legit")), appliers.get(i).mutations());
      assertEquals(3, log.peers().size());
    }
    assertTrue(index > applied);
  }

  @Test
  @Timeout(120)
  void aPeerChecksTheServerItCallsToo() throws Exception {
    // A rogue server at a peer's address: it trusts anyone, but shows a front-door certificate.
    RecordingApplier rogueApplier = new RecordingApplier();
    MutationLog.Peer rogue = MutationLog.Peer.loopback("hsm-1", LoopbackPorts.one());
    TestPki.Member front = c.pki.issue("rogue", "front-door");
    try (MutationLog fake = MutationLog.start("hsm-1", List.of(rogue), c.groupId, dir.resolve("rogue"), rogueApplier,
        new RaftTls(RaftTls.keyManager(front.certificate(), front.key()), TRUST_ALL), LogEvents.NONE)) {
      RaftGroup rogueGroup = RaftGroup.valueOf(RaftGroupId.valueOf(c.groupId), rogue.toRaft());
      // A client with a real agent certificate and the group's trust manager refuses the server.
      RaftTls agentTls = c.pki.agentTls("hsm-2");
      try (RaftClient honest = client(rogueGroup, new GrpcTlsConfig(agentTls.keyManager(), agentTls.trustManager(), true))) {
        Exception e = assertThrows(Exception.class, () -> honest.getGroupManagementApi(id("hsm-1")).list());
        assertTrue(causes(e).contains("is not an agent certificate of this cluster"), causes(e));
        assertRefused(() -> honest.io().send(Message.valueOf(ByteString.copyFrom(new Mutation.DeleteKey("x").toBytes()))),
            "submit to a rogue server");
      }
      assertEquals(0, rogueApplier.count());
    }
  }

  @Test
  @Timeout(120)
  void theLeaderRefusesEntriesThatDoNotDecodeBeforeTheyAreLogged() throws Exception {
    long before = c.logs[0].submit(new Mutation.DeleteKey("first")).get(20, TimeUnit.SECONDS);
    byte[] truncated = java.util.Arrays.copyOf(new Mutation.DeleteKey("second").toBytes(), 7);
    byte[] trailing = java.util.Arrays.copyOf(new Mutation.DeleteKey("third").toBytes(), 20);
    for (byte[] bad : List.of(new byte[] {1, 99, 0, 0}, new byte[] {2, 2}, truncated, trailing, new byte[0])) {
      // An insider: an agent certificate of the group's CA, so the transport lets it in.
      try (RaftClient insider = client(group(), attackerTls(c.pki.issue("insider", TestPki.AGENT)))) {
        StateMachineException refused = assertThrows(StateMachineException.class,
            () -> insider.io().send(Message.valueOf(ByteString.copyFrom(bad))));
        assertTrue(refused.getMessage().contains("mutation refused before it was logged"), refused.getMessage());
      }
      // Through the log's own client: the submitter gets the same refusal, not an endless retry.
      ExecutionException e = assertThrows(ExecutionException.class,
          () -> c.logs[2].submitEntry(bad).get(20, TimeUnit.SECONDS));
      assertTrue(e.getCause().getMessage().contains("mutation refused before it was logged"), e.getCause().getMessage());
    }
    long after = c.logs[1].submit(new Mutation.DeleteKey("last")).get(20, TimeUnit.SECONDS);
    for (int i = 0; i < 3; i++) {
      MutationLog log = c.logs[i];
      await("applied", 20_000, () -> log.appliedIndex() >= after);
      assertEquals(List.of(new Mutation.DeleteKey("first"), new Mutation.DeleteKey("last")), appliers.get(i).mutations());
      assertEquals(0, log.refusedEntries(), "nothing refused reached any log");
      assertNull(log.failure());
    }
    assertTrue(after > before);
  }
}
