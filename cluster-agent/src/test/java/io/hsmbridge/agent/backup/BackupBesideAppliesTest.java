package io.hsmbridge.agent.backup;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.agent.backup.store.BackupRecord;
import io.hsmbridge.agent.backup.store.BackupState;
import io.hsmbridge.agent.replication.TokenApplier;
import io.hsmbridge.pkcs11.ClusterKeys;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A backup holds its HSM's applier only to settle the state at one index, not while it wraps keys: on the
 * Raft leader a held applier holds every commit (docs/backups.md). What may happen while keys are wrapped,
 * and what the backup must still be: entries keep being applied; a key deleted before its wrap makes the
 * attempt FAILED and the backup start again; keys created or relabelled after the backup's index do not
 * leak into it.
 */
class BackupBesideAppliesTest {
  @TempDir
  Path store;

  private HsmToken hsm;
  private TokenApplier applier;
  private BackupOperations backups;
  private final List<String> keys = new ArrayList<>();

  @BeforeEach
  void tokenWithKeys() {
    hsm = HsmToken.open(SoftHsmFixture.newToken("beside-applies"));
    hsm.clusterKeys().createClusterKey();
    hsm.backupKeys().createBackupKey();
    ClusterKeys ck = hsm.clusterKeys();
    for (int i = 0; i < 30; i++) {
      String id = String.format("%032x", 0x100 + i);
      ck.installReplica(ck.generateForReplication(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "key-" + i, id));
      keys.add(id);
    }
    hsm.appliedIndex().write(7);
    applier = new TokenApplier(hsm);
    backups = new BackupOperations("hsm1", "test-cluster", hsm, applier, BackupOperations.catalogAt(store));
  }

  @AfterEach
  void close() {
    hsm.close();
  }

  @Test
  void entriesAreAppliedWhileKeysAreWrappedAndWhatTheyChangeStaysOutOfTheBackup() throws Exception {
    AtomicInteger enteredWhileWrapping = new AtomicInteger();
    backups.onKeyWrapped(n -> {
      if (n == 3 && enteredWhileWrapping.get() == 0) {
        // As an applied entry would, from another thread: relabel a key, create one, move the index on.
        enteredWhileWrapping.incrementAndGet();
        fromAnotherThread(() -> applier.atOneIndex(() -> {
          hsm.keys().setLabel(keys.get(0), "relabelled after the backup's index");
          hsm.clusterKeys().installReplica(hsm.clusterKeys().generateForReplication(KeySpec.AES_128,
              KeyUsage.ENCRYPT_DECRYPT, "created after", String.format("%032x", 0x900)));
          hsm.appliedIndex().write(8);
          return null;
        }));
      }
    });
    BackupRecord made = backups.create();
    assertEquals(1, enteredWhileWrapping.get());
    assertEquals(BackupState.READY, made.state());
    assertEquals(7, made.appliedIndex());
    BackupFile file = BackupFile.parse(backups.catalog().backupFile(made.backupId()));
    assertEquals(7, file.appliedIndex());
    assertEquals(30, file.keyBlobs().size(), "the key created at index 8 is not in the backup of index 7");
    BackupManifest manifest;
    hsm.backupKeys().open(file.wrappedEbk());
    try {
      manifest = BackupManifest.parse(hsm.backupKeys().unseal(file.manifest(), file.aad()));
    } finally {
      hsm.backupKeys().end();
    }
    assertEquals("key-0", manifest.keys().stream().filter(k -> k.keyId().equals(keys.get(0))).findFirst()
        .orElseThrow().label(), "the label at index 7");
  }

  @Test
  void aKeyDeletedBeforeItsWrapFailsTheAttemptAndTheBackupIsMadeAgain() throws Exception {
    // Keys are wrapped in key id order: the last one is deleted while the first ones are wrapped.
    String last = keys.stream().max(Comparator.naturalOrder()).orElseThrow();
    AtomicInteger attempts = new AtomicInteger();
    backups.onKeyWrapped(n -> {
      if (n == 1 && attempts.incrementAndGet() == 1) {
        fromAnotherThread(() -> applier.atOneIndex(() -> {
          hsm.keys().delete(last);
          hsm.appliedIndex().write(8);
          return null;
        }));
      }
    });
    BackupRecord made = backups.create();
    assertEquals(2, attempts.get(), "made again after the deletion");
    assertEquals(BackupState.READY, made.state());
    assertEquals(8, made.appliedIndex(), "the second attempt's state is the one after the deletion");
    BackupFile file = BackupFile.parse(backups.catalog().backupFile(made.backupId()));
    assertEquals(29, file.keyBlobs().size());
    List<BackupState> states = backups.catalog().list().stream().map(e -> e.record().state()).sorted().toList();
    assertEquals(List.of(BackupState.READY, BackupState.FAILED).stream().sorted().toList(), states,
        "the first attempt is FAILED, not READY with a missing key");
  }

  @Test
  void theLastAttemptHoldsTheApplierSoABackupAlwaysEnds() throws Exception {
    // Every attempt loses a key while it wraps, as long as the applier lets an entry in.
    List<String> victims = new ArrayList<>(keys.stream().sorted(Comparator.reverseOrder()).toList());
    AtomicInteger refused = new AtomicInteger();
    backups.onKeyWrapped(n -> {
      if (n == 1) {
        String victim = victims.get(0);
        CompletableFuture<Object> entry = CompletableFuture.supplyAsync(() -> applier.atOneIndex(() -> {
          hsm.keys().delete(victim);
          return null;
        }));
        try {
          entry.get(2, TimeUnit.SECONDS);
          victims.remove(0);
        } catch (java.util.concurrent.TimeoutException held) {
          refused.incrementAndGet(); // the applier is held: this entry waits for the backup
          entry.cancel(false);
          blockedEntries.add(entry);
        } catch (Exception e) {
          throw new AssertionError(e);
        }
      }
    });
    BackupRecord made = backups.create();
    assertEquals(BackupState.READY, made.state());
    assertEquals(1, refused.get(), "only the last of " + BackupOperations.ATTEMPTS + " attempts held the applier");
    assertEquals(30 - (BackupOperations.ATTEMPTS - 1), BackupFile.parse(backups.catalog().backupFile(made.backupId()))
        .keyBlobs().size());
    for (CompletableFuture<Object> f : blockedEntries) {
      f.handle((v, e) -> null).get(10, TimeUnit.SECONDS);
    }
  }

  private final List<CompletableFuture<Object>> blockedEntries = new ArrayList<>();

  /** Runs {@code work} on another thread and waits for it: it fails (times out) when the applier is held. */
  private static void fromAnotherThread(java.util.function.Supplier<Object> work) {
    try {
      CompletableFuture.supplyAsync(work).get(5, TimeUnit.SECONDS);
    } catch (Exception e) {
      throw new AssertionError("an entry could not be applied while keys were wrapped: " + e, e);
    }
  }
}
