package io.hsmbridge.agent;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.junit5.VertxExtension;
import io.vertx.junit5.VertxTestContext;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The agent on an in-JVM Vert.x event bus over a real SoftHSM2 token: every operation round-trips as
 * JSON, failures are typed {@link ReplyException}s, and token work never runs on an event loop.
 */
@ExtendWith(VertxExtension.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AgentVerticleTest {
  private static final String HSM_ID = "agent-test";
  private static final String ADDRESS = Addresses.agent(HSM_ID);
  private static final Base64.Encoder B64 = Base64.getEncoder();
  private static final Base64.Decoder UNB64 = Base64.getDecoder();

  private static HsmToken hsm;

  private Vertx vertx;

  @BeforeAll
  static void openToken() {
    hsm = HsmToken.open(SoftHsmFixture.newToken("agent"));
  }

  @AfterAll
  static void closeToken() {
    if (hsm != null) {
      hsm.close();
    }
  }

  @BeforeEach
  void deploy(Vertx vertx, VertxTestContext ctx) {
    this.vertx = vertx;
    vertx.deployVerticle(new AgentVerticle(HSM_ID, hsm)).onComplete(ctx.succeedingThenComplete());
  }

  // ---------------------------------------------------------------- round trips, one per operation

  @Test
  void health() {
    JsonObject h = call(req("health").put("requestId", "r-1"));
    assertEquals("OK", h.getString("status"));
    assertEquals(HSM_ID, h.getString("hsmId"));
    assertEquals(hsm.label(), h.getString("token"));
    assertEquals(hsm.serial(), h.getString("serial"));
    assertNotNull(h.getString("manufacturer"));
    assertNotNull(h.getString("profile"));
    assertEquals(hsm.keys().count(), h.getInteger("objects"));
    assertEquals(hsm.sessionCapacity(), h.getInteger("sessionsMax"));
    assertTrue(h.getInteger("sessionsInUse") >= 0);
    assertEquals("r-1", h.getString("requestId"), "requestId is echoed");
  }

  @Test
  void keyLifecycle() {
    JsonObject k = call(req("key.generate").put("spec", "AES_256").put("label", "life"));
    String id = k.getString("keyId");
    assertTrue(id.matches("[0-9a-f]{32}"), id);
    assertEquals("life", k.getString("label"));
    assertEquals("AES_256", k.getString("spec"));
    assertEquals("AES", k.getString("family"));
    assertEquals("ENCRYPT_DECRYPT", k.getString("usage"));
    assertFalse(k.getBoolean("exportable"));
    assertTrue(k.getBoolean("sensitive"));

    assertEquals(k, call(req("key.describe").put("keyId", id)));
    // key ids are accepted in upper case too
    assertEquals(id, call(req("key.describe").put("keyId", id.toUpperCase())).getString("keyId"));

    JsonArray byLabel = call(req("key.list").put("label", "life")).getJsonArray("keys");
    assertEquals(1, byLabel.size());
    assertEquals(id, byLabel.getJsonObject(0).getString("keyId"));
    assertTrue(containsKey(call(req("key.list")).getJsonArray("keys"), id));

    JsonObject relabelled = call(req("key.setLabel").put("keyId", id).put("label", "life-2"));
    assertEquals("life-2", relabelled.getString("label"));
    assertEquals("life-2", call(req("key.describe").put("keyId", id)).getString("label"));
    assertEquals(0, call(req("key.list").put("label", "life")).getJsonArray("keys").size());

    JsonObject deleted = call(req("key.delete").put("keyId", id));
    assertEquals(id, deleted.getString("keyId"));
    assertTrue(deleted.getBoolean("deleted"));
    assertFailure(ErrorCode.UNKNOWN_KEY, req("key.describe").put("keyId", id));
    assertFalse(containsKey(call(req("key.list")).getJsonArray("keys"), id));
  }

  /** One HSM without a cluster: an Ed25519 key's chain written to the token, read back, gone with the key. */
  @Test
  void ed25519CertificateChainOnOneHsm() throws Exception {
    String id = generate("ED25519", "ed-certs", null);
    byte[] spki = Base64.getDecoder().decode(call(req("key.publicKey").put("keyId", id)).getString("spki"));
    java.security.KeyPairGenerator g = java.security.KeyPairGenerator.getInstance("EC");
    g.initialize(new java.security.spec.ECGenParameterSpec("secp256r1"));
    java.security.KeyPair ca = g.generateKeyPair(); // a throwaway issuer
    java.time.Instant now = java.time.Instant.now();
    byte[] leaf = new org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder(
        new org.bouncycastle.asn1.x500.X500Name("CN=throwaway CA"), java.math.BigInteger.ONE,
        java.util.Date.from(now.minusSeconds(60)), java.util.Date.from(now.plusSeconds(3600)),
        new org.bouncycastle.asn1.x500.X500Name("CN=ed25519 leaf"),
        KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(spki)))
        .build(new org.bouncycastle.operator.jcajce.JcaContentSignerBuilder("SHA256withECDSA").build(ca.getPrivate()))
        .getEncoded();
    JsonObject set = call(req("key.setCertificates").put("keyId", id).put("certificates", new JsonArray().add(b64(leaf))));
    assertEquals(1, set.getInteger("count"));
    assertEquals(new JsonArray().add(b64(leaf)), call(req("key.certificates").put("keyId", id)).getJsonArray("certificates"));
    String other = generate("ED25519", "ed-other", null);
    ReplyException wrongLeaf = assertFailure(ErrorCode.INVALID_PARAMETER,
        req("key.setCertificates").put("keyId", other).put("certificates", new JsonArray().add(b64(leaf))));
    assertTrue(wrongLeaf.getMessage().contains("another public key"), wrongLeaf.getMessage());
    assertFailure(ErrorCode.BAD_REQUEST, req("key.setCertificates").put("keyId", id).put("certificates", b64(leaf)));
    call(req("key.delete").put("keyId", id));
    assertTrue(hsm.keyCertificates().get(id).isEmpty(), "the chain went with the key");
    assertFailure(ErrorCode.UNKNOWN_KEY, req("key.certificates").put("keyId", id));
    call(req("key.delete").put("keyId", other));
  }

  @Test
  void aesEncryptDecrypt() {
    String id = generate("AES_128", "aes", null);
    byte[] plain = "attack at dawn".getBytes(StandardCharsets.UTF_8);
    byte[] aad = "header".getBytes(StandardCharsets.UTF_8);

    JsonObject gcm = call(req("encrypt").put("keyId", id).put("alg", "AES_GCM").put("plaintext", b64(plain))
        .put("aad", b64(aad)));
    assertEquals(12, unb64(gcm.getString("iv")).length);
    assertEquals(plain.length + 16, unb64(gcm.getString("ciphertext")).length);
    JsonObject back = call(req("decrypt").put("keyId", id).put("alg", "AES_GCM")
        .put("ciphertext", gcm.getString("ciphertext")).put("iv", gcm.getString("iv")).put("aad", b64(aad)));
    assertArrayEquals(plain, unb64(back.getString("plaintext")));

    JsonObject cbc = call(req("encrypt").put("keyId", id).put("alg", "AES_CBC_PAD").put("plaintext", b64(plain)));
    assertEquals(16, unb64(cbc.getString("iv")).length);
    assertEquals(16, unb64(cbc.getString("ciphertext")).length);
    back = call(req("decrypt").put("keyId", id).put("alg", "AES_CBC_PAD")
        .put("ciphertext", cbc.getString("ciphertext")).put("iv", cbc.getString("iv")));
    assertArrayEquals(plain, unb64(back.getString("plaintext")));

    // a tampered GCM ciphertext is an opaque CRYPTO_FAILURE
    byte[] bad = unb64(gcm.getString("ciphertext"));
    bad[0] ^= 1;
    ReplyException e = assertFailure(ErrorCode.CRYPTO_FAILURE, req("decrypt").put("keyId", id).put("alg", "AES_GCM")
        .put("ciphertext", b64(bad)).put("iv", gcm.getString("iv")).put("aad", b64(aad)));
    assertEquals("CRYPTO_FAILURE: " + ErrorCode.CRYPTO_FAILURE.summary(), e.getMessage());
  }

  @Test
  void ecdsaSignVerifyAndPublicKey() throws Exception {
    String id = generate("EC_P256", "ec", null);
    byte[] msg = "to be signed".getBytes(StandardCharsets.UTF_8);
    byte[] sig = unb64(call(req("sign").put("keyId", id).put("alg", "ECDSA_SHA256").put("message", b64(msg)))
        .getString("signature"));
    PublicKey pub = KeyFactory.getInstance("EC")
        .generatePublic(new X509EncodedKeySpec(unb64(call(req("key.publicKey").put("keyId", id)).getString("spki"))));
    Signature v = Signature.getInstance("SHA256withECDSA");
    v.initVerify(pub);
    v.update(msg);
    assertTrue(v.verify(sig), "the JDK verifies the token's DER ECDSA signature");

    assertTrue(call(req("verify").put("keyId", id).put("alg", "ECDSA_SHA256").put("message", b64(msg))
        .put("signature", b64(sig))).getBoolean("valid"));
    assertFalse(call(req("verify").put("keyId", id).put("alg", "ECDSA_SHA256").put("message", b64(new byte[] {1}))
        .put("signature", b64(sig))).getBoolean("valid"));
  }

  @Test
  void rsaSignEncryptAndWrap() throws Exception {
    String sign = generate("RSA_2048", "rsa-sign", null);
    byte[] msg = "rsa message".getBytes(StandardCharsets.UTF_8);
    byte[] sig = unb64(call(req("sign").put("keyId", sign).put("alg", "RSA_PKCS1_SHA256").put("message", b64(msg)))
        .getString("signature"));
    PublicKey pub = KeyFactory.getInstance("RSA")
        .generatePublic(new X509EncodedKeySpec(unb64(call(req("key.publicKey").put("keyId", sign)).getString("spki"))));
    Signature v = Signature.getInstance("SHA256withRSA");
    v.initVerify(pub);
    v.update(msg);
    assertTrue(v.verify(sig));

    String enc = generate("RSA_2048", "rsa-enc", "ENCRYPT_DECRYPT");
    JsonObject ct = call(req("encrypt").put("keyId", enc).put("alg", "RSA_OAEP").put("plaintext", b64(msg)));
    assertNull(ct.getString("iv"));
    assertArrayEquals(msg, unb64(call(req("decrypt").put("keyId", enc).put("alg", "RSA_OAEP")
        .put("ciphertext", ct.getString("ciphertext"))).getString("plaintext")));

    // key.wrap of an exportable RSA key under an AES wrapping key, then key.importWrapped: the
    // imported private key signs, the original public key verifies.
    String kek = generate("AES_256", "kek", "WRAP_UNWRAP");
    String exportable = call(req("key.generate").put("spec", "RSA_2048").put("label", "exp").put("exportable", true))
        .getString("keyId");
    String wrapped = call(req("key.wrap").put("keyId", exportable).put("wrappingKeyId", kek)
        .put("alg", "AES_KEY_WRAP_PAD")).getString("wrapped");
    assertTrue(unb64(wrapped).length > 1000, "a wrapped RSA-2048 private key");
    JsonObject imported = call(req("key.importWrapped").put("wrappingKeyId", kek).put("alg", "AES_KEY_WRAP_PAD")
        .put("wrapped", wrapped).put("spec", "RSA_2048").put("label", "imported"));
    String importedId = imported.getString("keyId");
    assertNotEquals(exportable, importedId);
    assertEquals("RSA_2048", imported.getString("spec"));
    assertFalse(imported.getBoolean("exportable"));
    byte[] sig2 = unb64(call(req("sign").put("keyId", importedId).put("alg", "RSA_PSS_SHA256")
        .put("message", b64(msg))).getString("signature"));
    assertTrue(call(req("verify").put("keyId", exportable).put("alg", "RSA_PSS_SHA256").put("message", b64(msg))
        .put("signature", b64(sig2))).getBoolean("valid"), "the imported key is the same key");

    // a non-exportable key cannot be wrapped by a user
    assertFailure(ErrorCode.NOT_ALLOWED_BY_POLICY,
        req("key.wrap").put("keyId", importedId).put("wrappingKeyId", kek).put("alg", "AES_KEY_WRAP_PAD"));
  }

  /** Import of a wrapped AES key (SoftHSM2 leaves CKA_VALUE_LEN = 0 on unwrap; native-config measures it). */
  @Test
  void aesKeyImportWrapped() {
    byte[] msg = "aes import".getBytes(StandardCharsets.UTF_8);
    String kek = generate("AES_256", "kek-aes", "WRAP_UNWRAP");
    String exportable = call(req("key.generate").put("spec", "AES_256").put("label", "exp-aes").put("exportable", true))
        .getString("keyId");
    String wrapped = call(req("key.wrap").put("keyId", exportable).put("wrappingKeyId", kek)
        .put("alg", "AES_KEY_WRAP_PAD")).getString("wrapped");
    assertEquals(40, unb64(wrapped).length);
    String importedId = call(req("key.importWrapped").put("wrappingKeyId", kek).put("alg", "AES_KEY_WRAP_PAD")
        .put("wrapped", wrapped).put("spec", "AES_256").put("label", "imported-aes")).getString("keyId");
    JsonObject c = call(req("encrypt").put("keyId", exportable).put("alg", "AES_GCM").put("plaintext", b64(msg)));
    assertArrayEquals(msg, unb64(call(req("decrypt").put("keyId", importedId).put("alg", "AES_GCM")
        .put("ciphertext", c.getString("ciphertext")).put("iv", c.getString("iv"))).getString("plaintext")));
  }

  @Test
  void macDigestRandom() throws Exception {
    String id = generate("HMAC_SHA256", "hmac", null);
    byte[] msg = "mac me".getBytes(StandardCharsets.UTF_8);
    String mac = call(req("mac").put("keyId", id).put("alg", "HMAC_SHA256").put("message", b64(msg))).getString("mac");
    assertEquals(32, unb64(mac).length);
    assertTrue(call(req("mac.verify").put("keyId", id).put("alg", "HMAC_SHA256").put("message", b64(msg))
        .put("mac", mac)).getBoolean("valid"));
    assertFalse(call(req("mac.verify").put("keyId", id).put("alg", "HMAC_SHA256").put("message", b64(new byte[3]))
        .put("mac", mac)).getBoolean("valid"));

    byte[] digest = unb64(call(req("digest").put("alg", "SHA384").put("message", b64(msg))).getString("digest"));
    assertArrayEquals(MessageDigest.getInstance("SHA-384").digest(msg), digest);

    byte[] r1 = unb64(call(req("random").put("length", 32)).getString("random"));
    byte[] r2 = unb64(call(req("random").put("length", 32)).getString("random"));
    assertEquals(32, r1.length);
    assertFalse(java.util.Arrays.equals(r1, r2));
  }

  /** Many requests at once: they run in parallel on the worker pool and all succeed. */
  @Test
  void parallelRequestsAllSucceed() throws Exception {
    String id = generate("EC_P256", "parallel", null);
    List<Future<Message<JsonObject>>> replies = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      JsonObject r = i % 2 == 0
          ? req("sign").put("keyId", id).put("alg", "ECDSA_SHA256").put("message", b64(new byte[] {(byte) i}))
          : req("random").put("length", 16);
      replies.add(vertx.eventBus().request(ADDRESS, r));
    }
    Future.all(replies).toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
    for (Future<Message<JsonObject>> f : replies) {
      assertTrue(f.succeeded());
    }
    JsonObject h = call(req("health"));
    assertTrue(h.getInteger("sessionsInUse") <= 1, "sessions are returned to the pool: " + h);
  }

  // ---------------------------------------------------------------- never on an event loop

  /**
   * With a single event loop for everything, a periodic 5 ms timer keeps firing and a cheap request is
   * answered while an RSA-4096 key is being generated: the generation runs on a worker thread.
   */
  @Test
  void tokenWorkNeverBlocksTheEventLoop() throws Exception {
    Vertx single = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1));
    try {
      single.deployVerticle(new AgentVerticle(HSM_ID + "-single", hsm)).toCompletionStage().toCompletableFuture()
          .get(30, TimeUnit.SECONDS);
      String address = Addresses.agent(HSM_ID + "-single");
      AtomicLong ticks = new AtomicLong();
      AtomicLong lastTick = new AtomicLong(System.nanoTime());
      AtomicLong maxGapMs = new AtomicLong();
      AtomicReference<Thread> eventLoop = new AtomicReference<>();
      AtomicLong generatedAt = new AtomicLong();
      AtomicLong cheapAt = new AtomicLong();
      CompletableFuture<JsonObject> generated = new CompletableFuture<>();
      long start = System.nanoTime();
      single.runOnContext(v -> {
        eventLoop.set(Thread.currentThread());
        single.setPeriodic(5, t -> {
          long now = System.nanoTime();
          maxGapMs.accumulateAndGet(TimeUnit.NANOSECONDS.toMillis(now - lastTick.getAndSet(now)), Math::max);
          ticks.incrementAndGet();
        });
        single.eventBus().<JsonObject>request(address,
            req("key.generate").put("spec", "RSA_4096").put("label", "slow"),
            new DeliveryOptions().setSendTimeout(90_000)).onComplete(ar -> {
              generatedAt.set(System.nanoTime());
              if (ar.succeeded()) {
                generated.complete(ar.result().body());
              } else {
                generated.completeExceptionally(ar.cause());
              }
            });
        // sent after the slow one, on the same (only) event loop
        single.setTimer(20, t -> single.eventBus().<JsonObject>request(address, req("random").put("length", 8))
            .onComplete(ar -> cheapAt.set(ar.succeeded() ? System.nanoTime() : -1)));
      });
      JsonObject key = generated.get(90, TimeUnit.SECONDS);
      long tookMs = TimeUnit.NANOSECONDS.toMillis(generatedAt.get() - start);
      long ticksDuring = ticks.get();
      System.out.println("RSA-4096 generation took " + tookMs + " ms; event-loop timer ticks meanwhile: " + ticksDuring
          + ", longest gap " + maxGapMs.get() + " ms");
      assertEquals("RSA_4096", key.getString("spec"));
      // both callbacks run on the one event loop, so their order is exact
      assertTrue(cheapAt.get() > 0 && cheapAt.get() < generatedAt.get(),
          "a cheap request sent later was answered before the RSA-4096 generation finished");
      // the timer fires about every 5 ms; demand a loose fraction of that and no long stall
      assertTrue(ticksDuring >= Math.max(3, tookMs / 5 / 4),
          "event loop timer fired " + ticksDuring + " times during a " + tookMs + " ms generation");
      assertTrue(maxGapMs.get() < Math.max(250, tookMs / 2),
          "longest gap between timer ticks " + maxGapMs.get() + " ms during a " + tookMs + " ms generation");
      assertNotNull(eventLoop.get());
      call(req("key.delete").put("keyId", key.getString("keyId")));
    } finally {
      single.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    }
  }

  // ---------------------------------------------------------------- typed failures

  @Test
  void failuresCarryTheStableCodeAndName() {
    String aes = generate("AES_256", "fail-aes", null);
    String ec = generate("EC_P256", "fail-ec", null);
    int before = hsm.keys().count();

    assertFailure(ErrorCode.UNKNOWN_KEY, req("key.describe").put("keyId", "00".repeat(16)));
    assertFailure(ErrorCode.UNKNOWN_KEY, req("key.delete").put("keyId", "ab".repeat(16)));
    assertFailure(ErrorCode.WRONG_KEY_TYPE, req("sign").put("keyId", aes).put("alg", "ECDSA_SHA256")
        .put("message", b64(new byte[1])));
    assertFailure(ErrorCode.WRONG_KEY_TYPE, req("encrypt").put("keyId", ec).put("alg", "AES_GCM")
        .put("plaintext", b64(new byte[1])));
    assertFailure(ErrorCode.INVALID_PARAMETER, req("decrypt").put("keyId", aes).put("alg", "AES_GCM")
        .put("ciphertext", b64(new byte[32])).put("iv", b64(new byte[11])));
    assertFailure(ErrorCode.INVALID_PARAMETER, req("sign").put("keyId", ec).put("alg", "NOPE")
        .put("message", b64(new byte[1])));
    assertFailure(ErrorCode.INVALID_PARAMETER, req("key.generate").put("spec", "AES_512").put("label", "x"));
    assertFailure(ErrorCode.INVALID_PARAMETER, req("key.generate").put("spec", "EC_P256").put("label", "x")
        .put("usage", "ENCRYPT_DECRYPT"));
    assertFailure(ErrorCode.INVALID_PARAMETER, req("key.generate").put("spec", "AES_256").put("label", "x".repeat(65)));
    assertFailure(ErrorCode.INVALID_PARAMETER, req("key.generate").put("spec", "AES_256").put("label", "tab\there"));
    assertFailure(ErrorCode.INVALID_PARAMETER, req("key.describe").put("keyId", "not-a-key-id"));
    assertFailure(ErrorCode.INVALID_PARAMETER, req("random").put("length", 0));
    assertFailure(ErrorCode.INVALID_PARAMETER, req("random").put("length", 4097));
    assertFailure(ErrorCode.BAD_REQUEST, req("key.generate").put("spec", "AES_256"));
    assertFailure(ErrorCode.BAD_REQUEST, req("key.generate").put("spec", "AES_256").put("label", 5));
    assertFailure(ErrorCode.BAD_REQUEST, req("key.generate").put("spec", "AES_256").put("label", "x")
        .put("exportable", "yes"));
    assertFailure(ErrorCode.BAD_REQUEST, req("random").put("length", "32"));
    assertFailure(ErrorCode.BAD_REQUEST, req("random").put("length", 1.5));
    assertFailure(ErrorCode.BAD_REQUEST, req("digest").put("alg", "SHA256").put("message", "not base64!"));
    assertFailure(ErrorCode.BAD_REQUEST, new JsonObject().put("length", 3));
    assertFailure(ErrorCode.BAD_REQUEST, new JsonObject().put("op", 7));
    assertFailure(ErrorCode.UNKNOWN_OPERATION, req("key.destroyEverything"));
    assertFailure(ErrorCode.INPUT_TOO_LARGE, req("digest").put("alg", "SHA256")
        .put("message", b64(new byte[64 * 1024 + 1])));
    assertFailure(ErrorCode.INPUT_TOO_LARGE, req("sign").put("keyId", ec).put("alg", "ECDSA_SHA256")
        .put("message", b64(new byte[200 * 1024])));

    assertEquals(before, hsm.keys().count(), "no failed request created or deleted a key");
  }

  @Test
  void largestAllowedInputIsAccepted() {
    byte[] max = new byte[64 * 1024];
    byte[] digest = unb64(call(req("digest").put("alg", "SHA256").put("message", b64(max))).getString("digest"));
    assertEquals(32, digest.length);
  }

  @Test
  void nonJsonBodiesAreBadRequests() {
    for (Object body : new Object[] {"{\"op\":\"health\"}", Buffer.buffer("health"), 42, new JsonArray().add("health"),
        null}) {
      ReplyException e = failureOf(body);
      assertEquals(ErrorCode.BAD_REQUEST.code(), e.failureCode(), "body " + body + ": " + e.getMessage());
      assertTrue(e.getMessage().startsWith("BAD_REQUEST: "), e.getMessage());
    }
  }

  // ---------------------------------------------------------------- helpers

  private static JsonObject req(String op) {
    return new JsonObject().put("op", op);
  }

  private String generate(String spec, String label, String usage) {
    JsonObject r = req("key.generate").put("spec", spec).put("label", label);
    if (usage != null) {
      r.put("usage", usage);
    }
    return call(r).getString("keyId");
  }

  private JsonObject call(JsonObject body) {
    try {
      return vertx.eventBus().<JsonObject>request(ADDRESS, body, new DeliveryOptions().setSendTimeout(60_000))
          .toCompletionStage().toCompletableFuture().get(70, TimeUnit.SECONDS).body();
    } catch (ExecutionException e) {
      throw new AssertionError("request " + body.getString("op") + " failed: " + e.getCause(), e.getCause());
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private ReplyException failureOf(Object body) {
    try {
      Message<Object> m = vertx.eventBus().request(ADDRESS, body, new DeliveryOptions().setSendTimeout(10_000))
          .toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
      return fail("expected a failure, got " + m.body());
    } catch (ExecutionException e) {
      if (!(e.getCause() instanceof ReplyException)) {
        throw new AssertionError("not a ReplyException", e.getCause());
      }
      ReplyException re = (ReplyException) e.getCause();
      assertEquals(ReplyFailure.RECIPIENT_FAILURE, re.failureType(), "failure type for " + body + ": " + re);
      return re;
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private ReplyException assertFailure(ErrorCode code, JsonObject body) {
    ReplyException e = failureOf(body);
    assertEquals(code.code(), e.failureCode(), "failure code for " + body.encode().substring(0,
        Math.min(120, body.encode().length())) + ": " + e.getMessage());
    assertTrue(e.getMessage().startsWith(code.name() + ": "), e.getMessage());
    assertFalse(e.getMessage().contains("\n"), "one-line message");
    return e;
  }

  private static boolean containsKey(JsonArray keys, String id) {
    for (int i = 0; i < keys.size(); i++) {
      if (id.equals(keys.getJsonObject(i).getString("keyId"))) {
        return true;
      }
    }
    return false;
  }

  private static String b64(byte[] b) {
    return B64.encodeToString(b);
  }

  private static byte[] unb64(String s) {
    return UNB64.decode(s);
  }
}
