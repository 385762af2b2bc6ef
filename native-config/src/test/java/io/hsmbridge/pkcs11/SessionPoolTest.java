package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.assertHsm;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The session pool under concurrency, at its limit, after failures, and after close. */
class SessionPoolTest {

  private static TokenConfig limited(TokenConfig c, int maxSessions, Duration borrowTimeout) {
    return new TokenConfig(c.libraryPath(), c.tokenLabel(), c.tokenSerial(), c.userPin(), c.soPin(), c.initialize(),
        maxSessions, borrowTimeout, c.profilesDir(), c.repairCorruption());
  }

  @Test
  @Timeout(120)
  void fourThreadsOfMixedOperationsOnOneToken() throws Exception {
    // 3 sessions for 4 threads: borrowers also have to wait for each other
    try (HsmToken hsm = HsmToken.open(limited(SoftHsmFixture.newToken("pool-mixed"), 3, Duration.ofSeconds(30)))) {
      String aes = hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "aes", false).keyId();
      String hmac = hsm.keys().generate(KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, "hmac", false).keyId();
      String ec = hsm.keys().generate(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "ec", false).keyId();
      String ed = hsm.keys().generate(KeySpec.ED25519, KeyUsage.SIGN_VERIFY, "ed", false).keyId();
      String rsa = hsm.keys().generate(KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY, "rsa", false).keyId();
      int threads = 4;
      int opsPerThread = 500;
      AtomicInteger maxInUse = new AtomicInteger();
      AtomicInteger created = new AtomicInteger();
      ExecutorService pool = Executors.newFixedThreadPool(threads);
      List<Future<Integer>> results = new ArrayList<>();
      CountDownLatch start = new CountDownLatch(1);
      for (int t = 0; t < threads; t++) {
        int seed = t;
        results.add(pool.submit(() -> {
          start.await();
          Random r = new Random(seed);
          int done = 0;
          for (int i = 0; i < opsPerThread; i++) {
            byte[] m = ("thread " + seed + " op " + i).getBytes(StandardCharsets.UTF_8);
            switch (i % 10) {
              case 0: case 1: {
                CryptoService.Encrypted e = hsm.crypto().encrypt(aes, Algorithm.AES_GCM, m, null);
                assertArrayEquals(m, hsm.crypto().decrypt(aes, Algorithm.AES_GCM, e.ciphertext(), e.iv(), null));
                break;
              }
              case 2: {
                CryptoService.Encrypted e = hsm.crypto().encrypt(aes, Algorithm.AES_CBC_PAD, m, null);
                assertArrayEquals(m, hsm.crypto().decrypt(aes, Algorithm.AES_CBC_PAD, e.ciphertext(), e.iv(), null));
                break;
              }
              case 3:
                assertTrue(hsm.crypto().verifyMac(hmac, Algorithm.HMAC_SHA256, m, hsm.crypto().mac(hmac, Algorithm.HMAC_SHA256, m)));
                break;
              case 4:
                assertTrue(hsm.crypto().verify(ec, Algorithm.ECDSA_SHA256, m, hsm.crypto().sign(ec, Algorithm.ECDSA_SHA256, m)));
                break;
              case 5:
                assertTrue(hsm.crypto().verify(ed, Algorithm.ED25519, m, hsm.crypto().sign(ed, Algorithm.ED25519, m)));
                break;
              case 6:
                assertArrayEquals(MessageDigest.getInstance("SHA-256").digest(m), hsm.crypto().digest(Algorithm.SHA256, m));
                break;
              case 7: {
                int n = 1 + r.nextInt(64);
                assertEquals(n, hsm.crypto().random(n).length);
                break;
              }
              case 8:
                if (i % 50 == 8) {
                  assertTrue(hsm.crypto().verify(rsa, Algorithm.RSA_PSS_SHA256, m, hsm.crypto().sign(rsa, Algorithm.RSA_PSS_SHA256, m)));
                } else {
                  // a refusal in the mix: it must not disturb the others
                  assertHsm(ErrorCode.CRYPTO_FAILURE, () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, new byte[20], new byte[12], null));
                }
                break;
              default:
                if (i % 100 == 9) {
                  String k = hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "tmp-" + seed + "-" + i, false).keyId();
                  created.incrementAndGet();
                  CryptoService.Encrypted e = hsm.crypto().encrypt(k, Algorithm.AES_GCM, m, null);
                  assertArrayEquals(m, hsm.crypto().decrypt(k, Algorithm.AES_GCM, e.ciphertext(), e.iv(), null));
                  hsm.keys().delete(k);
                } else {
                  assertEquals(KeySpec.AES_256, hsm.keys().describe(aes).spec());
                }
            }
            maxInUse.accumulateAndGet(hsm.sessionsInUse(), Math::max);
            done++;
          }
          return done;
        }));
      }
      start.countDown();
      int total = 0;
      for (Future<Integer> f : results) {
        total += f.get(110, TimeUnit.SECONDS); // rethrows any assertion or HsmException of a worker
      }
      pool.shutdown();
      assertEquals(threads * opsPerThread, total);
      assertTrue(maxInUse.get() <= 3, "pool exceeded its capacity: " + maxInUse.get());
      assertEquals(0, hsm.sessionsInUse(), "every session came back");
      assertEquals(5, hsm.keys().count(), "temporary keys were deleted");
      assertTrue(created.get() > 0);
    }
  }

  @Test
  @Timeout(30)
  void aSecondBorrowerOfAOneSessionPoolGetsSessionPoolExhausted() throws Exception {
    try (HsmToken hsm = HsmToken.open(limited(SoftHsmFixture.newToken("pool-one"), 1, Duration.ofMillis(200)))) {
      assertEquals(1, hsm.sessionCapacity());
      CountDownLatch holding = new CountDownLatch(1);
      CountDownLatch release = new CountDownLatch(1);
      ExecutorService other = Executors.newSingleThreadExecutor();
      Future<?> holder = other.submit(() -> hsm.pool().call("hold", s -> {
        holding.countDown();
        try {
          release.await();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        return null;
      }));
      try {
        assertTrue(holding.await(10, TimeUnit.SECONDS));
        assertEquals(1, hsm.sessionsInUse());
        long t0 = System.nanoTime();
        HsmException e = assertHsm(ErrorCode.SESSION_POOL_EXHAUSTED, () -> hsm.crypto().random(8));
        long waitedMs = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(waitedMs >= 150, "gave up after " + waitedMs + " ms, before the borrow timeout");
        assertTrue(e.getMessage().contains("1 token sessions") && e.getMessage().contains("200 ms"), e.getMessage());
        assertFalse(e.code().isClientError());
      } finally {
        release.countDown();
        holder.get(10, TimeUnit.SECONDS);
        other.shutdown();
      }
      assertEquals(0, hsm.sessionsInUse());
      assertEquals(8, hsm.crypto().random(8).length, "the session is usable again");
    }
  }

  @Test
  @Timeout(60)
  void slowKeyGenerationHoldsTheOnlySession() throws Exception {
    // The same through public operations only: RSA-4096 generation takes far longer than 50 ms.
    try (HsmToken hsm = HsmToken.open(limited(SoftHsmFixture.newToken("pool-slow"), 1, Duration.ofMillis(50)))) {
      ExecutorService other = Executors.newSingleThreadExecutor();
      Future<KeyInfo> slow = other.submit(() -> hsm.keys().generate(KeySpec.RSA_4096, KeyUsage.SIGN_VERIFY, "slow", false));
      try {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (hsm.sessionsInUse() == 0 && System.nanoTime() < deadline) {
          Thread.sleep(1);
        }
        try {
          hsm.crypto().random(8);
          assertTrue(slow.isDone(), "got a session while the only one was generating a key");
        } catch (HsmException e) {
          assertEquals(ErrorCode.SESSION_POOL_EXHAUSTED, e.code());
        }
        assertEquals(KeySpec.RSA_4096, slow.get(50, TimeUnit.SECONDS).spec());
      } finally {
        other.shutdown();
      }
    }
  }

  @Test
  void discardingFailedSessionsKeepsLoginAndKeyHandles() {
    // One session: every token failure closes it. Without the pool's anchor session this would close
    // the application's last session, log it out, and invalidate every cached handle.
    try (HsmToken hsm = HsmToken.open(limited(SoftHsmFixture.newToken("pool-anchor"), 1, Duration.ofSeconds(5)))) {
      String aes = hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "aes", false).keyId();
      String ec = hsm.keys().generate(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "ec", false).keyId();
      long handleBefore = hsm.keys().entry(aes).handle();
      for (int i = 0; i < 5; i++) {
        assertHsm(ErrorCode.CRYPTO_FAILURE, () -> hsm.crypto().decrypt(aes, Algorithm.AES_GCM, new byte[20], new byte[12], null));
        byte[] m = {(byte) i};
        CryptoService.Encrypted e = hsm.crypto().encrypt(aes, Algorithm.AES_GCM, m, null);
        assertArrayEquals(m, hsm.crypto().decrypt(aes, Algorithm.AES_GCM, e.ciphertext(), e.iv(), null));
        assertTrue(hsm.crypto().verify(ec, Algorithm.ECDSA_SHA256, m, hsm.crypto().sign(ec, Algorithm.ECDSA_SHA256, m)),
            "private key handle still valid");
      }
      assertEquals(handleBefore, hsm.keys().entry(aes).handle());
      hsm.keys().reload();
      assertEquals(handleBefore, hsm.keys().entry(aes).handle(), "handles were never reassigned");
    }
  }

  @Test
  @Timeout(30)
  void aWaitingBorrowerCanBeInterrupted() throws Exception {
    try (HsmToken hsm = HsmToken.open(limited(SoftHsmFixture.newToken("pool-interrupt"), 1, Duration.ofSeconds(20)))) {
      CountDownLatch holding = new CountDownLatch(1);
      CountDownLatch release = new CountDownLatch(1);
      Thread holder = new Thread(() -> hsm.pool().call("hold", s -> {
        holding.countDown();
        try {
          release.await();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        return null;
      }));
      holder.start();
      assertTrue(holding.await(10, TimeUnit.SECONDS));
      AtomicInteger outcome = new AtomicInteger();
      Thread waiter = new Thread(() -> {
        try {
          hsm.crypto().random(4);
        } catch (HsmException e) {
          outcome.set(e.code() == ErrorCode.TOKEN_UNAVAILABLE && Thread.currentThread().isInterrupted() ? 1 : 2);
        }
      });
      waiter.start();
      Thread.sleep(100);
      waiter.interrupt();
      waiter.join(10_000);
      assertEquals(1, outcome.get(), "TOKEN_UNAVAILABLE with the interrupt flag kept");
      release.countDown();
      holder.join(10_000);
      assertEquals(0, hsm.sessionsInUse());
    }
  }

  @Test
  void poolCapacityIsTheSmallerOfConfigAndProfile() {
    try (HsmToken hsm = HsmToken.open(limited(SoftHsmFixture.newToken("pool-cap"), 5, Duration.ofSeconds(1)))) {
      assertEquals(5, hsm.sessionCapacity(), "SoftHSM2 reports no session limit; profile says 0");
    }
  }

  @Test
  void repeatedOpenAndCloseOfOneTokenWorks() {
    TokenConfig c = SoftHsmFixture.newToken("pool-reopen");
    String key;
    try (HsmToken hsm = HsmToken.open(c)) {
      key = hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "k", false).keyId();
    }
    for (int i = 0; i < 5; i++) {
      try (HsmToken hsm = HsmToken.open(c)) {
        byte[] m = Arrays.copyOf(new byte[] {(byte) i}, 3);
        CryptoService.Encrypted e = hsm.crypto().encrypt(key, Algorithm.AES_GCM, m, null);
        assertArrayEquals(m, hsm.crypto().decrypt(key, Algorithm.AES_GCM, e.ciphertext(), e.iv(), null));
      }
    }
  }
}
