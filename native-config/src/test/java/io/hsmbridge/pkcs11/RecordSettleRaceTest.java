package io.hsmbridge.pkcs11;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * The records' settle beside what an agent's applies write (keys, ACL records, the applied index, rewritten in
 * place): records nobody changed are never lost from the settled view, whatever the scan met.
 */
class RecordSettleRaceTest {
  private static final java.util.concurrent.atomic.AtomicInteger RETRIES = new java.util.concurrent.atomic.AtomicInteger();

  /** As the agent's applier: a step that fails on the token is tried again (SoftHSM2 fails writes beside scans). */
  private static <R> R retried(java.util.function.Supplier<R> step) {
    for (int attempt = 1; ; attempt++) {
      try {
        return step.get();
      } catch (HsmException e) {
        if (attempt == 5) {
          throw e;
        }
        RETRIES.incrementAndGet();
      }
    }
  }

  @Test
  void aSettleBesideAppliesNeverLosesARecordNobodyChanged() throws Exception {
    try (HsmToken hsm = HsmToken.open(SoftHsmFixture.newToken("record-race"))) {
      String hash = UserRecordsTest.hash();
      for (int i = 0; i < 20; i++) {
        hsm.users().put(new UserRecord("user" + i, "CU", hash, 0, false, null));
        String id = hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "base-" + i, false).keyId();
        hsm.keyAcls().put(KeyAcl.ownedBy(id, "user" + i));
      }
      List<KeyAcl> acls = hsm.keyAcls().list();
      List<UserRecord> users = hsm.users().list();
      AtomicBoolean stop = new AtomicBoolean();
      AtomicReference<Throwable> failed = new AtomicReference<>();
      // ACLs the applier wrote and keeps, each added once its put returned (CI: an ACL written 10 ms before a
      // digest was missing from the settled view, and the cluster check reported the HSMs inconsistent).
      java.util.Set<KeyAcl> kept = java.util.concurrent.ConcurrentHashMap.newKeySet();
      Thread applier = new Thread(() -> {
        long index = 1;
        try {
          while (!stop.get()) {
            String keptId = retried(() -> hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "kept", false)).keyId();
            KeyAcl keptAcl = KeyAcl.ownedBy(keptId, "user1");
            retried(() -> { hsm.keyAcls().put(keptAcl); return null; });
            kept.add(keptAcl);
            String id = retried(() -> hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "churn", false)).keyId();
            retried(() -> { hsm.keyAcls().put(KeyAcl.ownedBy(id, "user0")); return null; });
            long at = index++;
            retried(() -> { hsm.appliedIndex().write(at); return null; });
            retried(() -> hsm.keyAcls().delete(id));
            retried(() -> { hsm.keys().delete(id); return null; });
            long next = index++;
            retried(() -> { hsm.appliedIndex().write(next); return null; });
          }
        } catch (Throwable t) {
          failed.set(t);
        }
      });
      // Other readers of the token, as an agent's requests and a second digest are: each of their searches makes
      // SoftHSM2 re-read an object file that changed (a new object's first read included), and a search in
      // another thread meanwhile does not see that object (its attributes are dropped, then read again).
      List<Thread> readers = new java.util.ArrayList<>();
      for (int r = 0; r < 2; r++) {
        readers.add(new Thread(() -> {
          while (!stop.get()) {
            hsm.keyAcls().scanToken();
            hsm.keys().scanToken();
          }
        }));
      }
      applier.start();
      readers.forEach(Thread::start);
      try {
        long until = System.nanoTime() + 10_000_000_000L;
        for (int i = 0; i < 3000 && System.nanoTime() < until; i++) {
          List<KeyAcl> keptBefore = List.copyOf(kept);
          KeyManager.TokenScan keyScan = hsm.keys().scanToken();
          RecordScan<KeyAcl> aclScan = hsm.keyAcls().scanToken();
          RecordScan<UserRecord> userScan = hsm.users().scanToken();
          hsm.keys().settle(keyScan);
          List<KeyAcl> settledAcls = hsm.keyAcls().settle(aclScan);
          List<UserRecord> settledUsers = hsm.users().settle(userScan);
          int round = i;
          assertTrue(settledAcls.containsAll(acls), () -> "round " + round + ": " + settledAcls.size() + " ACLs");
          assertTrue(settledAcls.containsAll(keptBefore), () -> "round " + round + ": an ACL written before the scan is"
              + " missing from the settled view");
          assertEquals(users.size(), settledUsers.size(), "round " + i);
        }
      } finally {
        stop.set(true);
        applier.join();
        for (Thread r : readers) {
          r.join();
        }
      }
      System.out.println("applier steps retried: " + RETRIES.get() + "; churn keys left: "
          + hsm.keys().rescan().stream().filter(k -> k.label().equals("churn")).count() + ", ACLs " + hsm.keyAcls().rescan().size());
      assertNull(failed.get(), () -> {
        java.io.StringWriter w = new java.io.StringWriter();
        failed.get().printStackTrace(new java.io.PrintWriter(w));
        return w.toString();
      });
    }
  }
}
