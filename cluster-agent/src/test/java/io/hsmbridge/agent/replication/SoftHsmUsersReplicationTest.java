package io.hsmbridge.agent.replication;

import static io.hsmbridge.agent.replication.TestCluster.await;
import static io.hsmbridge.agent.replication.UserAclMutationTest.user;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyAcl;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.pkcs11.TokenConfig;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Users and key ACLs through a real Raft group of three peers over three SoftHSM2 tokens: every token
 * ends with the same records, they survive a full restart (tokens closed and reopened, peers restarted),
 * and a wiped token replayed the whole log gets them back.
 */
class SoftHsmUsersReplicationTest {
  @TempDir
  Path dir;
  private final List<TokenConfig> configs = new ArrayList<>();
  private final List<HsmToken> tokens = new ArrayList<>();
  private TestCluster cluster;

  @AfterEach
  void close() {
    if (cluster != null) {
      cluster.close();
    }
    tokens.forEach(HsmToken::close);
  }

  private static void joinCluster(HsmToken member, HsmToken joiner) {
    byte[] transport = joiner.clusterKeys().createTransportKey();
    joiner.clusterKeys().installClusterKey(member.clusterKeys().wrapClusterKeyFor(transport));
  }

  private void awaitApplied(long index) {
    for (MutationLog log : cluster.logs) {
      await("applied everywhere", 30_000, () -> log.appliedIndex() >= index);
      assertNull(log.failure());
    }
  }

  @Test
  @Timeout(120)
  void usersAndAclsReplicateSurviveAFullRestartAndComeBackToAWipedToken() throws Exception {
    for (int i = 1; i <= 3; i++) {
      configs.add(SoftHsmFixture.newToken("raft-users-" + i));
      tokens.add(HsmToken.open(configs.get(i - 1)));
    }
    tokens.get(0).clusterKeys().createClusterKey();
    joinCluster(tokens.get(0), tokens.get(1));
    joinCluster(tokens.get(0), tokens.get(2));
    cluster = new TestCluster(dir, tokens.stream().map(TokenApplier::unchecked).toList()).startAll();

    HsmToken first = tokens.get(0);
    String k1 = "000000000000000000000000000000a1";
    UserRecord alice = user("alice", "CU");
    UserRecord bob = user("bob", "CU");
    cluster.logs[0].submit(new Mutation.PutUser(alice)).get(20, TimeUnit.SECONDS);
    cluster.logs[1].submit(new Mutation.PutUser(bob)).get(20, TimeUnit.SECONDS);
    cluster.logs[2].submit(new Mutation.PutUser(user("admin", "CO"))).get(20, TimeUnit.SECONDS);
    cluster.logs[2].submit(Mutation.InstallOwnedReplica.of(
        first.clusterKeys().generateForReplication(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "alice's", k1),
        KeyAcl.ownedBy(k1, "alice"))).get(20, TimeUnit.SECONDS);
    cluster.logs[1].submit(new Mutation.PutAcl(new KeyAcl(k1, "alice", Set.of("bob")))).get(20, TimeUnit.SECONDS);
    // One failed login of bob (PUT_USER keeps the lockout bookkeeping: only the login entries count).
    cluster.logs[0].submit(new Mutation.LoginAttempt("bob", "00000000000000b1", 1_000L)).get(20, TimeUnit.SECONDS);
    cluster.logs[0].submit(new Mutation.LoginOutcome("bob", "00000000000000b1", false, 1_001L)).get(20, TimeUnit.SECONDS);
    long last = cluster.logs[0].submit(new Mutation.DeleteUser("admin")).get(20, TimeUnit.SECONDS);
    awaitApplied(last);

    List<UserRecord> users = List.of(alice, bob.withFailedLogins(1));
    List<KeyAcl> acls = List.of(new KeyAcl(k1, "alice", Set.of("bob")));
    for (HsmToken t : tokens) {
      assertEquals(users, t.users().list(), t.label());
      assertEquals(acls, t.keyAcls().list(), t.label());
      assertEquals(users, t.users().rescan(), t.label());
      assertEquals(acls, t.keyAcls().rescan(), t.label());
    }

    // Full restart: every peer stops, every token is closed and reopened, every peer starts again.
    cluster.close();
    tokens.forEach(HsmToken::close);
    tokens.clear();
    configs.forEach(c -> tokens.add(HsmToken.open(c)));
    for (HsmToken t : tokens) {
      assertEquals(users, t.users().list(), t.label() + " after the restart");
      assertEquals(acls, t.keyAcls().list(), t.label() + " after the restart");
    }
    // The third HSM comes back with a wiped token: a new one, given the cluster key, replayed the whole log.
    tokens.get(2).close();
    configs.set(2, SoftHsmFixture.newToken("raft-users-wiped"));
    tokens.set(2, HsmToken.open(configs.get(2)));
    joinCluster(tokens.get(0), tokens.get(2));
    assertEquals(List.of(), tokens.get(2).users().list());
    for (int i = 0; i < 3; i++) {
      cluster.replaceApplier(i, TokenApplier.unchecked(tokens.get(i)));
    }
    cluster.startAll();
    long next = cluster.logs[1].submit(new Mutation.PutAcl(KeyAcl.ownedBy(k1, "bob"))).get(20, TimeUnit.SECONDS);
    awaitApplied(next);
    List<KeyAcl> handedOver = List.of(KeyAcl.ownedBy(k1, "bob"));
    for (HsmToken t : tokens) {
      assertEquals(users, t.users().rescan(), t.label());
      assertEquals(handedOver, t.keyAcls().rescan(), t.label());
      assertEquals("alice's", t.keys().describe(k1).label(), t.label());
    }
  }
}
