package io.hsmbridge.agent.membership;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.agent.audit.AuditLog;
import io.hsmbridge.agent.audit.AuditWriter;
import io.hsmbridge.agent.audit.LogEventAudit;
import io.hsmbridge.agent.node.LoopbackPorts;
import io.hsmbridge.agent.replication.Applier;
import io.hsmbridge.agent.replication.Mutation;
import io.hsmbridge.agent.replication.MutationLog;
import io.hsmbridge.agent.replication.RaftTls;
import io.hsmbridge.agent.replication.RefusedEntryException;
import io.hsmbridge.agent.replication.TokenApplier;
import io.hsmbridge.agent.replication.TokenStateMachine;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyInfo;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Date;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
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
import org.apache.ratis.protocol.RaftPeer;
import org.apache.ratis.protocol.RaftPeerId;
import org.apache.ratis.protocol.exceptions.StateMachineException;
import org.apache.ratis.retry.RetryPolicies;
import org.apache.ratis.rpc.SupportedRpcType;
import org.apache.ratis.thirdparty.com.google.protobuf.ByteString;
import org.apache.ratis.util.TimeDuration;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue #10's Raft attacks, as an attacker on the same host ran them against main: three Raft peers on
 * real SoftHSM2 tokens, each with the production transport ({@link RaftTrust} over the real cluster CA's
 * certificates) and the production applier and audit; the attacker is a Ratis client of its own that
 * knows the group id (it is derived from the cluster name) and the peers' addresses, reaching the peers
 * only through loopback sockets. While it attacks, a legitimate submitter keeps creating keys through the
 * log and counts its errors. Afterwards every token is read directly: keys, users, ACLs and audit lines
 * are what the legitimate traffic made, nothing else.
 */
class RaftAttackTest {
  private static final String CLUSTER = "attack-test";
  @TempDir
  Path dir;
  private ClusterCa ca;
  private final List<HsmToken> tokens = new ArrayList<>();
  private final List<MutationLog.Peer> peers = new ArrayList<>();
  private final List<ClusterConfig> configs = new ArrayList<>();
  private final AuditWriter[] audits = new AuditWriter[3];
  private final MutationLog[] logs = new MutationLog[3];
  private final UUID groupId = MutationLog.groupIdFor(CLUSTER);
  /** Keys the legitimate submitter made (on token 0, replicated through the log). */
  private final List<String> legitKeys = new java.util.concurrent.CopyOnWriteArrayList<>();

  @BeforeEach
  void formCluster() throws IOException {
    ca = ClusterCa.create(dir.resolve("ca"), CLUSTER);
    for (int i = 0; i < 3; i++) {
      String id = "hsm" + (i + 1);
      ClusterCa.MemberFiles f = ca.issueMember(id, ClusterCa.MemberKind.AGENT, List.of("127.0.0.1"), dir.resolve(id + "-tls"));
      configs.add(new ClusterConfig(true, CLUSTER, "127.0.0.1", 5701, 0, List.of(), f.certificate(), f.key(), f.ca()));
      peers.add(MutationLog.Peer.loopback(id, LoopbackPorts.one()));
      tokens.add(HsmToken.open(SoftHsmFixture.newToken("raft-attack-" + i)));
    }
    tokens.get(0).clusterKeys().createClusterKey();
    for (HsmToken joiner : tokens.subList(1, 3)) {
      byte[] transport = joiner.clusterKeys().createTransportKey();
      joiner.clusterKeys().installClusterKey(tokens.get(0).clusterKeys().wrapClusterKeyFor(transport));
    }
    for (int i = 0; i < 3; i++) {
      audits[i] = new AuditWriter(AuditLog.open(auditFile(i), tokens.get(i).auditKey()::mac, Clock.systemUTC()), "audit-" + i);
    }
    startAll();
  }

  private void startAll() {
    for (int i = 0; i < 3; i++) {
      logs[i] = MutationLog.start(peers.get(i).id(), peers, groupId, dir.resolve(peers.get(i).id()),
          TokenApplier.unchecked(tokens.get(i)), RaftTrust.forAgent(configs.get(i)), new LogEventAudit(audits[i]));
    }
  }

  private void stopAll() {
    for (int i = 0; i < 3; i++) {
      if (logs[i] != null) {
        logs[i].close();
        logs[i] = null;
      }
    }
  }

  @AfterEach
  void close() {
    stopAll();
    for (AuditWriter a : audits) {
      if (a != null) {
        a.close();
      }
    }
    tokens.forEach(HsmToken::close);
  }

  private Path auditFile(int i) {
    return dir.resolve("audit-" + i + ".log");
  }

  // ---- the attacker's tools: nothing but Ratis and what anyone can make ----

  private RaftGroup group() {
    return RaftGroup.valueOf(RaftGroupId.valueOf(groupId), peers.stream()
        .map(p -> RaftPeer.newBuilder().setId(p.id()).setAddress(p.address()).build()).toList());
  }

  private RaftClient attacker(GrpcTlsConfig tls) {
    RaftProperties p = new RaftProperties();
    RaftConfigKeys.Rpc.setType(p, SupportedRpcType.GRPC);
    RaftClientConfigKeys.Rpc.setRequestTimeout(p, TimeDuration.valueOf(3, TimeUnit.SECONDS));
    Parameters params = new Parameters();
    if (tls != null) {
      GrpcConfigKeys.Client.setTlsConf(params, tls);
      GrpcConfigKeys.Admin.setTlsConf(params, tls);
    }
    return RaftClient.newBuilder().setProperties(p).setParameters(params).setRaftGroup(group())
        .setClientId(ClientId.randomId()).setRetryPolicy(RetryPolicies.retryUpToMaximumCountWithFixedSleep(10, TimeDuration.valueOf(100, TimeUnit.MILLISECONDS)))
        .build();
  }

  /** An attacker's client: it trusts whatever server answers (also MembershipAttackTest's). */
  static final TrustManager TRUST_ANYTHING = new X509TrustManager() {
    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) {}

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) {}

    @Override
    public X509Certificate[] getAcceptedIssuers() {
      return new X509Certificate[0];
    }
  };

  /** TLS with a certificate file pair as the attacker has it; it trusts whatever server answers. */
  private static GrpcTlsConfig tlsWith(ClusterCa.MemberFiles f) {
    return new GrpcTlsConfig(RaftTls.keyManager(ClusterCa.readCertificate(f.certificate(), "cert"),
        ClusterCa.readPrivateKey(f.key(), "key")), TRUST_ANYTHING, true);
  }

  /** A self-signed certificate that says OU=agent, CN=hsm1: it is what it claims, signed by nobody. */
  private static GrpcTlsConfig selfSignedAgent() throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(new ECGenParameterSpec("secp256r1"));
    KeyPair k = g.generateKeyPair();
    X500Name name = new X500Name("O=hsmbridge,OU=agent,CN=hsm1");
    Instant now = Instant.now();
    X509Certificate cert = new JcaX509CertificateConverter().getCertificate(new JcaX509v3CertificateBuilder(name,
        BigInteger.ONE, Date.from(now.minusSeconds(60)), Date.from(now.plusSeconds(3600)), name, k.getPublic())
        .build(new JcaContentSignerBuilder("SHA256withECDSA").build(k.getPrivate())));
    return new GrpcTlsConfig(RaftTls.keyManager(cert, k.getPrivate()), TRUST_ANYTHING, true);
  }

  private static Message entry(byte[] bytes) {
    return Message.valueOf(ByteString.copyFrom(bytes));
  }

  /** What main's attacker submitted: a real mutation of the project's own format. */
  private Message deleteFirstLegitKey() {
    return entry(new Mutation.DeleteKey(legitKeys.isEmpty() ? "0".repeat(32) : legitKeys.get(0)).toBytes());
  }

  // ---- the legitimate client ----

  /** Creates keys through the log until stopped (at least {@code min}, at most 40); counts its errors. */
  private final class LegitimateSubmitter extends Thread {
    final AtomicInteger ok = new AtomicInteger();
    final AtomicInteger errors = new AtomicInteger();
    final AtomicBoolean stop = new AtomicBoolean();
    private final int min;

    LegitimateSubmitter(int min) {
      this.min = min;
      setDaemon(true);
    }

    @Override
    public void run() {
      for (int n = 0; n < 40 && (ok.get() + errors.get() < min || !stop.get()); n++) {
        try {
          String id = tokens.get(0).keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "legit-" + n, false).keyId();
          logs[n % 3].submit(Mutation.InstallReplica.of(tokens.get(0).clusterKeys().wrapForReplication(id)))
              .get(20, TimeUnit.SECONDS);
          legitKeys.add(id);
          ok.incrementAndGet();
        } catch (Exception e) {
          errors.incrementAndGet();
        }
      }
    }

    void finish() throws InterruptedException {
      stop.set(true);
      join(120_000);
      assertFalse(isAlive(), "the legitimate submitter finished");
    }
  }

  /** What each token holds, read through PKCS#11: key ids, users, ACLs. */
  private record TokenState(List<String> keys, List<String> users, List<String> acls) {}

  private TokenState state(int i) {
    HsmToken t = tokens.get(i);
    return new TokenState(t.keys().list().stream().map(KeyInfo::keyId).sorted().toList(),
        t.users().list().stream().map(u -> u.name() + "/" + u.role()).sorted().toList(),
        t.keyAcls().list().stream().map(a -> a.keyId() + "/" + a.owner()).sorted().toList());
  }

  private long auditLines(int i) throws IOException {
    audits[i].sync();
    return Files.readAllLines(auditFile(i), StandardCharsets.UTF_8).size();
  }

  /** Every token holds the legitimate keys, as token 0 made them, and nothing else changed. */
  private void assertOnlyLegitimateChanges(List<TokenState> before, long[] auditBefore) throws IOException {
    long last = logs[0].submit(new Mutation.DeleteKey("0".repeat(32))).join();
    for (int i = 0; i < 3; i++) {
      MutationLog log = logs[i];
      awaitTrue("HSM " + i + " applied everything", () -> log.appliedIndex() >= last);
      TokenState now = state(i);
      List<String> expectedKeys = new ArrayList<>(before.get(i).keys());
      expectedKeys.addAll(legitKeys);
      expectedKeys.sort(null);
      assertEquals(expectedKeys, now.keys(), "HSM " + i + ": the keys it had and the legitimate ones, no other change");
      assertEquals(before.get(i).users(), now.users(), "HSM " + i + ": users unchanged");
      assertEquals(before.get(i).acls(), now.acls(), "HSM " + i + ": ACLs unchanged");
      assertEquals(auditBefore[i], auditLines(i), "HSM " + i + ": no audit line from the attacks");
      assertEquals(0, log.refusedEntries(), "nothing of the attacker reached any HSM's log");
      assertNull(log.failure());
      assertEquals(peers, log.peers(), "HSM " + i + ": the group kept its members");
    }
  }

  private List<TokenState> states() {
    return List.of(state(0), state(1), state(2));
  }

  private long[] auditCounts() throws IOException {
    return new long[] {auditLines(0), auditLines(1), auditLines(2)};
  }

  // ---- the attacks ----

  /** (a)-(c): without an agent certificate of this cluster's CA, nothing gets through: not even the group list. */
  @Test
  @Timeout(240)
  void withoutAnAgentCertificateOfTheClusterNobodyListsSubmitsOrChangesTheGroup() throws Exception {
    // The control: an agent certificate of this CA lists the group (so a refusal below is the transport's doing).
    ClusterCa.MemberFiles insider = ca.issueMember("insider", ClusterCa.MemberKind.AGENT, List.of("127.0.0.1"), dir.resolve("insider"));
    try (RaftClient agent = attacker(tlsWith(insider))) {
      assertEquals(List.of(RaftGroupId.valueOf(groupId)),
          agent.getGroupManagementApi(RaftPeerId.valueOf("hsm1")).list().getGroupIds());
    }
    List<TokenState> before = states();
    long[] auditBefore = auditCounts();
    LegitimateSubmitter legit = new LegitimateSubmitter(6);
    legit.start();

    ClusterCa rogueCa = ClusterCa.create(dir.resolve("rogue-ca"), CLUSTER); // same cluster name, another CA
    List<String> refusedAs = new ArrayList<>();
    refusedAs.add(attack("plaintext gRPC", null));
    refusedAs.add(attack("a self-signed agent certificate", selfSignedAgent()));
    refusedAs.add(attack("an agent certificate of another CA", tlsWith(rogueCa.issueMember("hsm1",
        ClusterCa.MemberKind.AGENT, List.of("127.0.0.1"), dir.resolve("rogue")))));
    refusedAs.add(attack("the bridge's front-door certificate", tlsWith(ca.issueMember("bridge",
        ClusterCa.MemberKind.FRONT_DOOR, List.of("127.0.0.1"), dir.resolve("bridge")))));
    refusedAs.add(attack("an application's client certificate", tlsWith(ca.issueMember("app",
        ClusterCa.MemberKind.CLIENT, List.of("127.0.0.1"), dir.resolve("app")))));
    legit.finish();

    assertEquals(0, legit.errors.get(), "the legitimate client was served throughout");
    assertTrue(legit.ok.get() >= 6);
    assertOnlyLegitimateChanges(before, auditBefore);
    assertEquals(5, refusedAs.size());
  }

  /**
   * One attacker, one certificate: group list, group info, group remove, a mutation of the project's own
   * format (main's attacker deleted alice's key with one), and setConfiguration dropping an HSM. Each call
   * must fail; a reply that says success fails the test.
   */
  private String attack(String as, GrpcTlsConfig tls) throws Exception {
    try (RaftClient rogue = attacker(tls)) {
      RaftPeerId hsm1 = RaftPeerId.valueOf("hsm1");
      assertThrows(Exception.class, () -> rogue.getGroupManagementApi(hsm1).list(), as + ": group list");
      assertThrows(Exception.class, () -> rogue.getGroupManagementApi(hsm1).info(RaftGroupId.valueOf(groupId)),
          as + ": group info");
      assertThrows(Exception.class, () -> rogue.getGroupManagementApi(hsm1).remove(RaftGroupId.valueOf(groupId), true, false),
          as + ": group remove");
      assertFails(() -> rogue.io().send(deleteFirstLegitKey()), as + ": submit");
      assertFails(() -> rogue.admin().setConfiguration(group().getPeers().stream().limit(2).toList()), as + ": setConfiguration");
    }
    return as;
  }

  private interface Call {
    RaftClientReply call() throws IOException;
  }

  private static void assertFails(Call call, String what) {
    try {
      RaftClientReply reply = call.call();
      assertFalse(reply.isSuccess(), what + " succeeded");
    } catch (IOException | RuntimeException expected) {
      // refused in the TLS handshake
    }
  }

  /**
   * (d): an insider with a real agent certificate gets through the transport, but the leader decodes every
   * entry before logging it: main's 4-byte entry of an unknown kind (which stopped every HSM for good) and
   * a truncated entry are refused to the submitter, never logged; the cluster keeps committing, and
   * after every peer is stopped and started again it still serves.
   */
  @Test
  @Timeout(300)
  void anInsidersUndecodableEntriesAreRefusedBeforeTheyAreLoggedAndTheClusterSurvivesARestart() throws Exception {
    ClusterCa.MemberFiles insider = ca.issueMember("insider", ClusterCa.MemberKind.AGENT, List.of("127.0.0.1"), dir.resolve("insider"));
    List<TokenState> before = states();
    long[] auditBefore = auditCounts();
    LegitimateSubmitter legit = new LegitimateSubmitter(6);
    legit.start();
    byte[] unknownKind = {1, 42, 0, 0};
    byte[] truncated = Arrays.copyOf(new Mutation.DeleteKey("0".repeat(32)).toBytes(), 9);
    try (RaftClient rogue = attacker(tlsWith(insider))) {
      for (byte[] bad : List.of(unknownKind, truncated)) {
        StateMachineException e = assertThrows(StateMachineException.class, () -> rogue.io().send(entry(bad)));
        assertTrue(e.getMessage().contains("mutation refused before it was logged"), e.getMessage());
      }
    }
    legit.finish();
    assertEquals(0, legit.errors.get(), "the legitimate client was served throughout");
    assertOnlyLegitimateChanges(before, auditBefore);

    // `down` + `up`: every peer stopped, then started over the same logs and tokens.
    stopAll();
    startAll();
    LegitimateSubmitter after = new LegitimateSubmitter(3);
    after.start();
    after.finish();
    assertEquals(0, after.errors.get(), "served after the restart");
    assertOnlyLegitimateChanges(before, auditBefore);
  }

  /**
   * A membership change (what {@code hsm remove} does through an agent) is audited on every HSM that stays,
   * the joint configuration, then the new one, each with its log index. The removed HSM audits it too when
   * the entry reached it; on a loaded host it may not (the joint configuration commits with a majority of
   * the old membership without it), so it is not required of it.
   */
  @Test
  @Timeout(120)
  void everyMembershipChangeIsAuditedOnEveryHsm() throws Exception {
    long[] before = auditCounts();
    logs[0].setPeers(peers.subList(0, 2), java.time.Duration.ofSeconds(30));
    long last = logs[0].submit(new Mutation.DeleteKey("0".repeat(32))).get(20, TimeUnit.SECONDS);
    for (int i = 0; i < 2; i++) {
      MutationLog log = logs[i];
      awaitTrue("applied", () -> log.appliedIndex() >= last);
    }
    for (int i = 0; i < 2; i++) {
      int n = i;
      awaitTrue("HSM " + i + " audited the change", () -> {
        try {
          return Files.readAllLines(auditFile(n), StandardCharsets.UTF_8).stream()
              .anyMatch(l -> l.contains("\"op\":\"raft.membership\"") && l.contains(": hsm1,hsm2 (from hsm1,hsm2,hsm3)"));
        } catch (IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      });
    }
    for (int i = 0; i < 2; i++) {
      audits[i].sync();
      List<String> lines = Files.readAllLines(auditFile(i), StandardCharsets.UTF_8);
      assertEquals(before[i] + 2, lines.size(), "HSM " + i + ": the joint and the new configuration, once each");
      assertTrue(lines.get(lines.size() - 1).matches(".*\"result\":\"entry \\d+: hsm1,hsm2\".*"), lines.get(lines.size() - 1));
      assertTrue(AuditLog.verify(auditFile(i), tokens.get(i).auditKey()::mac).intact());
    }
  }

  /**
   * (e): an entry that reaches apply all the same (logged by an older build, or refused by the applier
   * for a deterministic reason, as the principal check does) is skipped on the HSM, counted, audited, and
   * later entries are applied. Driven through the production state machine on a real token.
   */
  @Test
  @Timeout(120)
  void anEntryThatCannotBeAppliedIsSkippedCountedAuditedAndLaterEntriesAreApplied() throws Exception {
    stopAll(); // this test drives a state machine directly
    HsmToken t = tokens.get(1);
    String kept = tokens.get(0).keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "kept", false).keyId();
    String added = tokens.get(0).keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "added", false).keyId();
    // The log transport is under test here, not who may submit what: apply without authorization.
    TokenApplier token = TokenApplier.unchecked(t);
    Applier refusingDeletes = new Applier() {
      @Override
      public void apply(long index, Mutation m) {
        if (m instanceof Mutation.DeleteKey) {
          throw new RefusedEntryException("principal mallory may not delete keys");
        }
        token.apply(index, m);
      }

      @Override
      public long lastApplied() {
        return token.lastApplied();
      }

      @Override
      public void applied(long index) {
        token.applied(index);
      }
    };
    TokenStateMachine sm = new TokenStateMachine(refusingDeletes, new LogEventAudit(audits[1]));
    long base = token.lastApplied();
    long auditBefore = auditLines(1);
    applyEntry(sm, base + 1, Mutation.InstallReplica.of(tokens.get(0).clusterKeys().wrapForReplication(kept)).toBytes());
    applyEntry(sm, base + 2, new byte[] {1, 42, 0, 0});
    applyEntry(sm, base + 3, new Mutation.DeleteKey(kept).toBytes());
    applyEntry(sm, base + 4, Mutation.InstallReplica.of(tokens.get(0).clusterKeys().wrapForReplication(added)).toBytes());

    assertNull(sm.failure(), "never a reason to stop");
    assertEquals(base + 4, TokenApplier.unchecked(t).lastApplied(), "the token's applied index moved past both");
    List<String> keys = t.keys().list().stream().map(KeyInfo::keyId).toList();
    assertTrue(keys.contains(kept), "the refused deletion changed nothing");
    assertTrue(keys.contains(added), "the entry after the refusals was applied");
    assertEquals(2, sm.refusedEntries());
    assertEquals(base + 3, sm.lastRefusal().index());

    audits[1].sync();
    List<String> lines = Files.readAllLines(auditFile(1), StandardCharsets.UTF_8);
    // The state machine audits the entry that did not decode; an entry the applier refuses is audited by
    // the applier with the principal it claimed (TokenApplier; EntryAuthorizationAttackTest), not here.
    assertEquals(auditBefore + 1, lines.size());
    assertTrue(lines.get(lines.size() - 1).contains("REFUSED entry " + (base + 2) + " (unknown): unknown mutation kind 42"),
        lines.get(lines.size() - 1));
    assertTrue(lines.stream().allMatch(l -> !l.contains(kept)), "no entry bytes (key ids) in the audit lines");
    assertTrue(AuditLog.verify(auditFile(1), t.auditKey()::mac).intact(), "the audit chain holds");
  }

  private static void applyEntry(TokenStateMachine sm, long index, byte[] data) {
    var entry = org.apache.ratis.proto.RaftProtos.LogEntryProto.newBuilder().setTerm(1).setIndex(index)
        .setStateMachineLogEntry(org.apache.ratis.proto.RaftProtos.StateMachineLogEntryProto.newBuilder()
            .setLogData(ByteString.copyFrom(data)))
        .build();
    sm.applyTransaction(org.apache.ratis.statemachine.TransactionContext.newBuilder().setStateMachine(sm)
        .setLogEntry(entry).build()).join();
  }

  private static void awaitTrue(String what, java.util.function.BooleanSupplier condition) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("timed out waiting for: " + what);
      }
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError(e);
      }
    }
  }
}
