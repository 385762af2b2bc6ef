package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.client.Aead;
import io.hsmbridge.client.Ciphertext;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.client.HsmClient;
import io.hsmbridge.client.KeyHandle;
import io.hsmbridge.client.Keys.KeyRequest;
import io.hsmbridge.client.MacPrimitive;
import io.hsmbridge.client.Signer;
import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.security.Signature;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue #13 item 2, the typed client ({@link HsmClient}) on a real one-HSM cluster: per-key primitives with
 * algorithms as enums, blocking and asynchronous calls (completing on the caller's Vert.x context), creation
 * with a request id, logging in again by itself through the password callback, and errors that say whether a
 * retry may help and whether the connection was lost or the cluster answered.
 */
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class TypedClientTest {
  private static TestLogins logins;
  private static HsmClient client;

  @BeforeAll
  static void up() throws IOException {
    logins = JceClusters.upOneHsm("typed-client");
    client = HsmClient.connect(options());
  }

  private static HsmClient.Options options() {
    Path home = logins.home();
    return HsmClient.options().endpoints(JceClusters.endpoint(home, "hsm1").toString()).ca(JceClusters.ca(home))
        .user(TestLogins.CRYPTO_USER).password(TypedClientTest::password);
  }

  /** The password callback: read from the file each time, as an application reading its secret store would. */
  private static char[] password() {
    return logins.password(TestLogins.CRYPTO_USER);
  }

  @AfterAll
  static void down() throws IOException {
    if (client != null) {
      client.close();
    }
    JceClusters.down(logins, null, "TypedClientTest");
  }

  @Test
  void perKeyPrimitivesSignEncryptAndMac() throws Exception {
    KeyHandle ec = client.keys().generate(KeySpec.EC_P256, "typed-signer");
    Signer signer = ec.signer(Algorithm.ECDSA_SHA256);
    byte[] message = "typed".getBytes(StandardCharsets.UTF_8);
    byte[] signature = signer.sign(message);
    Signature jdk = Signature.getInstance("SHA256withECDSA", "SunEC");
    jdk.initVerify(ec.publicKey());
    jdk.update(message);
    assertTrue(jdk.verify(signature), "the JDK verifies the typed signer's signature");
    assertTrue(signer.verify(message, signature));

    KeyHandle aes = client.keys().generate(KeySpec.AES_256, "typed-aead");
    Aead aead = aes.aead();
    byte[] aad = {1, 2};
    Ciphertext sealed = aead.encrypt(message, aad);
    assertEquals(12, sealed.iv().length);
    assertArrayEquals(message, aead.decrypt(sealed, aad));
    HsmBridgeException badTag = assertThrows(HsmBridgeException.class, () -> aead.decrypt(sealed, new byte[] {9}));
    assertEquals(ErrorCode.CRYPTO_FAILURE, badTag.code());
    assertFalse(badTag.isRetryable(), "a failed tag check fails again");
    assertFalse(badTag.isConnectionLost(), "the cluster answered");

    MacPrimitive mac = client.keys().generate(KeySpec.HMAC_SHA256).mac();
    byte[] tag = mac.compute(message);
    assertTrue(mac.verify(message, tag));
    assertFalse(mac.verify("other".getBytes(StandardCharsets.UTF_8), tag));

    IllegalArgumentException wrongAlg = assertThrows(IllegalArgumentException.class,
        () -> ec.signer(Algorithm.RSA_PSS_SHA256));
    assertTrue(wrongAlg.getMessage().contains("ECDSA_SHA256"), "names what works: " + wrongAlg.getMessage());
    assertThrows(IllegalArgumentException.class, ec::aead, "an EC key does no AES-GCM");
    assertEquals(1, client.keys().find("typed-signer").size());
    assertEquals(ec.keyId(), client.keys().get(ec.keyId()).keyId());
  }

  @Test
  void asyncCallsCompleteOnTheCallersVertxContext() throws Exception {
    KeyHandle ec = client.keys().generate(KeySpec.EC_P256, "typed-async");
    Signer signer = ec.signer(Algorithm.ECDSA_SHA256);
    Vertx vertx = Vertx.vertx();
    try {
      Context context = vertx.getOrCreateContext();
      CompletableFuture<Boolean> sameContext = new CompletableFuture<>();
      context.runOnContext(v -> signer.signAsync(new byte[] {7}).whenComplete((sig, failure) -> {
        sameContext.complete(failure == null && sig.length > 0 && Vertx.currentContext() == context);
      }));
      assertTrue(sameContext.get(30, TimeUnit.SECONDS), "completed on the context that called, with a signature");
    } finally {
      vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
    // Off any context it completes on a client thread.
    byte[] sig = signer.signAsync(new byte[] {7}).toCompletableFuture().get(30, TimeUnit.SECONDS);
    assertTrue(sig.length > 0);
    HsmBridgeException unknown = assertThrows(HsmBridgeException.class,
        () -> joinCause(client.keys().get(ec.keyId()).signer(Algorithm.ECDSA_SHA256)));
    assertEquals(ErrorCode.UNKNOWN_KEY, unknown.code());
  }

  /**
   * Asynchronous calls are bounded in flight (each holds a client thread while its request is out), and every one
   * queued behind them completes. Before, the client made a thread for each waiting call, without bound.
   */
  @Test
  void asyncCallsOutAtOnceAreBoundedAndEveryOneCompletes() throws Exception {
    try (HsmClient own = HsmClient.connect(options().asyncThreads(4))) {
      Signer signer = own.keys().generate(KeySpec.EC_P256, "typed-bounded").signer(Algorithm.ECDSA_SHA256);
      java.util.concurrent.atomic.AtomicInteger inFlight = new java.util.concurrent.atomic.AtomicInteger();
      java.util.concurrent.atomic.AtomicInteger most = new java.util.concurrent.atomic.AtomicInteger();
      java.util.List<CompletableFuture<Integer>> calls = new java.util.ArrayList<>();
      for (int i = 0; i < 200; i++) {
        calls.add(own.callAsync(h -> {
          most.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
          try {
            return signer.sign(new byte[] {(byte) 1}).length;
          } finally {
            inFlight.decrementAndGet();
          }
        }).toCompletableFuture());
      }
      for (CompletableFuture<Integer> call : calls) {
        assertTrue(call.get(120, TimeUnit.SECONDS) > 0);
      }
      assertTrue(most.get() <= 4, "calls out at once: " + most.get());
      assertTrue(most.get() >= 2, "they ran in parallel: " + most.get());
    }
  }

  /** Deletes the key, then signs asynchronously with its signer: the failure the future carries. */
  private static void joinCause(Signer signer) throws Exception {
    client.keys().list().stream().filter(k -> k.label().equals("typed-async")).forEach(KeyHandle::delete);
    try {
      signer.signAsync(new byte[] {1}).toCompletableFuture().get(30, TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException e) {
      throw (Exception) e.getCause();
    }
  }

  @Test
  void aCreationSentAgainWithItsRequestIdIsTheSameKey() {
    KeyRequest request = KeyRequest.of(KeySpec.AES_128).label("typed-once").requestId("typed-once-1");
    KeyHandle first = client.keys().generate(request);
    KeyHandle again = client.keys().generateAsync(request).toCompletableFuture().join();
    assertEquals(first.keyId(), again.keyId());
    assertNotEquals(first.keyId(), client.keys().generate(KeySpec.AES_128, "typed-once").keyId(), "no id: a new key");
  }

  @Test
  void aLostSessionIsALoginThroughTheCallbackNotAnError() throws Exception {
    try (HsmClient own = HsmClient.connect(options())) {
      KeyHandle key = own.keys().generate(KeySpec.EC_P256, "typed-relogin");
      assertEquals(1, own.logins());
      own.call(h -> {
        h.logout(); // the session ends, as at its expiry or a logout elsewhere
        return null;
      });
      assertTrue(key.signer(Algorithm.ECDSA_SHA256).sign(new byte[] {1}).length > 0);
      assertEquals(2, own.logins(), "logged in again by itself");
    }
  }

  @Test
  void errorsTellALostConnectionFromAnAnswer() throws Exception {
    int closedPort;
    try (ServerSocket s = new ServerSocket(0)) {
      closedPort = s.getLocalPort();
    }
    HsmBridgeException unreachable = assertThrows(HsmBridgeException.class, () -> HsmClient.connect(
        HsmClient.options().endpoints("127.0.0.1:" + closedPort).ca(JceClusters.ca(logins.home()))
            .user(TestLogins.CRYPTO_USER).password(TypedClientTest::password).retryBudget(Duration.ofSeconds(1))));
    assertEquals(ErrorCode.NO_HSM_AVAILABLE, unreachable.code());
    assertTrue(unreachable.isConnectionLost(), "nobody answered: " + unreachable.getMessage());
    assertTrue(unreachable.isRetryable());

    HsmBridgeException wrongPassword = assertThrows(HsmBridgeException.class, () -> HsmClient.connect(options()
        .password(() -> "not the password of alice".toCharArray())));
    assertEquals(ErrorCode.LOGIN_FAILED, wrongPassword.code());
    assertFalse(wrongPassword.isRetryable());
    assertFalse(wrongPassword.isConnectionLost());
    assertSame(ErrorCode.UNKNOWN_KEY, assertThrows(HsmBridgeException.class,
        () -> client.keys().get("00000000000000000000000000000000")).code());
  }
}
