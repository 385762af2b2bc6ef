package io.hsmbridge.agent.replication;

import static io.hsmbridge.agent.replication.TestCluster.await;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.ClusterKeys;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyInfo;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Exportable keys in a cluster of three (issue #12 item 2; refused before, because the cluster key's
 * unwrap template turns a replica non-exportable): created or imported through any HSM, they arrive on
 * every token exportable, with the same material (a wrap under the owner's key-encryption key gives the
 * same bytes on each HSM), and a retry of the creation returns the same key. Real tokens, real Raft, the
 * real agent handlers ({@link TestAgents}).
 */
class ExportableReplicationTest extends AgentClusterTest {
  private static final String ADMIN_PASSWORD = "admin-password-" + UUID.randomUUID();
  private static final String CU_PASSWORD = "crypto-user-pw-" + UUID.randomUUID();


  private static JsonObject generate(String spec, String label, String usage, boolean exportable, String requestId) {
    JsonObject g = new JsonObject().put("op", "key.generate").put("spec", spec).put("label", label)
        .put("exportable", exportable).put("requestId", requestId);
    return usage == null ? g : g.put("usage", usage);
  }

  private KeyInfo awaitOn(HsmToken t, String keyId) {
    await(keyId + " on " + t.label(), 30_000, () -> {
      try {
        t.keys().describe(keyId);
        return true;
      } catch (HsmException e) {
        return false;
      }
    });
    return t.keys().describe(keyId);
  }

  @Test
  @Timeout(300)
  void exportableKeysAreReplicatedExportableWithTheSameMaterial() {
    start("exportable");
    JsonObject alice = env.cryptoUser(env.activate(ADMIN_PASSWORD), "alice", CU_PASSWORD, 1);

    String kek = env.call(0, alice, generate("AES_256", "kek", "WRAP_UNWRAP", false, UUID.randomUUID().toString())).getString("keyId");
    String requestId = UUID.randomUUID().toString();
    JsonObject made = env.call(1, alice, generate("AES_256", "exportable", null, true, requestId));
    String keyId = made.getString("keyId");
    assertTrue(made.getBoolean("exportable"), made.encode());
    assertEquals(keyId, env.call(2, alice, generate("AES_256", "exportable", null, true, requestId)).getString("keyId"),
        "a retry of the creation returns the same key");
    String[] wrapped = new String[3];
    for (int h = 0; h < 3; h++) {
      HsmToken t = env.tokens.get(h);
      KeyInfo k = awaitOn(t, keyId);
      assertTrue(k.exportable() && k.extractable(), "exportable on " + t.label());
      assertFalse(t.keys().describe(ClusterKeys.EXPORT_KEY_ID).exportable(), "the export key itself is not");
      awaitOn(t, kek);
      wrapped[h] = env.call(h, alice, new JsonObject().put("op", "key.wrap").put("keyId", keyId).put("wrappingKeyId", kek)
          .put("alg", "AES_KEY_WRAP_PAD")).getString("wrapped");
    }
    assertEquals(wrapped[0], wrapped[1], "the same key on hsm 1 and 2");
    assertEquals(wrapped[0], wrapped[2], "the same key on hsm 1 and 3");

    // An exportable EC key: signed on one HSM, verified on another (its public point travels too).
    String ec = env.call(0, alice, generate("EC_P256", "exportable ec", null, true, UUID.randomUUID().toString())).getString("keyId");
    // The creation is acknowledged when committed; each HSM applies it in its own time, so wait on both used below.
    awaitOn(env.tokens.get(1), ec);
    awaitOn(env.tokens.get(2), ec);
    String message = Base64.getEncoder().encodeToString("made anywhere".getBytes(StandardCharsets.UTF_8));
    String sig = env.call(1, alice, new JsonObject().put("op", "sign").put("keyId", ec).put("alg", "ECDSA_SHA256")
        .put("message", message)).getString("signature");
    assertTrue(env.call(2, alice, new JsonObject().put("op", "verify").put("keyId", ec).put("alg", "ECDSA_SHA256")
        .put("message", message).put("signature", sig)).getBoolean("valid"));

    // Import: the wrapped bytes above back in as a new exportable key, through another HSM; the same material.
    String imported = env.call(2, alice, new JsonObject().put("op", "key.importWrapped").put("wrappingKeyId", kek)
        .put("alg", "AES_KEY_WRAP_PAD").put("wrapped", wrapped[0]).put("spec", "AES_256").put("label", "imported")
        .put("exportable", true).put("requestId", UUID.randomUUID().toString())).getString("keyId");
    for (int h = 0; h < 3; h++) {
      assertTrue(awaitOn(env.tokens.get(h), imported).exportable());
    }
    assertEquals(wrapped[0], env.call(0, alice, new JsonObject().put("op", "key.wrap").put("keyId", imported)
        .put("wrappingKeyId", kek).put("alg", "AES_KEY_WRAP_PAD")).getString("wrapped"), "the imported key is the same key");

    // The export key is the cluster's own: no user reaches it.
    HsmException denied = assertThrows(HsmException.class, () -> env.call(0, alice, new JsonObject().put("op", "key.wrap")
        .put("keyId", ClusterKeys.EXPORT_KEY_ID).put("wrappingKeyId", kek).put("alg", "AES_KEY_WRAP_PAD")));
    assertEquals(ErrorCode.ACCESS_DENIED, denied.code());
    // A never-extractable key still cannot leave its HSM, so a cluster of three refuses it with the reason.
    HsmException never = assertThrows(HsmException.class, () -> env.call(0, alice,
        generate("AES_256", "never", null, false, UUID.randomUUID().toString()).put("extractable", false)));
    assertEquals(ErrorCode.NOT_ALLOWED_BY_POLICY, never.code());
    assertTrue(never.getMessage().contains("never-extractable"), never.getMessage());
    // Exportable and never-extractable at once is a contradiction, whatever the cluster's size.
    HsmException both = assertThrows(HsmException.class, () -> env.call(0, alice,
        generate("AES_256", "both", null, true, UUID.randomUUID().toString()).put("extractable", false)));
    assertEquals(ErrorCode.INVALID_PARAMETER, both.code(), both.getMessage());
  }
}
