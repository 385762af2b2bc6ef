package io.hsmbridge.agent.backup;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.agent.backup.store.BackupId;
import io.hsmbridge.agent.backup.store.BackupRecord;
import io.hsmbridge.agent.backup.store.BackupState;
import io.hsmbridge.pkcs11.HsmException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import org.junit.jupiter.api.Test;

/** When a backup is due, and whose turn it is (BackupSchedule), with the clock in the test's hands. */
class BackupScheduleTest {
  private static final Instant T0 = Instant.parse("2026-12-05T00:00:00Z");
  private static final Duration DAY = Duration.ofHours(24);

  private static BackupRecord made(Instant at, long index, BackupState state) {
    BackupRecord r = BackupRecord.creating(BackupId.random(), "c", "hsm1", index, at);
    return state == BackupState.CREATE_IN_PROGRESS ? r : r.withState(state, at);
  }

  @Test
  void dueWhenActivatedWithoutBackupWhenOldAndWhenTheHsmsChanged() {
    assertNull(BackupSchedule.due(Optional.empty(), false, 0, T0, DAY), "nothing to back up before activation");
    assertNotNull(BackupSchedule.due(Optional.empty(), true, 0, T0, DAY));
    Optional<BackupRecord> fresh = Optional.of(made(T0, 10, BackupState.READY));
    assertNull(BackupSchedule.due(fresh, true, 0, T0.plus(Duration.ofHours(23)), DAY));
    assertNotNull(BackupSchedule.due(fresh, true, 0, T0.plus(DAY), DAY));
    assertNull(BackupSchedule.due(fresh, true, 10, T0.plusSeconds(60), DAY), "a change the backup holds already");
    assertNotNull(BackupSchedule.due(fresh, true, 11, T0.plusSeconds(60), DAY), "an HSM added after the backup");
    assertNull(BackupSchedule.due(Optional.empty(), true, 11, T0, Duration.ZERO), "backup.interval=0: none");
  }

  @Test
  void aBackupInProgressCountsAndOtherClustersAndFailedOnesDoNot() {
    BackupRecord ready = made(T0, 5, BackupState.READY);
    BackupRecord running = made(T0.plusSeconds(30), 6, BackupState.CREATE_IN_PROGRESS);
    BackupRecord failed = made(T0.plusSeconds(60), 7, BackupState.FAILED);
    BackupRecord other = BackupRecord.creating(BackupId.random(), "other", "hsm1", 9, T0.plusSeconds(90)).withState(BackupState.READY, T0);
    assertEquals(running, BackupSchedule.newest(List.of(ready, running, failed, other), "c").orElseThrow());
    assertEquals(Optional.empty(), BackupSchedule.newest(List.of(failed, other), "c"));
  }

  @Test
  void theFirstHsmAtOnceTheNextOnlyWhenTheFirstHasNotBegun() {
    assertTrue(BackupSchedule.myTurn(0, T0, T0));
    assertFalse(BackupSchedule.myTurn(1, T0, T0.plus(BackupSchedule.STAGGER).minusSeconds(1)));
    assertTrue(BackupSchedule.myTurn(1, T0, T0.plus(BackupSchedule.STAGGER)));
    assertFalse(BackupSchedule.myTurn(2, T0, T0.plus(BackupSchedule.STAGGER)));
  }

  @Test
  void theIntervalSetting() {
    assertEquals(DAY, BackupSchedule.interval(new Properties()));
    assertEquals(Duration.ofMinutes(30), BackupSchedule.interval(props("30m")));
    assertEquals(Duration.ofDays(7), BackupSchedule.interval(props("7d")));
    assertEquals(Duration.ZERO, BackupSchedule.interval(props("off")));
    for (String bad : List.of("4m", "380d", "24", "h", "-1h", "1w", "1.5h")) {
      assertThrows(HsmException.class, () -> BackupSchedule.interval(props(bad)), bad);
    }
  }

  private static Properties props(String interval) {
    Properties p = new Properties();
    p.setProperty("backup.interval", interval);
    return p;
  }
}
