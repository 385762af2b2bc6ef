package io.hsmbridge.agent.audit;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.pkcs11.TokenConfig;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The audit chain keyed by a real SoftHSM2 token's audit key: intact logs verify, every kind of tampering is found. */
class AuditLogTest {
  private static HsmToken token;
  private static HsmToken otherToken;

  @TempDir
  Path dir;

  @BeforeAll
  static void open() {
    token = HsmToken.open(SoftHsmFixture.newToken("audit"));
    otherToken = HsmToken.open(SoftHsmFixture.newToken("audit-other"));
  }

  @AfterAll
  static void close() {
    token.close();
    otherToken.close();
  }

  private Path writeLog(int entries) {
    Path file = dir.resolve("audit.log");
    try (AuditLog log = AuditLog.open(file, token.auditKey()::mac, Clock.systemUTC())) {
      for (int i = 0; i < entries; i++) {
        log.append("alice", "CU", i % 2 == 0 ? "sign" : "key.generate", "0123456789abcdef0123456789abcdef",
            i == 3 ? "UNKNOWN_KEY" : "OK");
      }
    }
    return file;
  }

  @Test
  void anIntactLogVerifiesAndReopeningContinuesTheChain() throws Exception {
    Path file = writeLog(5);
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
    try (AuditLog log = AuditLog.open(file, token.auditKey()::mac, Clock.systemUTC())) {
      assertEquals(5, log.lastSeq());
      JsonObject sixth = log.append("admin", "CO", "user.create", null, "OK");
      assertEquals(6, sixth.getLong("seq"));
    }
    AuditLog.Report r = AuditLog.verify(file, token.auditKey()::mac);
    assertTrue(r.intact(), r.toString());
    assertEquals(6, r.entries());
    assertEquals(0, token.keys().count(), "the audit key is not a user key");
  }

  @Test
  void aDeletedEntryIsFound() throws Exception {
    Path file = writeLog(6);
    List<String> lines = new ArrayList<>(Files.readAllLines(file));
    lines.remove(2);
    Files.write(file, lines);
    AuditLog.Report r = AuditLog.verify(file, token.auditKey()::mac);
    assertFalse(r.intact());
    assertEquals(3L, r.badLine());
    assertTrue(r.problem().contains("removed"), r.problem());
  }

  @Test
  void anEditedEntryIsFoundEvenWithItsSequenceAndLinkKept() throws Exception {
    Path file = writeLog(6);
    List<String> lines = new ArrayList<>(Files.readAllLines(file));
    lines.set(3, new JsonObject(lines.get(3)).put("result", "OK").put("user", "mallory").encode());
    Files.write(file, lines);
    AuditLog.Report r = AuditLog.verify(file, token.auditKey()::mac);
    assertFalse(r.intact());
    assertEquals(4L, r.badLine());
    assertTrue(r.problem().contains("edited"), r.problem());
  }

  @Test
  void reorderedEntriesAreFound() throws Exception {
    Path file = writeLog(6);
    List<String> lines = new ArrayList<>(Files.readAllLines(file));
    Collections.swap(lines, 1, 2);
    Files.write(file, lines);
    AuditLog.Report r = AuditLog.verify(file, token.auditKey()::mac);
    assertFalse(r.intact());
    assertEquals(2L, r.badLine());
  }

  @Test
  void aChainRecomputedWithoutTheHsmDoesNotVerify() throws Exception {
    // Someone who can write the file rebuilds the whole chain with another key (here: another token's).
    Path forged = dir.resolve("forged.log");
    try (AuditLog log = AuditLog.open(forged, otherToken.auditKey()::mac, Clock.systemUTC())) {
      log.append("alice", "CU", "sign", null, "OK");
    }
    AuditLog.Report r = AuditLog.verify(forged, token.auditKey()::mac);
    assertFalse(r.intact());
    assertEquals(1L, r.badLine());
  }

  @Test
  void entriesHoldNoSecretAndGarbageIsReported() throws Exception {
    Path file = writeLog(2);
    String text = Files.readString(file, StandardCharsets.UTF_8);
    assertFalse(text.contains("password"));
    Files.writeString(file, text + "not json\n", StandardCharsets.UTF_8);
    AuditLog.Report r = AuditLog.verify(file, token.auditKey()::mac);
    assertFalse(r.intact());
    assertEquals(3L, r.badLine());
    assertEquals(2, r.entries());
  }
}
