package io.hsmbridge.pkcs11;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * SoftHSM2 2.6.1 fails ~2% of concurrent token-object writes (CKR_GENERAL_ERROR or
 * CKR_TEMPLATE_INCONSISTENT, measured); KeyManager serialises them. Three threads creating and
 * deleting keys at once must never see an error, and no key may be left behind.
 */
class ConcurrentKeyWritesTest {
  @Test
  void concurrentCreateAndDeleteNeverFails() throws Exception {
    try (HsmToken hsm = HsmToken.open(SoftHsmFixture.newToken("writes"))) {
      ExecutorService threads = Executors.newFixedThreadPool(3);
      List<Future<Integer>> results = new ArrayList<>();
      for (int t = 0; t < 3; t++) {
        int thread = t;
        results.add(threads.submit(() -> {
          for (int i = 0; i < 120; i++) {
            String id = hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "w-" + thread + "-" + i, false).keyId();
            hsm.keys().setLabel(id, "renamed-" + thread + "-" + i);
            hsm.keys().delete(id);
          }
          return 120;
        }));
      }
      int done = 0;
      for (Future<Integer> f : results) {
        done += f.get(120, TimeUnit.SECONDS); // rethrows the first HsmException of a worker
      }
      threads.shutdown();
      assertEquals(360, done);
      assertEquals(0, hsm.keys().count());
    }
  }
}
