package io.hsmbridge.bridge;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.Ciphertext;
import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.client.KeyInfo;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import javax.crypto.Cipher;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A one-HSM cluster in this process, started as {@link NodeMain} starts an HSM host (agent, Raft group of
 * one, users, the front door and its TLS client endpoint) over a real SoftHSM2 token, activated and used
 * by a logged-in crypto user through the client endpoint on loopback with the client SDK ({@link Hsm}) and
 * with raw frames. Every rejected request must leave the token exactly as it was.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class BridgeNodeTest {
  private static final String HSM_ID = "bridge-it";
  private static final byte[] MSG = "the quick brown fox".getBytes(StandardCharsets.UTF_8);

  private NodeMain.Running node;
  private TestNodes.Token token;
  private TestNodes.Pki pki;
  private int port;
  /** The crypto user's session: raw requests carry it as the client SDK does. */
  private String session;
  private Path tokenDir;
  private BridgeClient client;
  private Hsm hsm;

  @BeforeAll
  void startNode(@TempDir Path dir) throws Exception {
    token = TestNodes.Token.fresh("bridge");
    pki = TestNodes.Pki.in(dir.resolve("pki"));
    Path state = dir.resolve("state");
    node = NodeMain.start(TestNodes.config(dir,
        TestNodes.nodeProperties(HSM_ID, token.label(), token.userPin(), token.soPin(), state, pki)));
    port = TestNodes.endpoint(state).getInteger("port");
    tokenDir = TestNodes.tokenDirectory(SoftHsmFixture.root().resolve("tokens"), token.label());
    client = BridgeClient.connect("127.0.0.1", port, BridgeClient.DEFAULT_TIMEOUT, pki.clientTls());
    hsm = new Hsm(client);
    TestNodes.CryptoUser user = TestNodes.activate(hsm);
    session = hsm.login(user.name(), user.password()).token();
  }

  @AfterAll
  void stopNode() {
    if (client != null) {
      client.close();
    }
    if (node != null) {
      node.stop();
    }
  }

  // ============================================================== every operation round-trips

  @Test
  void health() {
    JsonObject h = hsm.health();
    assertEquals("OK", h.getString("status"));
    assertEquals(HSM_ID, h.getString("hsmId"));
    assertEquals(token.label(), h.getString("token"));
    assertTrue(h.getString("serial").matches("[0-9a-f]{16}"), "the token's serial: " + h.getString("serial"));
    assertEquals("softhsm2", h.getString("profile"));
    assertTrue(h.getInteger("sessionsMax") > 0);
    JsonObject withId = client.request(new JsonObject().put("op", "health").put("requestId", "abc-123"));
    assertEquals("abc-123", withId.getString("requestId"));
  }

  @Test
  void keyLifecycle() {
    long before = TestNodes.objectFilesAtRest(tokenDir);
    KeyInfo k = hsm.generateKey(KeySpec.AES_256, "lifecycle", null, false);
    long withKey = TestNodes.objectFilesAtRest(tokenDir);
    assertTrue(withKey > before, "the key is on the token: " + before + " -> " + withKey + " object files");
    assertTrue(k.keyId().matches("[0-9a-f]{32}"));
    assertEquals("AES_256", k.spec());
    assertEquals("AES", k.family());
    assertEquals("ENCRYPT_DECRYPT", k.usage());
    assertFalse(k.exportable());
    assertTrue(k.sensitive());
    assertEquals(k, hsm.describe(k.keyId()));
    assertEquals(List.of(k), hsm.listKeys("lifecycle"));
    assertTrue(hsm.listKeys().contains(k));

    KeyInfo renamed = hsm.setLabel(k.keyId(), "lifecycle renamed");
    assertEquals("lifecycle renamed", renamed.label());
    assertEquals(renamed, hsm.describe(k.keyId()));
    assertTrue(hsm.listKeys("lifecycle").isEmpty());

    hsm.delete(k.keyId());
    // The key object and what the cluster keeps beside it (its owner record) are gone, nothing else.
    assertEquals(before, TestNodes.objectFilesAtRest(tokenDir), "the key's token objects are gone");
    assertCode(ErrorCode.UNKNOWN_KEY, () -> hsm.describe(k.keyId()));
    assertFalse(hsm.listKeys().stream().anyMatch(x -> x.keyId().equals(k.keyId())));
  }

  @Test
  void aesGcmAndCbc() {
    for (KeySpec spec : new KeySpec[] {KeySpec.AES_128, KeySpec.AES_256}) {
      String id = hsm.generateKey(spec, "aes " + spec, KeyUsage.ENCRYPT_DECRYPT, false).keyId();
      byte[] aad = "aad".getBytes(StandardCharsets.UTF_8);
      Ciphertext gcm = hsm.encrypt(id, "AES_GCM", MSG, aad);
      assertEquals(12, gcm.iv().length);
      assertEquals(MSG.length + 16, gcm.ciphertext().length);
      assertArrayEquals(MSG, hsm.decrypt(id, "AES_GCM", gcm, aad));
      assertNotEquals(gcm, hsm.encrypt(id, "AES_GCM", MSG, aad), "a fresh IV every time");
      assertCode(ErrorCode.CRYPTO_FAILURE, () -> hsm.decrypt(id, "AES_GCM", gcm, "other".getBytes()));

      Ciphertext cbc = hsm.encrypt(id, "AES_CBC_PAD", MSG, null);
      assertEquals(16, cbc.iv().length);
      assertEquals(32, cbc.ciphertext().length);
      assertArrayEquals(MSG, hsm.decrypt(id, "AES_CBC_PAD", cbc, null));
      byte[] empty = hsm.decrypt(id, "AES_GCM", hsm.encrypt(id, "AES_GCM", new byte[0], null), null);
      assertEquals(0, empty.length);
    }
  }

  @Test
  void largestAllowedPlaintextRoundTrips() {
    String id = hsm.generateKey(KeySpec.AES_256, "large", null, false).keyId();
    byte[] big = new byte[64 * 1024];
    Arrays.fill(big, (byte) 7);
    Ciphertext c = hsm.encrypt(id, "AES_GCM", big, null);
    assertArrayEquals(big, hsm.decrypt(id, "AES_GCM", c, null));
    Ciphertext cbc = hsm.encrypt(id, "AES_CBC_PAD", big, null);
    assertEquals(64 * 1024 + 16, cbc.ciphertext().length);
    assertArrayEquals(big, hsm.decrypt(id, "AES_CBC_PAD", cbc, null));
  }

  @Test
  void rsaSignaturesVerifiedByTheJdk() throws Exception {
    KeyInfo k = hsm.generateKey(KeySpec.RSA_2048, "rsa sign", null, false);
    assertEquals("SIGN_VERIFY", k.usage());
    PublicKey pub = KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(hsm.publicKey(k.keyId())));
    assertEquals(2048, ((RSAPublicKey) pub).getModulus().bitLength());
    for (String hash : new String[] {"256", "384", "512"}) {
      byte[] sig = hsm.sign(k.keyId(), "RSA_PKCS1_SHA" + hash, MSG);
      Signature v = Signature.getInstance("SHA" + hash + "withRSA");
      v.initVerify(pub);
      v.update(MSG);
      assertTrue(v.verify(sig), "PKCS#1 v1.5 SHA" + hash);
      assertTrue(hsm.verify(k.keyId(), "RSA_PKCS1_SHA" + hash, MSG, sig));

      byte[] pss = hsm.sign(k.keyId(), "RSA_PSS_SHA" + hash, MSG);
      Signature p = Signature.getInstance("RSASSA-PSS");
      String jdkHash = "SHA-" + hash;
      p.setParameter(new PSSParameterSpec(jdkHash, "MGF1", new MGF1ParameterSpec(jdkHash),
          Integer.parseInt(hash) / 8, 1));
      p.initVerify(pub);
      p.update(MSG);
      assertTrue(p.verify(pss), "PSS SHA" + hash);
      assertTrue(hsm.verify(k.keyId(), "RSA_PSS_SHA" + hash, MSG, pss));
    }
    byte[] sig = hsm.sign(k.keyId(), "RSA_PKCS1_SHA256", MSG);
    sig[10] ^= 1;
    assertFalse(hsm.verify(k.keyId(), "RSA_PKCS1_SHA256", MSG, sig), "a bad signature is false, not an error");
  }

  @Test
  void ecdsaAndNeverExtractableEd25519SignaturesVerifiedByTheJdk() throws Exception {
    Object[][] cases = {
        {KeySpec.EC_P256, "ECDSA_SHA256", "SHA256withECDSA", 256},
        {KeySpec.EC_P384, "ECDSA_SHA384", "SHA384withECDSA", 384},
    };
    for (Object[] c : cases) {
      KeyInfo k = hsm.generateKey((KeySpec) c[0], "ec " + c[0], null, false);
      assertEquals("EC", k.family());
      PublicKey pub = KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(hsm.publicKey(k.keyId())));
      assertEquals((int) c[3], ((ECPublicKey) pub).getParams().getCurve().getField().getFieldSize());
      byte[] sig = hsm.sign(k.keyId(), (String) c[1], MSG);
      Signature v = Signature.getInstance((String) c[2]);
      v.initVerify(pub);
      v.update(MSG);
      assertTrue(v.verify(sig), c[1] + " verified by the JDK");
      assertTrue(hsm.verify(k.keyId(), (String) c[1], MSG, sig));
      // the signature does not verify for another message
      assertFalse(hsm.verify(k.keyId(), (String) c[1], "other".getBytes(), sig));
    }
    // ECDSA with another hash on P-256 works too
    KeyInfo p256 = hsm.generateKey(KeySpec.EC_P256, "ec 512", null, false);
    byte[] sig = hsm.sign(p256.keyId(), "ECDSA_SHA512", MSG);
    Signature v = Signature.getInstance("SHA512withECDSA");
    v.initVerify(KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(hsm.publicKey(p256.keyId()))));
    v.update(MSG);
    assertTrue(v.verify(sig));

    // A key is created in a cluster by wrapping it under the cluster key for the Raft log, a one-HSM cluster
    // too, and SoftHSM2 2.6.1 cannot wrap Ed25519 private keys: refused with a reason, nothing left behind.
    HsmBridgeException ed = assertRejected(ErrorCode.NOT_ALLOWED_BY_POLICY,
        () -> hsm.generateKey(KeySpec.ED25519, "ed", null, false), "Ed25519");
    assertTrue(ed.getMessage().contains("ED25519"), ed.getMessage());
    assertTrue(hsm.listKeys("ed").isEmpty());
    // Never extractable, it is not replicated: a one-HSM cluster makes it, and it lives on this HSM only.
    JsonObject made = hsm.send(op("key.generate").put("spec", "ED25519").put("label", "ed local")
        .put("extractable", false));
    assertEquals(Boolean.FALSE, made.getBoolean("replicated"), made.encode());
    KeyInfo local = KeyInfo.fromJson(made);
    assertEquals("EDWARDS", local.family());
    PublicKey edPub = KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(hsm.publicKey(local.keyId())));
    byte[] edSig = hsm.sign(local.keyId(), "ED25519", MSG);
    assertEquals(64, edSig.length);
    Signature ev = Signature.getInstance("Ed25519");
    ev.initVerify(edPub);
    ev.update(MSG);
    assertTrue(ev.verify(edSig), "Ed25519 verified by the JDK");
    assertTrue(hsm.verify(local.keyId(), "ED25519", MSG, edSig));
  }

  @Test
  void rsaOaepBothWays() throws Exception {
    KeyInfo k = hsm.generateKey(KeySpec.RSA_2048, "rsa enc", KeyUsage.ENCRYPT_DECRYPT, false);
    Ciphertext c = hsm.encrypt(k.keyId(), "RSA_OAEP", MSG, null);
    assertNull(c.iv());
    assertEquals(256, c.ciphertext().length);
    assertArrayEquals(MSG, hsm.decrypt(k.keyId(), "RSA_OAEP", c, null));

    PublicKey pub = KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(hsm.publicKey(k.keyId())));
    Cipher jdk = Cipher.getInstance("RSA/ECB/OAEPWithSHA-1AndMGF1Padding");
    jdk.init(Cipher.ENCRYPT_MODE, pub);
    assertArrayEquals(MSG, hsm.decrypt(k.keyId(), "RSA_OAEP", jdk.doFinal(MSG), null, null),
        "the HSM decrypts what the JDK encrypted with the exported public key");
    byte[] bad = jdk.doFinal(MSG);
    bad[5] ^= 1;
    assertCode(ErrorCode.CRYPTO_FAILURE, () -> hsm.decrypt(k.keyId(), "RSA_OAEP", bad, null, null));
  }

  @Test
  void hmacDigestRandom() throws Exception {
    KeyInfo k = hsm.generateKey(KeySpec.HMAC_SHA256, "hmac", null, false);
    assertEquals("HMAC", k.family());
    // Only HMAC_SHA256: the one HMAC key spec is 256 bits, and SoftHSM2 refuses HMAC_SHA384/512 with a
    // key shorter than the hash (CKR_KEY_SIZE_RANGE); see the report.
    byte[] mac = hsm.mac(k.keyId(), "HMAC_SHA256", MSG);
    assertEquals(32, mac.length);
    assertArrayEquals(mac, hsm.mac(k.keyId(), "HMAC_SHA256", MSG), "deterministic");
    assertTrue(hsm.macVerify(k.keyId(), "HMAC_SHA256", MSG, mac));
    assertFalse(hsm.macVerify(k.keyId(), "HMAC_SHA256", "other".getBytes(StandardCharsets.UTF_8), mac));
    mac[0] ^= 1;
    assertFalse(hsm.macVerify(k.keyId(), "HMAC_SHA256", MSG, mac));
    for (String alg : new String[] {"SHA256", "SHA384", "SHA512"}) {
      assertArrayEquals(MessageDigest.getInstance("SHA-" + alg.substring(3)).digest(MSG), hsm.digest(alg, MSG));
    }
    assertEquals(1, hsm.random(1).length);
    byte[] r = hsm.random(4096);
    assertEquals(4096, r.length);
    assertFalse(Arrays.equals(r, hsm.random(4096)));
  }

  @Test
  void wrapAndImport() {
    KeyInfo kek = hsm.generateKey(KeySpec.AES_256, "kek", KeyUsage.WRAP_UNWRAP, false);
    KeyInfo exportable = hsm.generateKey(KeySpec.RSA_2048, "exportable rsa", null, true);
    assertTrue(exportable.exportable());
    assertTrue(exportable.extractable());
    byte[] wrapped = hsm.wrap(exportable.keyId(), kek.keyId(), "AES_KEY_WRAP_PAD");
    assertTrue(wrapped.length > 1100 && wrapped.length < 1400, "RSA-2048 private key under KWP: " + wrapped.length);
    KeyInfo imported = hsm.importWrapped(kek.keyId(), "AES_KEY_WRAP_PAD", wrapped, KeySpec.RSA_2048, "imported rsa",
        null, false);
    assertEquals("RSA_2048", imported.spec());
    assertFalse(imported.exportable());
    assertArrayEquals(hsm.publicKey(exportable.keyId()), hsm.publicKey(imported.keyId()), "same key pair");
    byte[] sig = hsm.sign(imported.keyId(), "RSA_PSS_SHA256", MSG);
    assertTrue(hsm.verify(exportable.keyId(), "RSA_PSS_SHA256", MSG, sig));

    // an exportable AES key wrapped under an RSA wrapping key (RSA-OAEP with the public half)
    KeyInfo rsaKek = hsm.generateKey(KeySpec.RSA_2048, "rsa kek", KeyUsage.WRAP_UNWRAP, false);
    KeyInfo aes = hsm.generateKey(KeySpec.AES_256, "exportable aes", null, true);
    assertEquals(256, hsm.wrap(aes.keyId(), rsaKek.keyId(), "RSA_OAEP").length);
    assertEquals(40, hsm.wrap(aes.keyId(), kek.keyId(), "AES_KEY_WRAP_PAD").length);

    // the imported key is not exportable: refused by policy, and nothing changes
    assertRejected(ErrorCode.NOT_ALLOWED_BY_POLICY, () -> hsm.wrap(imported.keyId(), kek.keyId(), "AES_KEY_WRAP_PAD"));
    // a tampered blob does not unwrap, and leaves nothing behind
    byte[] bad = wrapped.clone();
    bad[bad.length / 2] ^= 1;
    Snapshot before = snapshot();
    assertThrows(HsmBridgeException.class,
        () -> hsm.importWrapped(kek.keyId(), "AES_KEY_WRAP_PAD", bad, KeySpec.RSA_2048, "bad", null, false));
    assertEquals(before, snapshot());
  }

  /** A blob that does not unwrap is the opaque CRYPTO_FAILURE protocol.md promises, and leaves nothing. */
  @Test
  void tamperedWrappedBlobIsAnOpaqueCryptoFailure() {
    KeyInfo kek = hsm.generateKey(KeySpec.AES_256, "kek tamper", KeyUsage.WRAP_UNWRAP, false);
    KeyInfo exportable = hsm.generateKey(KeySpec.AES_256, "exportable tamper", null, true);
    byte[] bad = hsm.wrap(exportable.keyId(), kek.keyId(), "AES_KEY_WRAP_PAD");
    bad[bad.length / 2] ^= 1;
    HsmBridgeException e = assertRejected(ErrorCode.CRYPTO_FAILURE,
        () -> hsm.importWrapped(kek.keyId(), "AES_KEY_WRAP_PAD", bad, KeySpec.AES_256, "bad", null, false), "");
    assertEquals("CRYPTO_FAILURE: " + ErrorCode.CRYPTO_FAILURE.summary(), e.getMessage());
  }

  @Test
  void pipelinedRequestsFromSeveralThreads() throws Exception {
    String ec = hsm.generateKey(KeySpec.EC_P256, "pipelined", null, false).keyId();
    PublicKey pub = KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(hsm.publicKey(ec)));
    List<Thread> threads = new java.util.ArrayList<>();
    java.util.concurrent.ConcurrentLinkedQueue<Throwable> errors = new java.util.concurrent.ConcurrentLinkedQueue<>();
    for (int t = 0; t < 4; t++) {
      int id = t;
      Thread th = new Thread(() -> {
        try {
          for (int i = 0; i < 50; i++) {
            byte[] m = ("t" + id + "-" + i).getBytes(StandardCharsets.UTF_8);
            byte[] sig = hsm.sign(ec, "ECDSA_SHA256", m);
            Signature v = Signature.getInstance("SHA256withECDSA");
            v.initVerify(pub);
            v.update(m);
            if (!v.verify(sig)) {
              throw new AssertionError("bad signature for " + new String(m, StandardCharsets.UTF_8));
            }
          }
        } catch (Throwable e) {
          errors.add(e);
        }
      });
      threads.add(th);
      th.start();
    }
    for (Thread th : threads) {
      th.join(60_000);
    }
    assertTrue(errors.isEmpty(), () -> "errors: " + errors);
  }

  // ============================================================== rejected, and nothing changed

  @Test
  void unknownKey() {
    String nobody = "0123456789abcdef0123456789abcdef";
    assertRejected(ErrorCode.UNKNOWN_KEY, () -> hsm.describe(nobody));
    assertRejected(ErrorCode.UNKNOWN_KEY, () -> hsm.delete(nobody));
    assertRejected(ErrorCode.UNKNOWN_KEY, () -> hsm.setLabel(nobody, "x"));
    assertRejected(ErrorCode.UNKNOWN_KEY, () -> hsm.sign(nobody, "ECDSA_SHA256", MSG));
    assertRejected(ErrorCode.UNKNOWN_KEY, () -> hsm.encrypt(nobody, "AES_GCM", MSG, null));
    assertRejected(ErrorCode.UNKNOWN_KEY, () -> hsm.publicKey(nobody));
  }

  @Test
  void wrongKeyType() {
    String aes = hsm.generateKey(KeySpec.AES_256, "wrong type aes", null, false).keyId();
    String ec = hsm.generateKey(KeySpec.EC_P256, "wrong type ec", null, false).keyId();
    String hmac = hsm.generateKey(KeySpec.HMAC_SHA256, "wrong type hmac", null, false).keyId();
    String wrapKey = hsm.generateKey(KeySpec.AES_256, "wrong type kek", KeyUsage.WRAP_UNWRAP, false).keyId();
    assertRejected(ErrorCode.WRONG_KEY_TYPE, () -> hsm.sign(aes, "ECDSA_SHA256", MSG));
    assertRejected(ErrorCode.WRONG_KEY_TYPE, () -> hsm.sign(ec, "RSA_PKCS1_SHA256", MSG));
    assertRejected(ErrorCode.WRONG_KEY_TYPE, () -> hsm.encrypt(ec, "AES_GCM", MSG, null));
    assertRejected(ErrorCode.WRONG_KEY_TYPE, () -> hsm.mac(aes, "HMAC_SHA256", MSG));
    assertRejected(ErrorCode.WRONG_KEY_TYPE, () -> hsm.encrypt(hmac, "AES_GCM", MSG, null));
    assertRejected(ErrorCode.WRONG_KEY_TYPE, () -> hsm.encrypt(wrapKey, "AES_GCM", MSG, null),
        "a WRAP_UNWRAP key does not encrypt data");
    assertRejected(ErrorCode.WRONG_KEY_TYPE, () -> hsm.wrap(ec, aes, "AES_KEY_WRAP_PAD"),
        "an ENCRYPT_DECRYPT key does not wrap");
  }

  @Test
  void badIvAndParameters() {
    String aes = hsm.generateKey(KeySpec.AES_256, "bad iv", null, false).keyId();
    Ciphertext c = hsm.encrypt(aes, "AES_GCM", MSG, null);
    assertRejected(ErrorCode.INVALID_PARAMETER, () -> hsm.decrypt(aes, "AES_GCM", c.ciphertext(), new byte[11], null));
    assertRejected(ErrorCode.INVALID_PARAMETER, () -> hsm.decrypt(aes, "AES_GCM", c.ciphertext(), new byte[16], null));
    assertRejected(ErrorCode.INVALID_PARAMETER, () -> hsm.decrypt(aes, "AES_GCM", c.ciphertext(), null, null));
    assertRejected(ErrorCode.INVALID_PARAMETER, () -> hsm.decrypt(aes, "AES_CBC_PAD", new byte[32], new byte[12], null));
    assertRejected(ErrorCode.INVALID_PARAMETER, () -> hsm.encrypt(aes, "AES_CBC_PAD", MSG, new byte[4]),
        "aad only with GCM");
    assertRejected(ErrorCode.INVALID_PARAMETER, () -> hsm.encrypt(aes, "AES_XTS", MSG, null));
    assertRejected(ErrorCode.INVALID_PARAMETER, () -> hsm.digest("MD5", MSG));
    assertRejected(ErrorCode.INVALID_PARAMETER, () -> hsm.random(0));
    assertRejected(ErrorCode.INVALID_PARAMETER, () -> hsm.random(4097));
    assertRejected(ErrorCode.INVALID_PARAMETER, () -> hsm.generateKey(KeySpec.EC_P256, "x", KeyUsage.WRAP_UNWRAP, false));
    assertRejected(ErrorCode.INVALID_PARAMETER,
        () -> client.request(new JsonObject().put("op", "key.generate").put("spec", "RSA_1024").put("label", "x")));
  }

  @Test
  void oversizedInput() {
    String aes = hsm.generateKey(KeySpec.AES_256, "oversized", null, false).keyId();
    String ec = hsm.generateKey(KeySpec.EC_P256, "oversized ec", null, false).keyId();
    byte[] tooBig = new byte[64 * 1024 + 1];
    assertRejected(ErrorCode.INPUT_TOO_LARGE, () -> hsm.encrypt(aes, "AES_GCM", tooBig, null));
    assertRejected(ErrorCode.INPUT_TOO_LARGE, () -> hsm.encrypt(aes, "AES_GCM", new byte[64 * 1024 + 2], null));
    assertRejected(ErrorCode.INPUT_TOO_LARGE, () -> hsm.encrypt(aes, "AES_GCM", MSG, tooBig));
    assertRejected(ErrorCode.INPUT_TOO_LARGE, () -> hsm.sign(ec, "ECDSA_SHA256", tooBig));
    assertRejected(ErrorCode.INPUT_TOO_LARGE, () -> hsm.digest("SHA256", tooBig));
    assertRejected(ErrorCode.INPUT_TOO_LARGE, () -> hsm.decrypt(aes, "AES_GCM", new byte[64 * 1024 + 513], new byte[12],
        null));
    assertRejected(ErrorCode.INPUT_TOO_LARGE, () -> hsm.encrypt(aes, "AES_GCM", new byte[1024 * 1024], null));
  }

  @Test
  void malformedRequests() {
    String aes = hsm.generateKey(KeySpec.AES_256, "malformed", null, false).keyId();
    assertRejected(ErrorCode.BAD_REQUEST, () -> raw(new JsonObject()), "missing op");
    assertRejected(ErrorCode.BAD_REQUEST, () -> raw(new JsonObject().put("spec", "AES_256").put("label", "x")),
        "missing op on a would-be key.generate");
    assertRejected(ErrorCode.BAD_REQUEST, () -> raw(new JsonObject().put("op", 17)), "op of the wrong type");
    assertRejected(ErrorCode.UNKNOWN_OPERATION, () -> raw(op("key.generateMany")));
    assertRejected(ErrorCode.UNKNOWN_OPERATION, () -> raw(op("KEY.GENERATE")));
    // a field of the wrong JSON type
    assertRejected(ErrorCode.BAD_REQUEST, () -> raw(op("key.generate").put("spec", "AES_256").put("label", 42)));
    assertRejected(ErrorCode.BAD_REQUEST, () -> raw(op("key.generate").put("spec", 256).put("label", "x")));
    assertRejected(ErrorCode.BAD_REQUEST,
        () -> raw(op("key.generate").put("spec", "AES_256").put("label", "x").put("exportable", "true")));
    assertRejected(ErrorCode.BAD_REQUEST,
        () -> raw(op("key.generate").put("spec", "AES_256").put("label", new JsonArray().add("x"))));
    assertRejected(ErrorCode.BAD_REQUEST, () -> raw(op("encrypt").put("keyId", aes).put("alg", "AES_GCM")
        .put("plaintext", new JsonObject())));
    assertRejected(ErrorCode.BAD_REQUEST, () -> raw(op("random").put("length", "16")));
    assertRejected(ErrorCode.BAD_REQUEST, () -> raw(op("random").put("length", 16.5)));
    assertRejected(ErrorCode.BAD_REQUEST, () -> raw(op("health").put("requestId", 5)));
    assertRejected(ErrorCode.UNKNOWN_OPERATION, () -> raw(op("describe").put("keyId", 5)),
        "an unknown op is reported before its fields are looked at");
    // bad base64
    assertRejected(ErrorCode.BAD_REQUEST, () -> raw(op("encrypt").put("keyId", aes).put("alg", "AES_GCM")
        .put("plaintext", "%%% not base64 %%%")));
    assertRejected(ErrorCode.BAD_REQUEST, () -> raw(op("digest").put("alg", "SHA256").put("message", "YWJj-_")),
        "base64url is not standard base64");
    assertRejected(ErrorCode.BAD_REQUEST, () -> raw(op("digest").put("alg", "SHA256")), "missing message");
    // bad key id
    assertRejected(ErrorCode.INVALID_PARAMETER, () -> raw(op("key.describe").put("keyId", "xyz")));
    assertRejected(ErrorCode.INVALID_PARAMETER, () -> raw(op("key.delete").put("keyId", aes + "00")));
    assertRejected(ErrorCode.INVALID_PARAMETER, () -> raw(op("key.delete").put("keyId", "../" + aes.substring(3))));
    assertRejected(ErrorCode.BAD_REQUEST, () -> raw(op("key.describe")), "missing keyId");
    // labels
    assertRejected(ErrorCode.BAD_REQUEST, () -> raw(op("key.generate").put("spec", "AES_256")), "missing label");
    assertRejected(ErrorCode.INVALID_PARAMETER,
        () -> raw(op("key.generate").put("spec", "AES_256").put("label", "x".repeat(65))), "label too long");
    assertRejected(ErrorCode.INVALID_PARAMETER,
        () -> raw(op("key.generate").put("spec", "AES_256").put("label", "")), "empty label");
    assertRejected(ErrorCode.INVALID_PARAMETER,
        () -> raw(op("key.generate").put("spec", "AES_256").put("label", "caf\u00e9")), "non-ASCII label");
    assertRejected(ErrorCode.INVALID_PARAMETER,
        () -> raw(op("key.setLabel").put("keyId", aes).put("label", "line\nbreak")), "control character");
    assertRejected(ErrorCode.INVALID_PARAMETER,
        () -> raw(op("health").put("requestId", "r".repeat(65))), "requestId too long");
    assertEquals("malformed", hsm.describe(aes).label(), "the key kept its label");
    // the largest label is fine
    assertEquals("y".repeat(64), hsm.setLabel(aes, "y".repeat(64)).label());
  }

  /** Frames that are not requests at all, on a bare socket. */
  @Test
  void rawFramesWhoseBodyIsNotAJsonObject() throws Exception {
    Snapshot before = snapshot();
    try (TestNodes.RawConnection raw = new TestNodes.RawConnection(port, pki.dir().resolve("ca").resolve("ca.pem"))) {
      Object[] bodies = {"{\"op\":\"key.generate\",\"spec\":\"AES_256\",\"label\":\"str\"}",
          new JsonArray().add("key.generate"), 42, true, null};
      int n = 0;
      for (Object body : bodies) {
        String reply = "raw-reply-" + n++;
        raw.send(TestNodes.RawConnection.sendFrame(Addresses.BRIDGE_REQUEST, reply, body));
        JsonObject err = raw.read();
        assertNotNull(err, "the bridge answers, for body " + body);
        assertEquals("err", err.getString("type"), err.encode());
        assertEquals(reply, err.getString("address"), err.encode());
        assertEquals(ErrorCode.BAD_REQUEST.code(), err.getInteger("failureCode"), err.encode());
        assertTrue(err.getString("message").startsWith("BAD_REQUEST: "), err.encode());
      }
      // the same connection still serves a proper request
      raw.send(TestNodes.RawConnection.sendFrame(Addresses.BRIDGE_REQUEST, "ok", new JsonObject().put("op", "health")));
      JsonObject ok = raw.read();
      assertEquals("message", ok.getString("type"), ok.encode());
      assertEquals("OK", ok.getJsonObject("body").getString("status"));
    }
    assertEquals(before, snapshot());
  }

  /**
   * A frame that is not JSON: the endpoint answers {@code invalid_frame} and closes the connection (the
   * stream cannot be trusted to be in step after it); the node and other connections keep serving.
   */
  @Test
  void aFrameThatIsNotJsonClosesOnlyItsConnection() throws Exception {
    Snapshot before = snapshot();
    try (TestNodes.RawConnection raw = new TestNodes.RawConnection(port, pki.dir().resolve("ca").resolve("ca.pem"))) {
      raw.sendBytes("this is not json".getBytes(StandardCharsets.UTF_8));
      JsonObject answer = raw.read();
      assertNotNull(answer);
      assertEquals("err", answer.getString("type"), answer.encode());
      assertEquals("invalid_frame", answer.getString("message"), answer.encode());
      assertEquals(ErrorCode.BAD_REQUEST.code(), answer.getInteger("failureCode"), answer.encode());
      assertNull(raw.readWithin(2000), "the connection is closed after it");
    }
    assertEquals("OK", hsm.health().getString("status"), "the node still serves");
    assertEquals(before, snapshot());
  }

  /** Only sends to hsmbridge.v1.request get through: the agents and everything else stay unreachable. */
  @Test
  void nonPermittedAddressesAreRefused() throws Exception {
    Snapshot before = snapshot();
    JsonObject generate = op("key.generate").put("spec", "AES_256").put("label", "sneaky");
    String[] forbidden = {Addresses.agent(HSM_ID), Addresses.PREFIX + "admin", "__vertx.reply.1", "anything"};
    try (TestNodes.RawConnection raw = new TestNodes.RawConnection(port, pki.dir().resolve("ca").resolve("ca.pem"))) {
      for (String address : forbidden) {
        raw.send(TestNodes.RawConnection.sendFrame(address, "denied-" + address, generate));
        JsonObject err = raw.read();
        assertNotNull(err);
        assertEquals("err", err.getString("type"), err.encode());
        assertEquals("access_denied", err.getString("message"), err.encode());

        raw.send(new JsonObject().put("type", "publish").put("address", address).put("body", generate));
        err = raw.read();
        assertEquals("err", err.getString("type"), err.encode());
        assertEquals("access_denied", err.getString("message"), err.encode());
      }
      // nobody may listen in on the bus either: not on the agent's address, not on the request address
      for (String address : new String[] {Addresses.agent(HSM_ID), Addresses.BRIDGE_REQUEST}) {
        raw.send(new JsonObject().put("type", "register").put("address", address));
        JsonObject err = raw.read();
        assertEquals("err", err.getString("type"), err.encode());
        assertEquals("access_denied", err.getString("message"), err.encode());
      }
      // a request on the permitted address is not seen by a would-be listener: nothing else arrives
      raw.send(TestNodes.RawConnection.sendFrame(Addresses.BRIDGE_REQUEST, "ok", op("health")));
      JsonObject ok = raw.read();
      assertEquals("message", ok.getString("type"), ok.encode());
      assertEquals("ok", ok.getString("address"));
      hsm.random(8);
      assertNull(raw.readWithin(500), "no traffic of other clients leaks to this connection");
    }
    assertEquals(before, snapshot(), "no key was created through a forbidden address");
    assertTrue(hsm.listKeys("sneaky").isEmpty());
  }

  /** The TCP bridge listens on loopback only: the same port on another local address refuses. */
  @Test
  void listensOnLoopbackOnly() throws Exception {
    java.net.InetAddress other = null;
    for (java.net.NetworkInterface nif : java.util.Collections.list(java.net.NetworkInterface.getNetworkInterfaces())) {
      for (java.net.InetAddress a : java.util.Collections.list(nif.getInetAddresses())) {
        if (!a.isLoopbackAddress() && !a.isLinkLocalAddress() && a instanceof java.net.Inet4Address) {
          other = a;
        }
      }
    }
    org.junit.jupiter.api.Assumptions.assumeTrue(other != null, "no non-loopback IPv4 address on this host");
    try (java.net.Socket s = new java.net.Socket()) {
      java.net.InetAddress target = other;
      assertThrows(java.io.IOException.class, () -> s.connect(new java.net.InetSocketAddress(target, port), 2_000),
          "connecting to " + target + ":" + port);
    }
  }

  // ============================================================== helpers

  /** Sends {@code body} as it is, with the crypto user's session (malformed bodies included). */
  private JsonObject raw(JsonObject body) {
    return client.request(body.copy().put("session", session));
  }

  private static JsonObject op(String op) {
    return new JsonObject().put("op", op);
  }

  /**
   * What must not change on a rejected request: the listed keys and the token's object files once the agent
   * is at rest (its audit anchor is replaced after each request, create then destroy: one file more meanwhile).
   */
  private record Snapshot(Set<String> keys, long objectFiles) {}

  private Snapshot snapshot() {
    Set<String> ids = new TreeSet<>();
    for (KeyInfo k : hsm.listKeys()) {
      ids.add(k.keyId() + " " + k.label());
    }
    return new Snapshot(ids, TestNodes.objectFilesAtRest(tokenDir));
  }

  private void assertRejected(ErrorCode code, Runnable action) {
    assertRejected(code, action, "");
  }

  private HsmBridgeException assertRejected(ErrorCode code, Runnable action, String what) {
    Snapshot before = snapshot();
    HsmBridgeException e = assertCode(code, () -> {
      action.run();
      return null;
    }, what);
    assertEquals(before, snapshot(), "nothing changed after " + e.getMessage());
    return e;
  }

  private static HsmBridgeException assertCode(ErrorCode code, Runnable action) {
    return assertCode(code, () -> {
      action.run();
      return null;
    }, "");
  }

  private static HsmBridgeException assertCode(ErrorCode code, Supplier<?> action, String what) {
    HsmBridgeException e = assertThrows(HsmBridgeException.class, action::get, what);
    assertEquals(code, e.code(), what + ": " + e.getMessage());
    assertTrue(e.getMessage().startsWith(code.name() + ": "), e.getMessage());
    return e;
  }
}
