package io.hsmbridge.agent.backup.store;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Eight threads creating, completing, failing and deleting at once leave a consistent catalog. */
class BackupCatalogConcurrencyTest {
  private static final int THREADS = 8;
  private static final int ROUNDS = 15;

  @TempDir
  Path tmp;

  @Test
  @Timeout(120)
  void concurrentLifecyclesLeaveAConsistentCatalog() throws Exception {
    MutableClock clock = new MutableClock(Instant.parse("2027-01-01T00:00:00Z"));
    DirectoryBackupStore store = DirectoryBackupStore.open("local", tmp.resolve("b"));
    BackupCatalog catalog = new BackupCatalog(store, clock, BackupCatalog.Bounds.DEFAULTS);
    ExecutorService pool = Executors.newFixedThreadPool(THREADS);
    CountDownLatch start = new CountDownLatch(1);
    List<Future<List<BackupRecord>>> results = new ArrayList<>();
    try {
      for (int t = 0; t < THREADS; t++) {
        int thread = t;
        results.add(pool.submit(() -> {
          start.await();
          List<BackupRecord> mine = new ArrayList<>();
          for (int i = 0; i < ROUNDS; i++) {
            BackupRecord begun = catalog.begin("prod", "hsm" + thread, i);
            BackupId id = begun.backupId();
            switch (i % 3) {
              case 0 -> mine.add(catalog.complete(id, ("t" + thread + "r" + i).getBytes(StandardCharsets.UTF_8)));
              case 1 -> mine.add(catalog.fail(id));
              default -> {
                catalog.complete(id, ("t" + thread + "r" + i).getBytes(StandardCharsets.UTF_8));
                mine.add(catalog.delete(id));
              }
            }
            if (i % 5 == 0) {
              catalog.sweep(); // sweeps race with the others' transitions
            }
          }
          return mine;
        }));
      }
      start.countDown();
      List<BackupRecord> expected = new ArrayList<>();
      for (Future<List<BackupRecord>> f : results) {
        expected.addAll(f.get(100, TimeUnit.SECONDS));
      }
      assertEquals(THREADS * ROUNDS, expected.size());
      List<BackupStore.Entry> entries = catalog.list();
      assertEquals(THREADS * ROUNDS, entries.size());
      assertTrue(entries.stream().allMatch(BackupStore.Entry::isReadable));
      for (BackupRecord r : expected) {
        BackupRecord now = catalog.describe(r.backupId());
        assertEquals(r, now, "the last transition each thread made is what the store holds");
        assertEquals(now.state() != BackupState.FAILED, store.hasFile(r.backupId()), now.toString());
        if (now.state() == BackupState.READY) {
          assertEquals(now.sizeBytes(), catalog.backupFile(r.backupId()).length);
        }
      }
      try (Stream<Path> files = Files.list(store.directory())) {
        assertTrue(files.noneMatch(p -> p.getFileName().toString().startsWith(DirectoryBackupStore.TEMP_PREFIX)),
            "no temporary file left");
      }
    } finally {
      pool.shutdownNow();
    }
  }

  /** The same transition raced by every thread: exactly one wins per backup, the others get its new state. */
  @Test
  @Timeout(120)
  void aRacedDeleteSucceedsOncePerBackup() throws Exception {
    MutableClock clock = new MutableClock(Instant.parse("2027-01-01T00:00:00Z"));
    BackupCatalog catalog = new BackupCatalog(DirectoryBackupStore.open("local", tmp.resolve("r")), clock,
        BackupCatalog.Bounds.DEFAULTS);
    List<BackupId> ids = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      BackupId id = catalog.begin("prod", "hsm1", i).backupId();
      catalog.complete(id, new byte[] {(byte) i});
      ids.add(id);
    }
    ExecutorService pool = Executors.newFixedThreadPool(THREADS);
    CountDownLatch start = new CountDownLatch(1);
    List<Future<Integer>> wins = new ArrayList<>();
    try {
      for (int t = 0; t < THREADS; t++) {
        wins.add(pool.submit(() -> {
          start.await();
          int won = 0;
          for (BackupId id : ids) {
            try {
              catalog.delete(id);
              won++;
            } catch (io.hsmbridge.pkcs11.HsmException e) {
              assertTrue(e.getMessage().contains("it is PENDING_DELETION"), e.getMessage());
            }
          }
          return won;
        }));
      }
      start.countDown();
      int total = 0;
      for (Future<Integer> f : wins) {
        total += f.get(100, TimeUnit.SECONDS);
      }
      assertEquals(ids.size(), total);
      for (BackupId id : ids) {
        assertEquals(BackupState.PENDING_DELETION, catalog.describe(id).state());
      }
    } finally {
      pool.shutdownNow();
    }
  }
}
