package io.hsmbridge.agent.backup.store;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/** The lifecycle on a real directory store, with the clock moved by hand. */
class BackupCatalogTest {
  private static final Instant START = Instant.parse("2027-03-01T12:00:00Z");

  @TempDir
  Path tmp;
  private MutableClock clock;
  private DirectoryBackupStore store;
  private BackupCatalog catalog;

  @BeforeEach
  void setUp() {
    clock = new MutableClock(START);
    store = DirectoryBackupStore.open("local", tmp.resolve("backups"));
    catalog = new BackupCatalog(store, clock, BackupCatalog.Bounds.DEFAULTS);
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private BackupRecord ready(String content) {
    BackupRecord begun = catalog.begin("prod", "hsm1", 10);
    return catalog.complete(begun.backupId(), bytes(content));
  }

  private void days(double d) {
    clock.advance(Duration.ofMinutes((long) (d * 24 * 60)));
  }

  private static void assertWrongState(BackupState state, Executable action) {
    HsmException e = assertThrows(HsmException.class, action);
    assertEquals(ErrorCode.INVALID_PARAMETER, e.code());
    assertTrue(e.getMessage().contains("it is " + state), e.getMessage());
  }

  @Test
  void beginThenCompleteMakesAReadyBackupWithItsFile() {
    BackupRecord begun = catalog.begin("prod", "hsm1", 10);
    assertEquals(BackupState.CREATE_IN_PROGRESS, begun.state());
    assertEquals(START, begun.createdAt());
    assertFalse(store.hasFile(begun.backupId()));
    clock.advance(Duration.ofSeconds(30));
    BackupRecord done = catalog.complete(begun.backupId(), bytes("opaque backup"));
    assertEquals(BackupState.READY, done.state());
    assertEquals(13, done.sizeBytes());
    assertEquals(START.plusSeconds(30), done.stateChangedAt());
    assertEquals(done, catalog.describe(begun.backupId()));
    assertArrayEquals(bytes("opaque backup"), catalog.backupFile(begun.backupId()));
    assertEquals(done, catalog.newestReady().orElseThrow());
  }

  @Test
  void transitionsTheStateDoesNotAllowNameTheState() {
    BackupRecord r = ready("a");
    BackupId id = r.backupId();
    assertWrongState(BackupState.READY, () -> catalog.restoreDeleted(id));
    assertWrongState(BackupState.READY, () -> catalog.complete(id, bytes("b")));
    assertWrongState(BackupState.READY, () -> catalog.fail(id));
    catalog.delete(id);
    assertWrongState(BackupState.PENDING_DELETION, () -> catalog.delete(id));
    assertWrongState(BackupState.PENDING_DELETION, () -> catalog.complete(id, bytes("b")));
    assertWrongState(BackupState.PENDING_DELETION, () -> catalog.backupFile(id));

    BackupId failed = catalog.begin("prod", "hsm1", 1).backupId();
    catalog.fail(failed);
    assertWrongState(BackupState.FAILED, () -> catalog.complete(failed, bytes("late")));
    assertFalse(store.hasFile(failed), "a refused complete leaves no file");
    assertWrongState(BackupState.FAILED, () -> catalog.delete(failed));
    assertWrongState(BackupState.FAILED, () -> catalog.restoreDeleted(failed));
    assertWrongState(BackupState.FAILED, () -> catalog.setNeverExpires(failed, true));

    BackupId inProgress = catalog.begin("prod", "hsm1", 1).backupId();
    assertWrongState(BackupState.CREATE_IN_PROGRESS, () -> catalog.restoreDeleted(inProgress));
    assertWrongState(BackupState.CREATE_IN_PROGRESS, () -> catalog.delete(inProgress));
    assertWrongState(BackupState.CREATE_IN_PROGRESS, () -> catalog.copyTo(inProgress, otherCatalog("x")));

    HsmException unknown = assertThrows(HsmException.class, () -> catalog.describe(BackupId.random()));
    assertEquals(ErrorCode.UNKNOWN_KEY, unknown.code());
    assertThrows(HsmException.class, () -> catalog.complete(inProgress, new byte[0]));
  }

  @Test
  void retentionDeletesAtDay91NotAtDay89() {
    BackupRecord old = ready("old");
    days(1);
    BackupRecord newer = ready("newer");
    days(88);
    assertTrue(catalog.sweep().changedNothing(), "day 89: within 90 days");
    assertEquals(BackupState.READY, catalog.describe(old.backupId()).state());
    days(2);
    BackupCatalog.SweepReport report = catalog.sweep();
    assertEquals(List.of(old.backupId()), report.expiredByRetention());
    assertEquals(BackupState.PENDING_DELETION, catalog.describe(old.backupId()).state());
    assertEquals(BackupState.READY, catalog.describe(newer.backupId()).state(), "the newest READY backup stays");
  }

  @Test
  void theNewestReadyBackupSurvivesRetentionForever() {
    BackupRecord only = ready("only");
    days(400);
    catalog.sweep();
    assertEquals(BackupState.READY, catalog.describe(only.backupId()).state());
    assertEquals(only.backupId(), catalog.newestReady().orElseThrow().backupId());
    assertEquals(only.backupId(), catalog.newestReady("prod").orElseThrow().backupId());
    assertTrue(catalog.newestReady("other-cluster").isEmpty());
  }

  @Test
  void neverExpiresSurvivesRetentionUntilCleared() {
    BackupRecord kept = catalog.setNeverExpires(ready("kept").backupId(), true);
    assertTrue(kept.neverExpires());
    days(1);
    ready("newest");
    days(200);
    catalog.sweep();
    assertEquals(BackupState.READY, catalog.describe(kept.backupId()).state());
    catalog.setNeverExpires(kept.backupId(), false);
    catalog.sweep();
    assertEquals(BackupState.PENDING_DELETION, catalog.describe(kept.backupId()).state());
  }

  @Test
  void aDeletedBackupIsRestorableAtDay6AndGoneAtDay8() {
    ready("keep me newest"); // retention is not what this test is about
    BackupRecord a = ready("a");
    BackupRecord b = ready("b");
    catalog.delete(a.backupId());
    catalog.delete(b.backupId());
    days(6);
    assertTrue(catalog.sweep().deleted().isEmpty());
    BackupRecord restored = catalog.restoreDeleted(a.backupId());
    assertEquals(BackupState.READY, restored.state());
    assertFalse(restored.neverExpires(), "young enough for retention: no flag");
    assertArrayEquals(bytes("a"), catalog.backupFile(a.backupId()));
    days(2);
    HsmException late = assertThrows(HsmException.class, () -> catalog.restoreDeleted(b.backupId()));
    assertEquals(ErrorCode.INVALID_PARAMETER, late.code());
    assertTrue(late.getMessage().contains("more than 7 days"), late.getMessage());
    BackupCatalog.SweepReport report = catalog.sweep();
    assertEquals(List.of(b.backupId()), report.deleted());
    BackupRecord gone = catalog.describe(b.backupId());
    assertEquals(BackupState.DELETED, gone.state(), "the record stays, as DELETED");
    assertFalse(store.hasFile(b.backupId()), "the file is removed");
    assertWrongState(BackupState.DELETED, () -> catalog.restoreDeleted(b.backupId()));
    days(31);
    assertEquals(List.of(b.backupId()), catalog.sweep().purged(), "a DELETED record goes after 30 days");
    assertThrows(HsmException.class, () -> catalog.describe(b.backupId()));
  }

  @Test
  void aBackupRestoredPastRetentionBecomesNeverExpires() {
    BackupRecord old = ready("old");
    days(1);
    ready("newest");
    days(90);
    assertEquals(List.of(old.backupId()), catalog.sweep().expiredByRetention());
    days(3);
    BackupRecord restored = catalog.restoreDeleted(old.backupId());
    assertTrue(restored.neverExpires());
    assertTrue(catalog.sweep().expiredByRetention().isEmpty(), "not deleted again by the next sweep");
  }

  @Test
  void aStaleCreationBecomesFailedAtOpenAndSweep() {
    BackupId killed = catalog.begin("prod", "hsm1", 3).backupId();
    clock.advance(Duration.ofMinutes(59));
    assertEquals(List.of(), BackupCatalog.open(store, clock, BackupCatalog.Bounds.DEFAULTS).failStaleCreations());
    clock.advance(Duration.ofMinutes(2));
    BackupCatalog reopened = BackupCatalog.open(store, clock, BackupCatalog.Bounds.DEFAULTS);
    assertEquals(BackupState.FAILED, reopened.describe(killed).state());
    assertTrue(reopened.newestReady().isEmpty(), "a FAILED backup is never usable");

    BackupId alsoKilled = catalog.begin("prod", "hsm1", 4).backupId();
    clock.advance(Duration.ofMinutes(61));
    assertEquals(List.of(alsoKilled), catalog.sweep().failed());
    assertWrongState(BackupState.FAILED, () -> catalog.complete(alsoKilled, bytes("too late")));
    days(8);
    List<BackupId> purged = catalog.sweep().purged();
    assertTrue(purged.containsAll(List.of(killed, alsoKilled)), purged.toString());
    assertEquals(List.of(), store.list());
  }

  @Test
  void anHsmThatRestartsFailsTheBackupsItWasMakingAndNoOtherHsms() {
    BackupId mine = catalog.begin("prod", "hsm1", 3).backupId();
    BackupId theirs = catalog.begin("prod", "hsm2", 3).backupId();
    BackupRecord done = ready("done");
    assertEquals(List.of(mine), catalog.failInterruptedBy("hsm1"));
    assertEquals(BackupState.FAILED, catalog.describe(mine).state());
    assertEquals(BackupState.CREATE_IN_PROGRESS, catalog.describe(theirs).state());
    assertEquals(BackupState.READY, catalog.describe(done.backupId()).state());
    assertEquals(List.of(), catalog.failInterruptedBy("hsm1"), "once");
  }

  @Test
  void theStaleBoundIsAConstructorParameter() {
    BackupCatalog quick = new BackupCatalog(store, clock, Duration.ofMinutes(5));
    BackupId id = quick.begin("prod", "hsm1", 1).backupId();
    clock.advance(Duration.ofMinutes(6));
    assertEquals(List.of(id), quick.failStaleCreations());
  }

  @Test
  void retentionAccepts7To379DaysAndIsPersisted() {
    assertEquals(90, catalog.retentionDays());
    for (int bad : new int[] {6, 380, 0, -1, Integer.MAX_VALUE}) {
      HsmException e = assertThrows(HsmException.class, () -> catalog.setRetention(bad));
      assertEquals(ErrorCode.INVALID_PARAMETER, e.code());
    }
    assertEquals(90, catalog.retentionDays());
    catalog.setRetention(7);
    assertEquals(7, catalog.retentionDays());
    catalog.setRetention(379);
    BackupCatalog reopened = new BackupCatalog(DirectoryBackupStore.open("local", store.directory()), clock,
        BackupCatalog.Bounds.DEFAULTS);
    assertEquals(379, reopened.retentionDays());
    assertTrue(Files.exists(store.directory().resolve("retention.json")));
  }

  @Test
  void aShorterRetentionAppliesAtTheNextSweep() {
    BackupRecord old = ready("old");
    days(1);
    ready("newest");
    days(10);
    catalog.sweep();
    assertEquals(BackupState.READY, catalog.describe(old.backupId()).state());
    catalog.setRetention(7);
    assertEquals(List.of(old.backupId()), catalog.sweep().expiredByRetention());
  }

  @Test
  void anUnreadableRetentionSettingSkipsRetentionAndIsReported() throws IOException {
    BackupRecord old = ready("old");
    days(1);
    ready("newest");
    Files.writeString(store.directory().resolve("retention.json"), "{\"v\":1,\"retentionDays\":1}");
    assertEquals(ErrorCode.INTERNAL, assertThrows(HsmException.class, catalog::retentionDays).code());
    days(100);
    BackupCatalog.SweepReport report = catalog.sweep();
    assertTrue(report.expiredByRetention().isEmpty());
    assertTrue(report.problems().get(0).startsWith("retention not applied"), report.problems().toString());
    assertEquals(BackupState.READY, catalog.describe(old.backupId()).state());
  }

  @Test
  void unreadableRecordsAreListedAndLeftAloneBySweep() throws IOException {
    BackupRecord good = ready("good");
    BackupId garbage = BackupId.random();
    Files.writeString(store.recordOf(garbage), "{\"v\":1,\"state\":");
    Files.writeString(store.fileOf(garbage), "whatever");
    List<BackupStore.Entry> entries = catalog.list();
    assertEquals(2, entries.size());
    assertEquals(good.backupId(), entries.get(0).id(), "readable first");
    assertFalse(entries.get(1).isReadable());
    days(400);
    BackupCatalog.SweepReport report = catalog.sweep();
    assertTrue(report.problems().stream().anyMatch(p -> p.startsWith(garbage.value())), report.toString());
    assertTrue(Files.exists(store.fileOf(garbage)), "nothing is deleted on the word of an unreadable record");
    assertEquals(ErrorCode.INTERNAL, assertThrows(HsmException.class, () -> catalog.describe(garbage)).code());
  }

  private BackupCatalog otherCatalog(String name) {
    return new BackupCatalog(DirectoryBackupStore.open(name, tmp.resolve(name)), clock, BackupCatalog.Bounds.DEFAULTS);
  }

  @Test
  void copyToRecordsTheSourceAndKeepsTheOriginal() {
    BackupRecord source = ready("the backup");
    days(2);
    BackupCatalog region = otherCatalog("eu-west");
    BackupRecord copy = catalog.copyTo(source.backupId(), region);
    assertNotEquals(source.backupId(), copy.backupId());
    assertEquals(BackupState.READY, copy.state());
    assertEquals("local", copy.sourceStore());
    assertEquals(source.backupId(), copy.sourceBackupId());
    assertEquals("prod", copy.sourceCluster());
    assertEquals(source.appliedIndex(), copy.appliedIndex());
    assertEquals(clock.instant(), copy.createdAt(), "a copy is created when it is copied");
    assertEquals(copy, region.describe(copy.backupId()));
    assertArrayEquals(bytes("the backup"), region.backupFile(copy.backupId()));
    assertEquals(source, catalog.describe(source.backupId()));
    assertThrows(HsmException.class, () -> catalog.copyTo(source.backupId(), catalog));
    catalog.delete(source.backupId());
    assertWrongState(BackupState.PENDING_DELETION, () -> catalog.copyTo(source.backupId(), region));
  }

  @Test
  void aCopyWhoseSourceFileVanishedLeavesNoReadyCopy() throws IOException {
    BackupRecord source = ready("x");
    Files.delete(store.fileOf(source.backupId()));
    BackupCatalog region = otherCatalog("eu-west");
    assertEquals(ErrorCode.UNKNOWN_KEY,
        assertThrows(HsmException.class, () -> catalog.copyTo(source.backupId(), region)).code());
    assertTrue(region.newestReady().isEmpty());
  }
}
