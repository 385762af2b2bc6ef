package io.hsmbridge.agent.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.FileOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LogRotationTest {
  @TempDir
  Path dir;

  @Test
  void copiesAndTruncatesPastTheCapKeepingAFewGenerations() throws Exception {
    Path log = dir.resolve("node.log");
    LogRotation r = new LogRotation(log, 100, 2);
    // As a launcher does: the file is open for appending while it is rotated.
    try (FileOutputStream out = new FileOutputStream(log.toFile(), true)) {
      for (int round = 1; round <= 3; round++) {
        out.write(("round " + round + " " + "x".repeat(200) + "\n").getBytes(StandardCharsets.US_ASCII));
        out.flush();
        assertTrue(r.rotateIfNeeded());
        assertEquals(0, Files.size(log));
      }
      out.write("after\n".getBytes(StandardCharsets.US_ASCII));
    }
    assertFalse(r.rotateIfNeeded(), "under the cap");
    assertEquals("after\n", Files.readString(log), "appends land at the start of the emptied file");
    assertTrue(Files.readString(dir.resolve("node.log.1")).startsWith("round 3"));
    assertTrue(Files.readString(dir.resolve("node.log.2")).startsWith("round 2"));
    assertFalse(Files.exists(dir.resolve("node.log.3")), "only 2 generations kept");
  }
}
