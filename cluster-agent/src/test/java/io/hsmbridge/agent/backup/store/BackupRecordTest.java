package io.hsmbridge.agent.backup.store;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The metadata format: round trip, and every malformed input is one typed error. */
class BackupRecordTest {
  private static final Instant T = Instant.parse("2027-01-01T00:00:00Z");
  private static final BackupId ID = BackupId.of("backup-abcdefghijk");

  private static BackupRecord copy() {
    return new BackupRecord(ID, "prod", "hsm1", T, 42, 1000, BackupState.READY, T.plusSeconds(5), true, "eu-west",
        BackupId.of("backup-bbbbbbbbbbb"), "prod");
  }

  @Test
  void aRecordRoundTripsThroughJson() {
    BackupRecord original = BackupRecord.creating(ID, "prod", "hsm1", 7, T);
    assertEquals(original, BackupRecord.fromBytes(original.toBytes(), "test"));
    assertEquals(copy(), BackupRecord.fromBytes(copy().toBytes(), "test"));
    assertTrue(copy().isCopy());
    assertFalse(original.isCopy());
  }

  @Test
  void toStringIsOneCompactLine() {
    String s = copy().toString();
    assertFalse(s.contains("\n"));
    assertTrue(s.contains("backup-abcdefghijk") && s.contains("READY") && s.contains("eu-west/backup-bbbbbbbbbbb"), s);
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "garbage", "[]", "null", "{", "{\"v\":1}", "\"text\"",
      "{\"v\":2,\"backupId\":\"backup-abcdefghijk\"}"})
  void garbageIsATypedError(String text) {
    HsmException e = assertThrows(HsmException.class,
        () -> BackupRecord.fromBytes(text.getBytes(StandardCharsets.UTF_8), "the record"));
    assertEquals(ErrorCode.INTERNAL, e.code());
    assertTrue(e.getMessage().startsWith("the record is unreadable"), e.getMessage());
  }

  @Test
  void wrongTypesAndValuesAreTypedErrors() {
    JsonObject good = copy().toJson();
    Object[][] edits = {
        {"appliedIndex", "42"}, {"appliedIndex", 4.5}, {"appliedIndex", -1}, {"sizeBytes", true},
        {"state", "HALF_DONE"}, {"state", 3}, {"createdAt", "yesterday"}, {"neverExpires", "yes"},
        {"backupId", "../../etc/passwd"}, {"clusterName", ""}, {"clusterName", "evil\u001b[2J"},
        {"clusterName", "x".repeat(129)}, {"sourceCluster", null}, {"extra", 1}, {"v", "1"},
    };
    for (Object[] edit : edits) {
      JsonObject bad = good.copy().put((String) edit[0], edit[1]);
      HsmException e = assertThrows(HsmException.class,
          () -> BackupRecord.fromBytes(bad.encode().getBytes(StandardCharsets.UTF_8), "r"), edit[0] + "=" + edit[1]);
      assertEquals(ErrorCode.INTERNAL, e.code());
      assertFalse(e.getMessage().contains("\u001b"), "no control characters from the file in the message");
    }
  }

  @Test
  void aCopyNamesAllThreeSourcesOrNone() {
    assertThrows(HsmException.class, () -> new BackupRecord(ID, "prod", "hsm1", T, 0, 0, BackupState.READY, T, false,
        "eu-west", null, null));
  }
}
