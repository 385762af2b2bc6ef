package io.hsmbridge.agent.audit;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Entries appended from many threads through the writer thread form one intact chain, in file after sync. */
class AuditWriterTest {
  @TempDir
  Path dir;

  @Test
  void manyThreadsOneIntactChainVisibleAfterSync() throws Exception {
    try (HsmToken token = HsmToken.open(SoftHsmFixture.newToken("audit-writer"))) {
      Path file = dir.resolve("audit.log");
      java.util.concurrent.atomic.AtomicInteger seals = new java.util.concurrent.atomic.AtomicInteger();
      AuditWriter writer = new AuditWriter(AuditLog.open(file, data -> {
        seals.incrementAndGet();
        return token.auditKey().mac(data);
      }, Clock.systemUTC()), "t");
      List<Thread> threads = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        int n = t;
        threads.add(new Thread(() -> {
          for (int i = 0; i < 250; i++) {
            writer.append("-", "-", "sign", null, n % 2 == 0 ? "OK" : "UNKNOWN_KEY");
          }
        }));
      }
      threads.forEach(Thread::start);
      for (Thread t : threads) {
        t.join();
      }
      writer.sync();
      assertEquals(1000, Files.readAllLines(file).size(), "everything queued is in the file after sync");
      AuditLog.Report r = AuditLog.verify(file, token.auditKey()::mac);
      assertTrue(r.intact(), r.toString());
      assertEquals(1000, r.entries());
      // What the writer found queued is one batch with one token MAC (here the appenders outrun the writer).
      assertTrue(seals.get() < 1000 / 4, seals.get() + " token MACs for 1,000 entries");
      writer.append("-", "-", "random", null, "OK");
      writer.close();
      assertEquals(1001, AuditLog.verify(file, token.auditKey()::mac).entries(), "close writes what was queued");
    }
  }
}
