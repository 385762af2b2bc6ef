package io.hsmbridge.agent.replication;

import static io.hsmbridge.agent.replication.UserAclMutationTest.user;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyAcl;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.pkcs11.TokenConfig;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The user and key-ACL kinds applied by the production {@link TokenApplier} to two real SoftHSM2 tokens
 * that share a cluster key, in the same order: both end with the same users and ACLs, re-applying
 * changes nothing, and everything survives closing and reopening the tokens.
 */
class UserAclApplierTest {
  private static final String K1 = "11111111111111111111111111111111";
  private static final String K2 = "22222222222222222222222222222222";
  private static final String K3 = "33333333333333333333333333333333";
  private static final String ABSENT = "ffffffffffffffffffffffffffffffff";

  private final List<TokenConfig> configs = new ArrayList<>();
  private final List<HsmToken> tokens = new ArrayList<>();

  @BeforeEach
  void twoTokensWithOneClusterKey() {
    for (int i = 0; i < 2; i++) {
      configs.add(SoftHsmFixture.newToken("users-acl-" + i));
      tokens.add(HsmToken.open(configs.get(i)));
    }
    tokens.get(0).clusterKeys().createClusterKey();
    byte[] transport = tokens.get(1).clusterKeys().createTransportKey();
    tokens.get(1).clusterKeys().installClusterKey(tokens.get(0).clusterKeys().wrapClusterKeyFor(transport));
  }

  @AfterEach
  void close() {
    tokens.forEach(HsmToken::close);
  }

  private static void applyEverywhere(List<TokenStateMachine> sms, long index, Mutation m) {
    byte[] entry = m.toBytes();
    for (TokenStateMachine sm : sms) {
      sm.apply(1, index, entry);
      assertNull(sm.failure());
    }
  }

  private static void assertSame(HsmToken a, HsmToken b) {
    assertEquals(a.users().list(), b.users().list(), "users differ");
    assertEquals(a.keyAcls().list(), b.keyAcls().list(), "ACLs differ");
    assertEquals(a.users().rescan(), b.users().rescan(), "users on the tokens differ");
    assertEquals(a.keyAcls().rescan(), b.keyAcls().rescan(), "ACLs on the tokens differ");
  }

  @Test
  void twoTokensApplyingTheSameEntriesHoldTheSameUsersAndAcls() {
    HsmToken a = tokens.get(0);
    List<TokenStateMachine> sms = tokens.stream().map(t -> new TokenStateMachine(TokenApplier.unchecked(t))).toList();
    UserRecord alice = user("alice", "CU");
    UserRecord bob = user("bob", "CU");
    UserRecord carol = user("carol", "CU");
    UserRecord admin = user("admin", "CO");
    KeyAcl k1 = new KeyAcl(K1, "alice", Set.of("bob"));
    List<Mutation> log = new ArrayList<>();
    log.add(new Mutation.PutUser(alice));
    log.add(new Mutation.PutUser(bob));
    log.add(new Mutation.PutUser(carol));
    log.add(new Mutation.PutUser(admin));
    // A key created with its owner: one entry.
    log.add(Mutation.InstallOwnedReplica.of(
        a.clusterKeys().generateForReplication(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "alice's", K1), k1));
    log.add(new Mutation.PutAcl(k1.withShare("carol")));
    // Five failures lock (PUT_USER keeps the lockout bookkeeping: only the log's login entries change it).
    for (int i = 0; i < 5; i++) {
      String attempt = "000000000000000" + i;
      log.add(new Mutation.LoginAttempt("alice", attempt, 1_000L));
      log.add(new Mutation.LoginOutcome("alice", attempt, false, 1_001L));
    }
    // Deleting bob removes him from every share list.
    log.add(new Mutation.DeleteUser("bob"));
    // The other way to give a key an owner: INSTALL_REPLICA, then PUT_ACL.
    log.add(Mutation.InstallReplica.of(
        a.clusterKeys().generateForReplication(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "carol's", K2)));
    log.add(new Mutation.PutAcl(KeyAcl.ownedBy(K2, "carol")));
    // No-ops: an ACL for a key no token holds, deletes of absent things.
    log.add(new Mutation.PutAcl(KeyAcl.ownedBy(ABSENT, "carol")));
    log.add(new Mutation.DeleteAcl(ABSENT));
    log.add(new Mutation.DeleteUser("nobody"));
    log.add(new Mutation.DeleteKey(ABSENT));
    // DELETE_KEY takes the key's ACL with it.
    log.add(new Mutation.DeleteKey(K2));
    // A second creation with an existing key's id (say a reused request id) changes neither key nor owner.
    log.add(Mutation.InstallOwnedReplica.of(
        a.clusterKeys().generateForReplication(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "mallory's", K1),
        KeyAcl.ownedBy(K1, "mallory")));
    // A key whose ACL is removed (the key stays).
    log.add(Mutation.InstallOwnedReplica.of(
        a.clusterKeys().generateForReplication(KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, "admin's", K3),
        KeyAcl.ownedBy(K3, "admin")));
    log.add(new Mutation.DeleteAcl(K3.toUpperCase()));

    long index = 0;
    for (Mutation m : log) {
      applyEverywhere(sms, ++index, m);
      assertSame(tokens.get(0), tokens.get(1));
    }
    List<UserRecord> users = List.of(admin, alice.withFailedLogins(5).withLocked(true), carol);
    List<KeyAcl> acls = List.of(new KeyAcl(K1, "alice", Set.of("carol")));
    for (HsmToken t : tokens) {
      assertEquals(users, t.users().list());
      assertEquals(acls, t.keyAcls().list());
      assertEquals("alice's", t.keys().describe(K1).label(), "the first creation kept its key");
      assertEquals(List.of(K1, K3), t.keys().list().stream().map(k -> k.keyId()).sorted().toList());
      assertEquals(Optional.empty(), t.keyAcls().get(K3));
      assertEquals(index, t.appliedIndex().read());
    }

    // Re-applying every entry (a crash between apply and the index write, on every entry) changes nothing.
    for (HsmToken t : tokens) {
      TokenApplier again = TokenApplier.unchecked(t);
      for (Mutation m : log) {
        again.apply(0, m);
      }
      assertEquals(users, t.users().rescan());
      assertEquals(acls, t.keyAcls().rescan());
      assertEquals(2, t.keys().count());
    }
    assertSame(tokens.get(0), tokens.get(1));

    // Users and ACLs are in the tokens: close, reopen, still there and still equal.
    close();
    tokens.clear();
    configs.forEach(c -> tokens.add(HsmToken.open(c)));
    for (HsmToken t : tokens) {
      assertEquals(users, t.users().list());
      assertEquals(acls, t.keyAcls().list());
      assertEquals(index, TokenApplier.unchecked(t).lastApplied());
    }
  }

  @Test
  void reApplyingAfterACrashInsideAnEntryCompletesIt() {
    HsmToken a = tokens.get(0);
    TokenApplier applier = TokenApplier.unchecked(a);
    KeyAcl acl = new KeyAcl(K1, "alice", Set.of("bob"));
    Mutation.InstallOwnedReplica create = Mutation.InstallOwnedReplica.of(
        a.clusterKeys().generateForReplication(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "k", K1), acl);
    // Crash after the ACL was written, before the key was installed.
    a.keyAcls().put(acl);
    applier.apply(1, create);
    assertEquals(K1, a.keys().describe(K1).keyId());
    assertEquals(Optional.of(acl), a.keyAcls().get(K1));
    // A stale ACL without key (e.g. from a local-only key deleted outside the log) is replaced by the creation's.
    Mutation.InstallOwnedReplica other = Mutation.InstallOwnedReplica.of(
        a.clusterKeys().generateForReplication(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "k2", K2),
        KeyAcl.ownedBy(K2, "carol"));
    a.keyAcls().put(KeyAcl.ownedBy(K2, "mallory"));
    applier.apply(2, other);
    assertEquals(Optional.of(KeyAcl.ownedBy(K2, "carol")), a.keyAcls().get(K2));
    // Crash after DELETE_KEY destroyed the key, before its ACL went.
    a.keys().delete(K1);
    applier.apply(3, new Mutation.DeleteKey(K1));
    assertEquals(Optional.empty(), a.keyAcls().get(K1));
    // Crash after DELETE_USER deleted the user, before the shares were cleaned.
    a.users().put(user("dave", "CU"));
    applier.apply(4, new Mutation.PutAcl(new KeyAcl(K2, "carol", Set.of("dave", "erin"))));
    a.users().delete("dave");
    applier.apply(5, new Mutation.DeleteUser("dave"));
    assertEquals(Set.of("erin"), a.keyAcls().get(K2).orElseThrow().shares());
  }
}
