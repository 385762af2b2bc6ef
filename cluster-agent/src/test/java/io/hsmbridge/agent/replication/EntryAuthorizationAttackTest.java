package io.hsmbridge.agent.replication;

import static io.hsmbridge.agent.replication.TestCluster.await;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.agent.ClusterOperations;
import io.hsmbridge.agent.users.PasswordHash;
import io.hsmbridge.agent.users.Principal;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyAcl;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue #10, item 1: entries that name a principal they do not act for, submitted straight into the Raft
 * log, as a compromised front door (which holds the session proofs of the users who logged in through it)
 * or an insider with an agent's Raft access would. Three real SoftHSM2 tokens, a real 3-peer Raft group,
 * the real agent request handler ({@link ClusterOperations}) on each; the front door is played by hand
 * (it puts the principal and the session proof a login returned into each request, as FrontDoor does).
 *
 * <p>Each attack must be (1) refused at apply on every HSM, reported ({@code MutationLog.refusal}) and
 * audited ({@code REFUSED@index}) on every HSM, while (2) a legitimate client keeps being served with 0
 * errors, and (3) every token, read directly, holds exactly the users, ACLs and keys the legitimate
 * requests made. The positive paths run through the same agents: a CO creates users, an owner shares.
 */
class EntryAuthorizationAttackTest {
  private static final String ADMIN_PASSWORD = "admin-password-" + UUID.randomUUID();
  private static final String CU_PASSWORD = "crypto-user-pw-" + UUID.randomUUID();

  @TempDir
  Path dir;
  private final List<HsmToken> tokens = new ArrayList<>();
  private final List<List<String>> audits = new ArrayList<>();
  private final List<ClusterOperations> agents = new ArrayList<>();
  private TestCluster cluster;

  @AfterEach
  void close() {
    if (cluster != null) {
      cluster.close();
    }
    tokens.forEach(HsmToken::close);
  }

  @Test
  @Timeout(300)
  void entriesThatActForSomeoneElseAreRefusedOnEveryHsmWhileTheClusterKeepsServing() throws Exception {
    startCluster();

    // --- before the first login: a poisoned session-proof key (the one entry that needs no seal) ---
    byte[] garbage = new byte[40];
    new SecureRandom().nextBytes(garbage);
    long poisonedAt = cluster.logs[1].submit(new Entry(Actor.agent("hsm-2", System.currentTimeMillis()),
        System.currentTimeMillis(), "hsm-2", null, new Mutation.InstallReplica(EntryProofs.KEY_ID, "x",
            io.hsmbridge.protocol.KeySpec.HMAC_SHA256, io.hsmbridge.protocol.KeyUsage.SIGN_VERIFY, garbage, null)))
        .get(20, TimeUnit.SECONDS);
    for (int h = 0; h < 3; h++) {
      MutationLog log = cluster.logs[h];
      await("the poisoned key reached every HSM", 30_000, () -> log.appliedIndex() >= poisonedAt);
      assertNull(log.failure(), "a key that does not unwrap must not stop a peer");
      assertNotNull(log.refusal(poisonedAt));
      assertFalse(new EntryProofs(tokens.get(h)).hasKey());
    }

    // --- the legitimate setup, through the agents: activation, a CO, three crypto users, a key, a share ---
    JsonObject preco = login(0, "admin", "password");
    assertEquals("PRECO", preco.getString("role"));
    call(1, preco, new JsonObject().put("op", "cluster.activate").put("password", ADMIN_PASSWORD)); // another HSM verifies the proof
    JsonObject admin = login(2, "admin", ADMIN_PASSWORD);
    for (String name : List.of("alice", "bob", "carol")) {
      call(name.length() % 3, admin, new JsonObject().put("op", "user.create").put("name", name).put("role", "CU")
          .put("password", CU_PASSWORD)); // positive path: a real CO's request creates a user
    }
    JsonObject alice = login(0, "alice", CU_PASSWORD);
    JsonObject bob = login(1, "bob", CU_PASSWORD);
    String keyId = call(2, alice, new JsonObject().put("op", "key.generate").put("spec", "AES_256")
        .put("label", "alice's").put("requestId", UUID.randomUUID().toString())).getString("keyId");
    call(0, alice, new JsonObject().put("op", "key.share").put("keyId", keyId).put("user", "carol")); // positive: the owner shares

    // positive: an agent's own entry (a failed login counted) and a user changing its own password
    HsmException wrong = assertThrows(HsmException.class, () -> agents.get(1).execute(new JsonObject()
        .put("op", "auth.login").put("user", "carol").put("password", "not-carols-password")));
    assertEquals(ErrorCode.LOGIN_FAILED, wrong.code());
    String bobsOldHash = tokens.get(0).users().get("bob").orElseThrow().passwordHash();
    call(2, bob, new JsonObject().put("op", "user.changePassword").put("name", "bob").put("password", CU_PASSWORD + "-2"));
    for (HsmToken t : tokens) {
      await("carol's failed login counted everywhere", 30_000, () -> t.users().get("carol").orElseThrow().failedLogins() == 1);
      await("bob's new password everywhere", 30_000, () -> !t.users().get("bob").orElseThrow().passwordHash().equals(bobsOldHash));
    }

    // positive: a user creation sent twice with one requestId (its answer lost), to two HSMs: applied once
    JsonObject createErin = new JsonObject().put("op", "user.create").put("name", "Erin").put("role", "CU")
        .put("password", CU_PASSWORD).put("requestId", "create-erin-1");
    JsonObject first = call(0, admin, createErin);
    assertNull(first.getValue("repeated"), first.encode());
    JsonObject again = call(1, admin, createErin);
    assertEquals(true, again.getBoolean("repeated"), again.encode());
    assertEquals("erin", again.getString("name"));
    assertEquals("CU", again.getString("role"));
    String outcome = Settings.outcome("admin", "create-erin-1");
    for (HsmToken t : tokens) {
      await("erin's outcome recorded everywhere", 30_000, () -> t.settings().get(outcome, 0) != 0);
      assertTrue(t.users().get("erin").isPresent(), t.label());
    }

    List<UserRecord> usersBefore = tokens.get(0).users().list();
    KeyAcl aclBefore = tokens.get(0).keyAcls().get(keyId).orElseThrow();
    assertEquals(new KeyAcl(keyId, "alice", Set.of("carol")), aclBefore);
    UserRecord aliceRecord = tokens.get(0).users().get("alice").orElseThrow();

    // --- a legitimate client keeps working meanwhile: alice relabels (through the log) and encrypts ---
    AtomicBoolean attacking = new AtomicBoolean(true);
    AtomicInteger served = new AtomicInteger();
    List<String> clientErrors = Collections.synchronizedList(new ArrayList<>());
    Thread client = new Thread(() -> {
      for (int i = 0; attacking.get() && i < 400; i++) {
        try {
          call(i % 3, alice, new JsonObject().put("op", "encrypt").put("keyId", keyId).put("alg", "AES_GCM")
              .put("plaintext", Base64.getEncoder().encodeToString(("hello " + i).getBytes())));
          if (i % 4 == 0) {
            call((i + 1) % 3, alice, new JsonObject().put("op", "key.setLabel").put("keyId", keyId).put("label", "alice's"));
          }
          served.incrementAndGet();
        } catch (RuntimeException e) {
          clientErrors.add(e.toString());
        }
      }
    });
    client.start();

    HsmToken any = tokens.get(0);
    EntryProofs proofs = new EntryProofs(any);
    long now = System.currentTimeMillis();
    String chosenHash = PasswordHash.hash("attacker-chosen-password".toCharArray());
    Mutation mintCo = new Mutation.PutUser(new UserRecord("mallory", "CO", chosenHash, 0, false, null));
    Actor adminActor = actor(admin, "admin", Role.CO);
    Actor aliceActor = actor(alice, "alice", Role.CU);
    Actor bobActor = actor(bob, "bob", Role.CU);
    Actor noProof = new Actor(Actor.Role.CO, "admin", adminActor.sessionId(), adminActor.issuedAt(), adminActor.expiresAt(), null);
    byte[] random = new byte[32];
    new SecureRandom().nextBytes(random);
    Actor forgedProof = new Actor(Actor.Role.CO, "admin", adminActor.sessionId(), adminActor.issuedAt(), adminActor.expiresAt(), random);
    Actor extendedProof = new Actor(Actor.Role.CO, "admin", adminActor.sessionId(), adminActor.issuedAt(),
        adminActor.expiresAt() + 1, adminActor.proof());
    Actor aliceClaimingCo = new Actor(Actor.Role.CO, "alice", aliceActor.sessionId(), aliceActor.issuedAt(),
        aliceActor.expiresAt(), aliceActor.proof());
    // A real proof of the admin, made by a cluster token for a login 9 hours ago: expired.
    Actor expired = proofs.issue(Actor.Role.CO, "admin", now - Duration.ofHours(9).toMillis());
    Mutation bobShares = new Mutation.PutAcl(new KeyAcl(keyId, "alice", Set.of("bob", "carol")));
    Mutation bobTakes = new Mutation.PutAcl(KeyAcl.ownedBy(keyId, "bob"));
    Mutation bobDeletes = new Mutation.DeleteKey(keyId);
    Mutation bobTakesOver = new Mutation.PutUser(aliceRecord.withPasswordHash(PasswordHash.hash("bob-knows-this-one".toCharArray())));

    // (a) as a front door or Raft insider without a token: whatever the principal, the entry has no valid seal
    List<Entry> attacks = new ArrayList<>(List.of(
        new Entry(noProof, now, "hsm-1", null, mintCo),
        new Entry(adminActor, now, "hsm-1", null, mintCo), // the admin's REAL session proof, held by the front door
        new Entry(adminActor, now, "hsm-2", random, mintCo),
        new Entry(Actor.agent("hsm-3", now), now, "hsm-3", null, mintCo),
        new Entry(bobActor, now, "hsm-1", null, bobShares),
        new Entry(bobActor, now, "hsm-2", null, bobDeletes),
        new Entry(bobActor, now, "hsm-3", null, bobTakesOver)));
    // a genuine seal of an entry the admin made, moved onto another mutation
    Entry genuine = proofs.seal(adminActor, now, "hsm-1", new Mutation.PutSetting(Settings.ADMIN_QUORUM, 1));
    attacks.add(new Entry(adminActor, now, "hsm-1", genuine.seal(), mintCo));
    // None of (a) is even logged: the leader refuses an entry without a valid seal before it is logged.
    List<String> refusedBeforeLogging = new ArrayList<>();
    for (int i = 0; i < attacks.size(); i++) {
      int n = i;
      java.util.concurrent.ExecutionException e = assertThrows(java.util.concurrent.ExecutionException.class,
          () -> cluster.logs[n % 3].submit(attacks.get(n)).get(20, TimeUnit.SECONDS), "unsealed attack " + i);
      refusedBeforeLogging.add(String.valueOf(e.getCause()));
    }
    java.util.concurrent.ExecutionException formatOne = assertThrows(java.util.concurrent.ExecutionException.class,
        () -> cluster.logs[0].submit(mintCo).get(20, TimeUnit.SECONDS), "format 1, no envelope at all");
    refusedBeforeLogging.add(String.valueOf(formatOne.getCause()));
    assertTrue(refusedBeforeLogging.stream().allMatch(m -> m.contains("not sealed by a cluster HSM") || m.contains("format-1 entry")),
        String.join("\n", refusedBeforeLogging));
    assertTrue(refusedBeforeLogging.stream().noneMatch(m -> m.contains("$argon2id")));
    attacks.clear();
    // (b) sealed by a cluster token (a buggy or confused agent): the principal checks must still hold
    attacks.add(proofs.seal(noProof, now, "hsm-1", mintCo));
    attacks.add(proofs.seal(forgedProof, now, "hsm-2", mintCo));
    attacks.add(proofs.seal(extendedProof, now, "hsm-2", mintCo));
    attacks.add(proofs.seal(aliceActor, now, "hsm-3", mintCo)); // a CU's real proof
    attacks.add(proofs.seal(aliceClaimingCo, now, "hsm-3", mintCo)); // a CU's real proof claiming CO
    attacks.add(proofs.seal(expired, now, "hsm-1", mintCo)); // an expired proof
    attacks.add(proofs.seal(expired, expired.issuedAt() + 60_000, "hsm-1", mintCo)); // ... with a backdated timestamp
    attacks.add(proofs.seal(Actor.agent("hsm-2", now), now, "hsm-2", mintCo)); // an agent on its own
    attacks.add(proofs.seal(bobActor, now, "hsm-1", bobShares)); // share of alice's key by bob
    attacks.add(proofs.seal(bobActor, now, "hsm-2", bobTakes)); // bob takes alice's key over
    attacks.add(proofs.seal(bobActor, now, "hsm-3", bobDeletes)); // deletion of alice's key by bob
    attacks.add(proofs.seal(bobActor, now, "hsm-1", bobTakesOver)); // bob replaces alice's password hash
    attacks.add(proofs.seal(adminActor, now, "hsm-2", new Mutation.DeleteUser("admin"))); // an admin deleting itself
    attacks.add(proofs.seal(adminActor, now, "hsm-3", new Mutation.PutUser(aliceRecord.withApprovalKey(new byte[] {1}))));
    // the same changes inside an at-most-once wrapper: the wrapper changes nothing about who may do what
    attacks.add(proofs.seal(aliceActor, now, "hsm-2", new Mutation.Once("alice-mints", mintCo)));
    attacks.add(proofs.seal(bobActor, now, "hsm-3", new Mutation.Once("bob-takes", bobTakes)));
    attacks.add(proofs.seal(Actor.agent("hsm-1", now), now, "hsm-1", new Mutation.Once("agent-once", bobShares)));
    // bob forges an outcome record, to make the admin's next change with that requestId a no-op
    attacks.add(proofs.seal(bobActor, now, "hsm-2", new Mutation.PutSetting(Settings.outcome("admin", "next-change"), now)));
    // bob logs alice out (a CU ends its own session only)
    attacks.add(proofs.seal(bobActor, now, "hsm-1", new Mutation.PutSetting(Settings.revokedSession(aliceActor.sessionId()),
        aliceActor.expiresAt())));

    // alice "repairs" a chain herself: a repair's RESTORE_CERTIFICATES is an agent's own entry only
    attacks.add(proofs.seal(aliceActor, now, "hsm-2", new Mutation.RestoreCertificates(
        new Mutation.SetCertificates("0123456789abcdef0123456789abcdef", List.of(new byte[] {1})))));

    List<Long> refusedAt = new ArrayList<>();
    for (int i = 0; i < attacks.size(); i++) {
      refusedAt.add(cluster.logs[i % 3].submit(attacks.get(i)).get(20, TimeUnit.SECONDS));
    }
    long last = refusedAt.get(refusedAt.size() - 1);
    for (MutationLog log : cluster.logs) {
      await("every HSM applied the attacks", 30_000, () -> log.appliedIndex() >= last);
      assertNull(log.failure(), "a refused entry must not stop a peer");
    }
    for (int h = 0; h < 3; h++) {
      for (int i = 0; i < refusedAt.size(); i++) {
        long index = refusedAt.get(i);
        String what = "attack " + i + " at " + index + " on " + tokens.get(h).label();
        assertNotNull(cluster.logs[h].refusal(index), what + " was applied");
        List<String> lines = audits.get(h);
        synchronized (lines) {
          assertTrue(lines.stream().anyMatch(l -> l.contains("REFUSED@" + index + ":")), what + " is not audited");
        }
      }
      assertTrue(cluster.logs[h].refusedEntries() >= refusedAt.size());
    }
    // The refusal reasons say why, and hold no secret.
    String reasons = String.join("\n", refusedAt.stream().map(i -> cluster.logs[0].refusal(i)).toList());
    assertFalse(reasons.contains("$argon2id"), reasons);
    assertTrue(reasons.contains("no session proof"), reasons);
    assertTrue(reasons.contains("session proof does not verify"), reasons);
    assertTrue(reasons.contains("not valid at the entry's time"), reasons);
    assertTrue(reasons.contains("older than the log's clock"), reasons);
    assertTrue(reasons.contains("CU alice may not create a user"), reasons);
    assertTrue(reasons.contains("bob does not own key " + keyId), reasons);
    assertTrue(reasons.contains("an admin cannot delete itself"), reasons);
    assertTrue(reasons.contains("only a user registers its own approval key"), reasons);
    assertTrue(reasons.contains("bob (CU) may end its own session only"), reasons);
    assertTrue(reasons.contains("ONCE needs a user's principal, not an agent's"), reasons);
    assertTrue(reasons.contains("setting " + Settings.outcome("admin", "next-change") + " cannot be set by bob"), reasons);

    // --- a compromised front door forging the principal of a request to an agent ---
    JsonObject forgedCo = new JsonObject().put("user", "admin").put("role", "CO");
    JsonObject aliceAsCo = new JsonObject().put("user", "alice").put("role", "CO").put(Principal.PROOF, alice.getJsonObject(Principal.PROOF));
    JsonObject create = new JsonObject().put("op", "user.create").put("name", "mallory").put("role", "CO").put("password", "attacker-chosen-password");
    for (JsonObject principal : List.of(forgedCo, aliceAsCo)) {
      HsmException e = assertThrows(HsmException.class, () -> agents.get(0).execute(create.copy().put(Principal.FIELD, principal)));
      assertEquals(ErrorCode.NOT_AUTHENTICATED, e.code());
    }
    HsmException denied = assertThrows(HsmException.class, () -> call(1, bob,
        new JsonObject().put("op", "key.share").put("keyId", keyId).put("user", "bob")));
    assertEquals(ErrorCode.ACCESS_DENIED, denied.code());

    attacking.set(false);
    client.join(120_000);
    assertEquals(List.of(), clientErrors, "the legitimate client saw errors");
    assertTrue(served.get() > 0);

    // --- nothing changed: every token read directly ---
    for (HsmToken t : tokens) {
      assertEquals(usersBefore, t.users().rescan(), t.label());
      assertTrue(t.users().get("mallory").isEmpty(), t.label());
      assertEquals(aliceRecord.passwordHash(), t.users().get("alice").orElseThrow().passwordHash(), t.label());
      assertEquals(List.of(aclBefore), t.keyAcls().rescan(), t.label());
      assertEquals("alice's", t.keys().describe(keyId).label(), t.label());
      assertEquals(1, t.settings().get(Settings.ADMIN_QUORUM, 1), t.label());
      assertEquals(List.of(outcome), t.settings().rescan().stream().map(io.hsmbridge.pkcs11.ClusterSettings.Setting::name)
          .filter(n -> n.startsWith(Settings.OUTCOME_PREFIX)).toList(), "only erin's outcome on " + t.label());
    }
    // and the cluster still serves a legitimate change after the attacks
    call(2, admin, new JsonObject().put("op", "user.create").put("name", "dave").put("role", "CU").put("password", CU_PASSWORD));
    for (HsmToken t : tokens) {
      await("dave everywhere", 30_000, () -> t.users().get("dave").isPresent());
    }
  }

  // --- the cluster and a hand-played front door (TestAgents) ---

  private TestAgents env;

  private void startCluster() {
    env = TestAgents.start(dir, "principal");
    tokens.addAll(env.tokens);
    audits.addAll(env.audits);
    agents.addAll(env.agents);
    cluster = env.cluster;
  }

  private JsonObject login(int hsm, String user, String password) {
    return env.login(hsm, user, password);
  }

  private JsonObject call(int hsm, JsonObject session, JsonObject request) {
    return env.call(hsm, session, request);
  }

  private static Actor actor(JsonObject login, String user, Role role) {
    return Principal.of(new JsonObject().put(Principal.FIELD, Principal.toJson(user, role, login.getJsonObject(Principal.PROOF)))).session();
  }
}
