package io.hsmbridge.agent.replication;

import io.hsmbridge.agent.users.Principal;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.UserRecord;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * No password hash in the Raft log files: user entries carry it sealed inside the token (HashSeal), every
 * HSM opens it inside its token at apply. Read as a thief of a data directory would: every byte of every
 * file the three Raft peers wrote. Real tokens, a real 3-peer Raft group, the real agents (TestAgents).
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class PasswordHashSealTest extends AgentClusterTest {
  private static final String ADMIN_PASSWORD = "admin-password-" + UUID.randomUUID();
  private static final String CU_PASSWORD = "crypto-user-pw-" + UUID.randomUUID();

  @Test
  void theRaftLogHoldsNoPasswordHashAndEveryHsmStoresTheOpenedOne() throws Exception {
    start("hash-seal");
    JsonObject admin = env.activate(ADMIN_PASSWORD);
    JsonObject alice = env.cryptoUser(admin, "alice", CU_PASSWORD, 0);
    String newPassword = CU_PASSWORD + "-changed";
    env.call(1, alice, new JsonObject().put("op", "user.changePassword").put("name", "alice").put("password", newPassword));
    assertEquals("alice", env.login(2, "alice", newPassword).getString("user"), "opened at apply: the new password works");

    List<String> hashes = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      for (String name : List.of("admin", "alice")) {
        UserRecord u = env.tokens.get(i).users().get(name).orElseThrow();
        assertTrue(u.passwordHash().startsWith("$argon2id$"), "stored opened on HSM " + i);
        hashes.add(u.passwordHash());
      }
    }
    assertEquals(hashes.get(1), hashes.get(3), "every HSM opened the same hash");

    byte[] raft = allBytesUnder(dir);
    assertTrue(raft.length > 0);
    assertFalse(contains(raft, "$argon2id$"), "no Argon2id hash in the Raft log files");
    assertTrue(contains(raft, UserRecord.SEALED_HASH_PREFIX), "the user entries went through the log sealed");
    for (String hash : hashes) {
      String tag = hash.substring(hash.lastIndexOf('$') + 1);
      assertFalse(contains(raft, tag), "not even a hash's tag");
    }
    // Nor a session proof (a bearer credential: user, role, session id, times and proof make a session token).
    // The admin's and alice's sessions made entries (a user, a password change); the entries carry the
    // proof's log form, which no HSM takes for a session.
    for (JsonObject session : List.of(admin, alice)) {
      byte[] proof = java.util.Base64.getDecoder().decode(session.getJsonObject(Principal.PROOF).getString("proof"));
      assertEquals(32, proof.length);
      assertFalse(containsBytes(raft, proof), session.getString("user") + "'s session proof is in the Raft log files");
      assertTrue(contains(raft, session.getJsonObject(Principal.PROOF).getString("sessionId")),
          "the session's entries are in the log (by session id)");
    }
  }

  private static boolean containsBytes(byte[] haystack, byte[] n) {
    outer:
    for (int i = 0; i + n.length <= haystack.length; i++) {
      for (int j = 0; j < n.length; j++) {
        if (haystack[i + j] != n[j]) {
          continue outer;
        }
      }
      return true;
    }
    return false;
  }

  private static byte[] allBytesUnder(Path root) throws IOException {
    java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
    try (Stream<Path> files = Files.walk(root)) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        try {
          all.write(Files.readAllBytes(f));
        } catch (IOException gone) {
          // a file rotated away while read: the others are enough
        }
      }
    }
    return all.toByteArray();
  }

  private static boolean contains(byte[] haystack, String needle) {
    return containsBytes(haystack, needle.getBytes(StandardCharsets.US_ASCII));
  }
}
