package io.hsmbridge.agent.replication;

import static io.hsmbridge.agent.replication.TestCluster.await;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.agent.users.Principal;
import io.hsmbridge.pkcs11.BackupKeys;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code backup.rotateKey} and {@code cluster.rotateKey} on three real SoftHSM2 tokens, a real 3-peer Raft
 * group and the real agent handlers (TestAgents): a CO's rotation reaches every token through the log; a CU
 * is refused by the agent, and a CU's sealed entry (a front-door or Raft insider holding a CU's session) is
 * refused at apply on every HSM; two rotations racing for one generation end alike on every token; a
 * rotation sent again with its request id is answered from its outcome record and rotates nothing; keys
 * made after a cluster key rotation reach every HSM under the new generation.
 */
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class KeyRotationClusterTest extends AgentClusterTest {
  private static final String ADMIN_PASSWORD = "rotation-admin-password-1";
  private static final String CU_PASSWORD = "rotation-user-password-1";


  @Test
  void aCoRotatesForEveryHsmAndNobodyElseCan() throws Exception {
    start("rotation");
    JsonObject admin = env.activate(ADMIN_PASSWORD);
    JsonObject alice = env.cryptoUser(admin, "alice", CU_PASSWORD, 1);
    assertEquals(List.of(1), generationsEverywhere());

    HsmException denied = assertThrows(HsmException.class,
        () -> env.call(0, alice, new JsonObject().put("op", "backup.rotateKey")));
    assertEquals(ErrorCode.ACCESS_DENIED, denied.code(), denied.getMessage());

    JsonObject rotated = env.call(1, admin, new JsonObject().put("op", "backup.rotateKey").put("requestId", "rotate-1"));
    assertEquals(2, rotated.getInteger("generation"), rotated.encode());
    assertEquals(List.of(1, 2), generationsEverywhere());
    // Sent again with its request id (its answer lost), to another HSM: answered, nothing rotated.
    JsonObject again = env.call(2, admin, new JsonObject().put("op", "backup.rotateKey").put("requestId", "rotate-1"));
    assertEquals(true, again.getBoolean("repeated"), again.encode());
    assertEquals(List.of(1, 2), generationsEverywhere());

    // A CU's real session proof on a rotation entry, sealed by a cluster token: refused at apply everywhere.
    EntryProofs proofs = new EntryProofs(env.tokens.get(0));
    long now = System.currentTimeMillis();
    Actor aliceActor = Principal.of(new JsonObject().put(Principal.FIELD,
        Principal.toJson("alice", Role.CU, alice.getJsonObject(Principal.PROOF)))).session();
    io.hsmbridge.pkcs11.NextGeneration forged = env.tokens.get(0).backupKeys().prepareRotation();
    long refusedAt = env.cluster.logs[0].submit(proofs.seal(aliceActor, now, "hsm-1",
        new Mutation.RotateKey(Mutation.RotateKey.Target.BACKUP_KEY, forged.generation(), forged.label(), forged.wrapped()))).get(20, TimeUnit.SECONDS);
    for (MutationLog log : env.cluster.logs) {
      await("every HSM applied the CU's rotation entry", 30_000, () -> log.appliedIndex() >= refusedAt);
      assertNotNull(log.refusal(refusedAt), "a CU's rotation was applied");
      assertNull(log.failure(), "a refused entry must not stop a peer");
    }
    assertTrue(env.cluster.logs[2].refusal(refusedAt).contains("alice"), env.cluster.logs[2].refusal(refusedAt));
    assertEquals(List.of(1, 2), generationsEverywhere());

    // Two rotations made at once on two HSMs, both for generation 3: the log's order decides, alike on every HSM.
    Actor adminActor = Principal.of(new JsonObject().put(Principal.FIELD,
        Principal.toJson("admin", Role.CO, admin.getJsonObject(Principal.PROOF)))).session();
    io.hsmbridge.pkcs11.NextGeneration a = env.tokens.get(0).backupKeys().prepareRotation();
    io.hsmbridge.pkcs11.NextGeneration b = env.tokens.get(2).backupKeys().prepareRotation();
    assertEquals(a.generation(), b.generation());
    long now2 = System.currentTimeMillis();
    long atA = env.cluster.logs[0].submit(proofs.seal(adminActor, now2, "hsm-1",
        new Mutation.RotateKey(Mutation.RotateKey.Target.BACKUP_KEY, a.generation(), a.label(), a.wrapped()))).get(20, TimeUnit.SECONDS);
    long atB = env.cluster.logs[2].submit(proofs.seal(adminActor, now2, "hsm-3",
        new Mutation.RotateKey(Mutation.RotateKey.Target.BACKUP_KEY, b.generation(), b.label(), b.wrapped()))).get(20, TimeUnit.SECONDS);
    for (MutationLog log : env.cluster.logs) {
      await("every HSM applied both", 30_000, () -> log.appliedIndex() >= Math.max(atA, atB));
      assertNull(log.refusal(Math.min(atA, atB)), "the first in log order is applied");
      assertTrue(String.valueOf(log.refusal(Math.max(atA, atB))).contains("from another rotation"),
          String.valueOf(log.refusal(Math.max(atA, atB))));
    }
    assertEquals(List.of(1, 2, 3), generationsEverywhere());
    String winner = atA < atB ? a.label() : b.label();
    for (HsmToken t : env.tokens) {
      assertEquals(winner, labelOf(t, 3), t.label());
    }
    // and the cluster rotates on from there
    assertEquals(4, env.call(0, admin, new JsonObject().put("op", "backup.rotateKey")).getInteger("generation"));
    assertEquals(List.of(1, 2, 3, 4), generationsEverywhere());
  }

  @Test
  void keysMadeAfterAClusterKeyRotationReachEveryHsmUnderTheNewGeneration() throws Exception {
    start("ckrotation");
    JsonObject admin = env.activate(ADMIN_PASSWORD);
    JsonObject alice = env.cryptoUser(admin, "alice", CU_PASSWORD, 1);
    String before = generate(alice, 0, "before");

    HsmException denied = assertThrows(HsmException.class,
        () -> env.call(2, alice, new JsonObject().put("op", "cluster.rotateKey")));
    assertEquals(ErrorCode.ACCESS_DENIED, denied.code(), denied.getMessage());
    JsonObject rotated = env.call(2, admin, new JsonObject().put("op", "cluster.rotateKey"));
    assertEquals(2, rotated.getInteger("generation"), rotated.encode());
    for (HsmToken t : env.tokens) {
      assertEquals(List.of(1, 2), t.clusterKeys().clusterKeyGenerations(), t.label());
      assertEquals(List.of(1), t.backupKeys().generations(), "the backup key is another key: " + t.label());
    }

    // Made on each HSM in turn after the rotation: wrapped under generation 2, installed by all three.
    for (int h = 0; h < 3; h++) {
      String keyId = generate(alice, h, "after on " + h);
      JsonObject sealed = env.call(h, alice, new JsonObject().put("op", "encrypt").put("keyId", keyId).put("alg", "AES_GCM")
          .put("plaintext", java.util.Base64.getEncoder().encodeToString("m".getBytes())));
      int other = (h + 1) % 3;
      JsonObject plain = env.call(other, alice, new JsonObject().put("op", "decrypt").put("keyId", keyId).put("alg", "AES_GCM")
          .put("ciphertext", sealed.getString("ciphertext")).put("iv", sealed.getString("iv")));
      assertEquals(java.util.Base64.getEncoder().encodeToString("m".getBytes()), plain.getString("plaintext"));
    }
    for (HsmToken t : env.tokens) {
      assertTrue(t.keys().holds(before), t.label());
    }
  }

  private String generate(JsonObject session, int hsm, String label) {
    return env.call(hsm, session, new JsonObject().put("op", "key.generate").put("spec", "AES_256").put("label", label)
        .put("requestId", java.util.UUID.randomUUID().toString())).getString("keyId");
  }

  /** The generations every token holds, read directly; fails unless all three agree. */
  private List<Integer> generationsEverywhere() {
    List<Integer> first = env.tokens.get(0).backupKeys().generations();
    for (HsmToken t : env.tokens) {
      assertEquals(first, t.backupKeys().generations(), t.label());
    }
    return first;
  }

  private static String labelOf(HsmToken t, int generation) {
    return t.backupKeys().generationLabel(generation);
  }
}
