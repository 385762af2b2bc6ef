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

  /** This test's anchor (in memory: the token's own record is used by one test only, tests share the token). */
  private final java.util.concurrent.atomic.AtomicReference<io.hsmbridge.pkcs11.AuditAnchorRecord.Anchor> anchored =
      new java.util.concurrent.atomic.AtomicReference<>();
  private final AuditLog.AnchorStore anchors = new AuditLog.AnchorStore() {
    @Override
    public java.util.Optional<io.hsmbridge.pkcs11.AuditAnchorRecord.Anchor> read() {
      return java.util.Optional.ofNullable(anchored.get());
    }

    @Override
    public void write(io.hsmbridge.pkcs11.AuditAnchorRecord.Anchor a) {
      anchored.set(a);
    }
  };

  private AuditLog.AnchorStore anchor() {
    return anchors;
  }

  private Path writeAnchoredLog(String name, int entries) {
    Path file = dir.resolve(name);
    try (AuditLog log = AuditLog.open(file, token.auditKey()::mac, Clock.systemUTC(), anchor(), "hsm-test")) {
      for (int i = 0; i < entries; i++) {
        log.append("alice", "CU", "sign", null, "OK");
        log.flush(); // each line its own sealed batch: a cut anywhere leaves a chain that verifies alone
      }
      log.anchor();
    }
    return file;
  }

  /** The token's audit MAC, counting its calls. */
  private static final class CountingMac implements AuditLog.ChainMac {
    int calls;

    @Override
    public byte[] mac(byte[] data) {
      calls++;
      return token.auditKey().mac(data);
    }
  }

  @Test
  void aBatchCostsOneTokenMacAndItsLinesAreLinkedByHashes() throws Exception {
    Path file = dir.resolve("batch.log");
    CountingMac mac = new CountingMac();
    try (AuditLog log = AuditLog.open(file, mac, Clock.systemUTC())) {
      for (int i = 0; i < 10; i++) {
        log.append("alice", "CU", "sign", null, "OK");
      }
      assertEquals(0, mac.calls, "nothing is sealed before the batch ends");
      log.flush();
      assertEquals(1, mac.calls);
      log.append("alice", "CU", "sign", null, "OK");
    }
    assertEquals(2, mac.calls, "close seals the last batch");
    List<String> lines = Files.readAllLines(file);
    assertEquals(11, lines.size());
    for (int i = 0; i < 11; i++) {
      JsonObject e = new JsonObject(lines.get(i));
      boolean sealed = i == 9 || i == 10;
      assertEquals(sealed, e.containsKey("mac"), "line " + (i + 1));
      assertEquals(!sealed, e.containsKey("hash"), "line " + (i + 1));
    }
    assertTrue(AuditLog.verify(file, token.auditKey()::mac).intact());
  }

  @Test
  void aLongBatchIsSealedInParts() throws Exception {
    Path file = dir.resolve("long.log");
    CountingMac mac = new CountingMac();
    try (AuditLog log = AuditLog.open(file, mac, Clock.systemUTC())) {
      for (int i = 0; i < 2 * AuditLog.MAX_BATCH + 5; i++) {
        log.append("alice", "CU", "sign", null, "OK");
      }
      assertEquals(2, mac.calls, "a seal every " + AuditLog.MAX_BATCH + " lines");
    }
    assertEquals(3, mac.calls);
    AuditLog.Report r = AuditLog.verify(file, token.auditKey()::mac);
    assertTrue(r.intact(), r.toString());
    assertEquals(2 * AuditLog.MAX_BATCH + 5, r.entries());
  }

  /** Rewrites line {@code index} (0-based) with {@code edit}, then recomputes the hashes and links of the batch up to its seal, as a forger without the HSM can. */
  private static void forgeWithinBatch(List<String> lines, int index, java.util.function.Consumer<JsonObject> edit)
      throws Exception {
    String prev = index == 0 ? AuditLog.GENESIS : linkOf(new JsonObject(lines.get(index - 1)));
    for (int i = index; i < lines.size(); i++) {
      JsonObject e = new JsonObject(lines.get(i));
      if (i == index) {
        edit.accept(e);
      }
      e.put("prev", prev);
      if (!e.containsKey("hash")) {
        lines.set(i, e.encode()); // the seal: its MAC cannot be recomputed
        return;
      }
      e.remove("hash");
      String h = java.util.HexFormat.of().formatHex(
          java.security.MessageDigest.getInstance("SHA-256").digest(AuditLog.canonical(e)));
      e.put("hash", h);
      lines.set(i, e.encode());
      prev = h;
    }
  }

  private static String linkOf(JsonObject e) {
    return e.containsKey("mac") ? e.getString("mac") : e.getString("hash");
  }

  @Test
  void aLineEditedWithItsBatchsHashesRecomputedBreaksTheSeal() throws Exception {
    Path file = writeLog(6); // one batch: lines 1-5 hashed, line 6 sealed
    List<String> lines = new ArrayList<>(Files.readAllLines(file));
    forgeWithinBatch(lines, 1, e -> e.put("user", "mallory"));
    Files.write(file, lines);
    AuditLog.Report r = AuditLog.verify(file, token.auditKey()::mac);
    assertFalse(r.intact());
    assertEquals(6L, r.badLine(), r.toString());
    assertTrue(r.problem().contains("MAC of entry 6 does not match"), r.problem());
  }

  @Test
  void linesAddedAfterTheLastSealAreReportedAndSetAsideBeforeTheChainGoesOn() throws Exception {
    Path file = writeLog(3);
    List<String> lines = new ArrayList<>(Files.readAllLines(file));
    // A forger appends a well-linked, correctly hashed line: only a seal could vouch for it.
    JsonObject forged = new JsonObject().put("v", 3).put("seq", 4).put("time", "2026-01-01T00:00:00Z")
        .put("user", "mallory").put("role", "CO").put("op", "user.delete").putNull("keyId").put("result", "OK")
        .put("prev", new JsonObject(lines.get(2)).getString("mac"));
    forged.put("hash", java.util.HexFormat.of().formatHex(
        java.security.MessageDigest.getInstance("SHA-256").digest(AuditLog.canonical(forged))));
    lines.add(forged.encode());
    Files.write(file, lines);
    AuditLog.Report r = AuditLog.verify(file, token.auditKey()::mac);
    assertFalse(r.intact());
    assertEquals(4L, r.badLine());
    assertTrue(r.problem().contains("entries 4..4 at the end are covered by no seal"), r.problem());

    try (AuditLog log = AuditLog.open(file, token.auditKey()::mac, Clock.systemUTC())) {
      assertEquals(3, log.lastSeq(), "the chain goes on from the last seal");
      log.append("alice", "CU", "sign", null, "OK");
    }
    r = AuditLog.verify(file, token.auditKey()::mac);
    assertTrue(r.intact(), r.toString());
    assertEquals(4, r.entries());
    assertFalse(Files.readString(file).contains("mallory"), "the next seal covers not the forged line");

    // Lines that are no entry at all after a forged one: the agent still starts, and sets both aside.
    Files.writeString(file, Files.readString(file) + forged.put("seq", 5).put("prev", linkOf(new JsonObject(
        Files.readAllLines(file).get(3)))).encode() + "\nnot json\n{\"seq\":\"x\"}\n", StandardCharsets.UTF_8);
    try (AuditLog log = AuditLog.open(file, token.auditKey()::mac, Clock.systemUTC())) {
      assertEquals(4, log.lastSeq());
    }
    assertTrue(AuditLog.verify(file, token.auditKey()::mac).intact());
    try (var aside = Files.list(dir)) {
      assertTrue(aside.anyMatch(p -> p.getFileName().toString().startsWith("audit.log.unsealed-")),
          "the forged line is kept aside for the record");
    }
  }

  @Test
  void aCutInsideABatchIsNamedByTheAnchorAndTheUnsealedLines() throws Exception {
    Path file = dir.resolve("cut-batch.log");
    try (AuditLog log = AuditLog.open(file, token.auditKey()::mac, Clock.systemUTC(), anchor(), "hsm-test")) {
      log.append("alice", "CU", "sign", null, "OK");
      log.flush(); // line 1 sealed alone
      for (int i = 0; i < 5; i++) {
        log.append("alice", "CU", "sign", null, "OK");
      }
      log.flush(); // lines 2-6: one batch, sealed by line 6
      log.anchor();
    }
    Files.write(file, Files.readAllLines(file).subList(0, 4));
    AuditLog.Report r = AuditLog.verify(file, token.auditKey()::mac, anchors.read());
    assertFalse(r.intact());
    assertEquals(1, r.lastSeq(), "the sealed chain ends at line 1");
    assertTrue(r.problem().contains("entries 2..6 were removed") && r.problem().contains("entries 2..4 at the end are"
        + " covered by no seal"), r.problem());
  }

  @Test
  void aFieldAddedToALineIsFound() throws Exception {
    Path file = writeLog(4);
    List<String> lines = new ArrayList<>(Files.readAllLines(file));
    lines.set(1, new JsonObject(lines.get(1)).put("note", "harmless?").encode());
    Files.write(file, lines);
    AuditLog.Report r = AuditLog.verify(file, token.auditKey()::mac);
    assertFalse(r.intact());
    assertEquals(2L, r.badLine());
    assertTrue(r.problem().contains("field added"), r.problem());
  }

  @Test
  void linesOfTheFirstFormatStillVerifyButMayNotGainAField() throws Exception {
    Path file = dir.resolve("v1.log");
    String prev = AuditLog.GENESIS;
    List<String> lines = new ArrayList<>();
    for (int seq = 1; seq <= 3; seq++) {
      String time = "2026-01-01T00:00:0" + seq + "Z";
      String mac = java.util.HexFormat.of().formatHex(token.auditKey().mac(
          AuditLog.canonical(prev, seq, time, "bob", "CU", "sign", null, "OK")));
      lines.add(new JsonObject().put("seq", seq).put("time", time).put("user", "bob").put("role", "CU").put("op", "sign")
          .put("keyId", null).put("result", "OK").put("prev", prev).put("mac", mac).encode());
      prev = mac;
    }
    Files.write(file, lines);
    assertTrue(AuditLog.verify(file, token.auditKey()::mac).intact());
    // Reopened by this build: the chain goes on in format 2 and the whole file verifies.
    try (AuditLog log = AuditLog.open(file, token.auditKey()::mac, Clock.systemUTC())) {
      log.append("bob", "CU", "verify", null, "OK");
    }
    assertTrue(AuditLog.verify(file, token.auditKey()::mac).intact());
    List<String> edited = new ArrayList<>(Files.readAllLines(file));
    edited.set(2, new JsonObject(edited.get(2)).put("extra", 1).encode());
    Files.write(file, edited);
    AuditLog.Report r = AuditLog.verify(file, token.auditKey()::mac);
    assertFalse(r.intact());
    assertEquals(3L, r.badLine());
  }

  @Test
  void linesCutOffTheEndWhileStoppedAreFoundAtStartAndTheChainContinuesFromTheAnchor() throws Exception {
    Path file = writeAnchoredLog("cut.log", 6);
    assertTrue(AuditLog.verify(file, token.auditKey()::mac, anchors.read()).intact());
    List<String> lines = Files.readAllLines(file);
    Files.write(file, lines.subList(0, 4));
    assertTrue(AuditLog.verify(file, token.auditKey()::mac).intact(), "the chain alone cannot see a cut end");
    AuditLog.Report cut = AuditLog.verify(file, token.auditKey()::mac, anchors.read());
    assertFalse(cut.intact());
    assertEquals(4, cut.lastSeq());
    assertEquals(6L, cut.anchorSeq());
    assertTrue(cut.problem().contains("entries 5..6 were removed"), cut.problem());

    try (AuditLog log = AuditLog.open(file, token.auditKey()::mac, Clock.systemUTC(), anchor(), "hsm-test")) {
      assertNotNull(log.startProblem());
      assertTrue(log.startProblem().contains("hsm-test") && log.startProblem().contains("5..6"), log.startProblem());
      assertEquals(7, log.append("alice", "CU", "sign", null, "OK").getLong("seq"), "the gap stays visible");
    }
    AuditLog.Report after = AuditLog.verify(file, token.auditKey()::mac, anchors.read());
    assertFalse(after.intact());
    assertEquals(5L, after.badLine());
    assertTrue(after.problem().contains("entries 5..6 were removed"), after.problem());
  }

  @Test
  void aFileReplacedByAnOlderCopyOrDeletedIsFound() throws Exception {
    Path file = writeAnchoredLog("older.log", 3);
    byte[] older = Files.readAllBytes(file);
    try (AuditLog log = AuditLog.open(file, token.auditKey()::mac, Clock.systemUTC(), anchor(), "hsm-test")) {
      assertNull(log.startProblem());
      log.append("alice", "CU", "sign", null, "OK");
      log.flush();
      log.anchor();
    }
    Files.write(file, older);
    AuditLog.Report r = AuditLog.verify(file, token.auditKey()::mac, anchors.read());
    assertFalse(r.intact());
    assertTrue(r.problem().contains("older copy"), r.problem());
    Files.delete(file);
    try (AuditLog log = AuditLog.open(file, token.auditKey()::mac, Clock.systemUTC(), anchor(), "hsm-test")) {
      assertTrue(log.startProblem().contains("ends at sequence 0"), log.startProblem());
    }
  }

  @Test
  void theWriterAnchorsWhatItReportsWrittenSoACutWhileRunningIsFound() throws Exception {
    Path file = dir.resolve("running.log");
    AuditLog.AnchorStore inToken = AuditLog.AnchorStore.in(token.auditAnchor());
    AuditWriter w = new AuditWriter(AuditLog.open(file, token.auditKey()::mac, Clock.systemUTC(), inToken, "hsm-test"), "t");
    try {
      for (int i = 0; i < 50; i++) {
        w.append("alice", "CU", "sign", null, "OK");
      }
      w.sync();
      assertEquals(50L, token.auditAnchor().rescan().orElseThrow().seq(), "in the token, not only in memory");
      List<String> lines = Files.readAllLines(file);
      // Cut after a seal (a cut inside a batch the chain alone finds: the new sealed-batch tests).
      int keep = 45;
      while (!new JsonObject(lines.get(keep - 1)).containsKey("mac")) {
        keep--;
      }
      Files.write(file, lines.subList(0, keep));
      w.sync();
      assertTrue(AuditLog.verify(file, token.auditKey()::mac).intact(), "the chain alone cannot see this cut");
      AuditLog.Report r = AuditLog.verify(file, token.auditKey()::mac, token.auditAnchor().read());
      assertFalse(r.intact());
      assertTrue(r.problem().contains((keep + 1) + "..50"), r.problem());
    } finally {
      w.close();
    }
  }
}
