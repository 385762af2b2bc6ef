package io.hsmbridge.pkcs11;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * SO work (a backup's EBK, made and destroyed by the SO) logs the User out, and SoftHSM2 then kills every
 * handle to a private object: requests running beside it must not fail for that (seen: a key creation's
 * HMAC failed with CKR_OBJECT_HANDLE_INVALID, reported as UNKNOWN_KEY, right after a backup's SO step).
 */
class SecurityOfficerWorkTest {
  @Test
  void requestsBesideRepeatedSoWorkNeverMeetADeadHandle() throws Exception {
    try (HsmToken hsm = HsmToken.open(SoftHsmFixture.newToken("so-work"))) {
      hsm.clusterKeys().createClusterKey();
      hsm.backupKeys().createBackupKey();
      String mac = hsm.keys().generate(KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, "mac", false).keyId();
      String aes = hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "aes", false).keyId();
      byte[] message = "beside the SO".getBytes(StandardCharsets.UTF_8);
      AtomicBoolean stop = new AtomicBoolean();
      AtomicInteger done = new AtomicInteger();
      List<String> failures = Collections.synchronizedList(new ArrayList<>());
      List<Thread> workers = new ArrayList<>();
      for (int t = 0; t < 3; t++) {
        Thread w = new Thread(() -> {
          while (!stop.get()) {
            try {
              hsm.crypto().mac(mac, Algorithm.HMAC_SHA256, message);
              hsm.crypto().encrypt(aes, Algorithm.AES_GCM, message, null);
              hsm.auditKey().mac(message); // its own cached handle, not the key cache's
              done.incrementAndGet();
            } catch (RuntimeException e) {
              failures.add(e.toString());
            }
          }
        });
        w.start();
        workers.add(w);
      }
      long deadline = System.nanoTime() + 20_000_000_000L;
      int rounds = 0;
      while (rounds < 40 && System.nanoTime() < deadline) {
        hsm.backupKeys().begin(); // SO work back to back: harder than any backup
        hsm.backupKeys().end();
        rounds++;
      }
      stop.set(true);
      for (Thread w : workers) {
        w.join(10_000);
      }
      assertEquals(List.of(), failures.subList(0, Math.min(5, failures.size())), failures.size() + " requests failed in "
          + rounds + " rounds of SO work");
      assertTrue(done.get() > rounds, done + " requests ran beside " + rounds + " rounds of SO work");
    }
  }

  /**
   * After SO work the key cache finds its keys' objects again by CKA_ID alone, while every session is held:
   * every key still works at once, and the cache holds what a full read of the token gives. The time of one
   * backup's two SO steps is printed beside a full reload of the same cache (what they used to do).
   */
  @Test
  void soWorkFindsEveryKeyAgainWithoutRereadingThem() throws Exception {
    try (HsmToken hsm = HsmToken.open(SoftHsmFixture.newToken("so-rebind"))) {
      hsm.clusterKeys().createClusterKey();
      hsm.backupKeys().createBackupKey();
      List<String> macs = new ArrayList<>();
      List<String> signers = new ArrayList<>();
      for (int i = 0; i < 150; i++) {
        macs.add(hsm.keys().generate(KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, "mac-" + i, false).keyId());
        signers.add(hsm.keys().generate(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "ec-" + i, false).keyId());
      }
      byte[] message = "after the SO".getBytes(StandardCharsets.UTF_8);
      hsm.auditKey().mac(message);
      java.util.Map<String, KeyEntry> before = hsm.keys().cachedEntries();

      long start = System.nanoTime();
      hsm.backupKeys().begin();
      hsm.backupKeys().end();
      long soSteps = System.nanoTime() - start;

      java.util.Map<String, KeyEntry> after = hsm.keys().cachedEntries();
      assertEquals(before.keySet(), after.keySet());
      for (String id : before.keySet()) {
        assertEquals(before.get(id).info(), after.get(id).info(), "key " + id + " described differently after SO work");
      }
      for (int i = 0; i < macs.size(); i++) {
        hsm.crypto().mac(macs.get(i), Algorithm.HMAC_SHA256, message);
        hsm.crypto().sign(signers.get(i), Algorithm.ECDSA_SHA256, message);
      }
      hsm.auditKey().mac(message);
      // what the token holds, read in full: the rebound handles are the objects a full read finds
      java.util.Map<String, KeyEntry> scanned = hsm.keys().scanToken().entries;
      assertEquals(after, scanned, "the cache after SO work is not what a full read of the token gives");

      long reloadStart = System.nanoTime();
      hsm.keys().reload();
      long reload = System.nanoTime() - reloadStart;
      System.out.printf("SO work with %d keys: one backup's two SO steps %.0f ms; a full reload of the cache alone %.0f ms%n",
          after.size(), soSteps / 1e6, reload / 1e6);
    }
  }
}
