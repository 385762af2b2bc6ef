package io.hsmbridge.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Pins the request bodies the facade builds to docs/protocol.md (standard base64, field names). */
class HsmTest {
  private final List<JsonObject> sent = new ArrayList<>();
  private JsonObject nextReply = new JsonObject();
  private final Hsm hsm = new Hsm(body -> {
    sent.add(body.copy());
    return nextReply;
  });

  private static final String KEY = "0123456789abcdef0123456789abcdef";

  private JsonObject last() {
    return sent.get(sent.size() - 1);
  }

  private static JsonObject description() {
    return new JsonObject().put("keyId", KEY).put("label", "l").put("spec", "AES_256").put("family", "AES")
        .put("usage", "ENCRYPT_DECRYPT").put("exportable", false).put("extractable", true).put("sensitive", true);
  }

  @Test
  void generateKeySendsSpecLabelUsageExportable() {
    nextReply = description();
    KeyInfo k = hsm.generateKey(KeySpec.AES_256, "l", KeyUsage.ENCRYPT_DECRYPT, false);
    assertEquals(new JsonObject().put("spec", "AES_256").put("label", "l").put("exportable", false)
        .put("usage", "ENCRYPT_DECRYPT").put("op", "key.generate"), last());
    assertEquals(KEY, k.keyId());
    assertTrue(k.sensitive());
    assertEquals(description(), k.toJson());
    hsm.generateKey(KeySpec.EC_P256, "e", null, true);
    assertFalse(last().containsKey("usage"));
    assertTrue(last().getBoolean("exportable"));
  }

  @Test
  void certificatesTravelAsAnArrayOfStandardBase64LeafFirst() {
    nextReply = new JsonObject().put("keyId", KEY).put("count", 2).put("seq", 17L);
    assertEquals(17L, hsm.setCertificates(KEY, List.of(new byte[] {(byte) 0xfb, (byte) 0xff}, new byte[] {1})));
    assertEquals(new JsonObject().put("keyId", KEY).put("certificates", new JsonArray().add("+/8=").add("AQ=="))
        .put("op", "key.setCertificates"), last());
    nextReply = new JsonObject().put("keyId", KEY).put("count", 0);
    assertEquals(0L, hsm.setCertificates(KEY, List.of()), "no seq (an agent without a cluster): 0");
    assertEquals(new JsonArray(), last().getJsonArray("certificates"));

    nextReply = new JsonObject().put("keyId", KEY).put("certificates", new JsonArray().add("+/8=").add("AQ=="));
    List<byte[]> chain = hsm.certificates(KEY);
    assertEquals(new JsonObject().put("keyId", KEY).put("op", "key.certificates"), last());
    assertEquals(2, chain.size());
    assertArrayEquals(new byte[] {(byte) 0xfb, (byte) 0xff}, chain.get(0));
    assertArrayEquals(new byte[] {1}, chain.get(1));
    nextReply = new JsonObject().put("certificates", new JsonArray());
    assertTrue(hsm.certificates(KEY).isEmpty());
    nextReply = new JsonObject().put("certificates", new JsonArray().add(1));
    assertEquals(ErrorCode.INTERNAL, assertThrows(HsmBridgeException.class, () -> hsm.certificates(KEY)).code());
    nextReply = new JsonObject();
    assertEquals(ErrorCode.INTERNAL, assertThrows(HsmBridgeException.class, () -> hsm.certificates(KEY)).code());
  }

  @Test
  void encryptUsesStandardBase64AndReadsIv() {
    byte[] pt = {(byte) 0xfb, (byte) 0xff, 0x3e};
    nextReply = new JsonObject().put("ciphertext", "+/8=").put("iv", "AAEC");
    Ciphertext c = hsm.encrypt(KEY, "AES_GCM", pt, "a".getBytes(StandardCharsets.US_ASCII));
    assertEquals("encrypt", last().getString("op"));
    assertEquals("+/8+", last().getString("plaintext"));
    assertEquals("YQ==", last().getString("aad"));
    assertArrayEquals(new byte[] {(byte) 0xfb, (byte) 0xff}, c.ciphertext());
    assertArrayEquals(new byte[] {0, 1, 2}, c.iv());

    nextReply = new JsonObject().put("ciphertext", "AA==");
    hsm.encrypt(KEY, "RSA_OAEP", pt, null);
    assertFalse(last().containsKey("aad"));
  }

  @Test
  void decryptOmitsAbsentIvAndAad() {
    nextReply = new JsonObject().put("plaintext", "aGk=");
    assertArrayEquals("hi".getBytes(StandardCharsets.US_ASCII),
        hsm.decrypt(KEY, "RSA_OAEP", new byte[] {1}, null, null));
    assertEquals(new JsonObject().put("keyId", KEY).put("alg", "RSA_OAEP").put("ciphertext", "AQ==")
        .put("op", "decrypt"), last());
  }

  @Test
  void signVerifyMacDigestRandom() {
    nextReply = new JsonObject().put("signature", "AQI=");
    assertArrayEquals(new byte[] {1, 2}, hsm.sign(KEY, "ED25519", new byte[] {9}));
    assertEquals("CQ==", last().getString("message"));
    nextReply = new JsonObject().put("valid", false);
    assertFalse(hsm.verify(KEY, "ED25519", new byte[] {9}, new byte[] {1, 2}));
    assertEquals("AQI=", last().getString("signature"));
    assertEquals("verify", last().getString("op"));
    nextReply = new JsonObject().put("mac", "AQ==");
    hsm.mac(KEY, "HMAC_SHA256", new byte[0]);
    assertEquals("", last().getString("message"));
    nextReply = new JsonObject().put("valid", true);
    assertTrue(hsm.macVerify(KEY, "HMAC_SHA256", new byte[0], new byte[] {1}));
    assertEquals("mac.verify", last().getString("op"));
    nextReply = new JsonObject().put("digest", "AA==");
    hsm.digest("SHA256", new byte[] {1});
    assertEquals(new JsonObject().put("alg", "SHA256").put("message", "AQ==").put("op", "digest"), last());
    nextReply = new JsonObject().put("random", "AAAA");
    assertEquals(3, hsm.random(3).length);
    assertEquals(3, last().getInteger("length"));
  }

  @Test
  void listWithAndWithoutLabel() {
    nextReply = new JsonObject().put("keys", new JsonArray().add(description()));
    assertEquals(1, hsm.listKeys().size());
    assertFalse(last().containsKey("label"));
    hsm.listKeys("x");
    assertEquals("x", last().getString("label"));
  }

  @Test
  void wrapAndImportWrapped() {
    nextReply = new JsonObject().put("wrapped", "AQ==");
    hsm.wrap(KEY, "w", "AES_KEY_WRAP_PAD");
    assertEquals(new JsonObject().put("keyId", KEY).put("wrappingKeyId", "w").put("alg", "AES_KEY_WRAP_PAD")
        .put("op", "key.wrap"), last());
    nextReply = description();
    hsm.importWrapped("w", "AES_KEY_WRAP_PAD", new byte[] {1}, KeySpec.AES_128, "i", null, false);
    assertEquals("key.importWrapped", last().getString("op"));
    assertEquals("AQ==", last().getString("wrapped"));
    assertEquals("AES_128", last().getString("spec"));
  }

  @Test
  void malformedReplyIsInternalError() {
    nextReply = new JsonObject().put("signature", 5);
    HsmBridgeException e = assertThrows(HsmBridgeException.class, () -> hsm.sign(KEY, "ED25519", new byte[0]));
    assertEquals(ErrorCode.INTERNAL, e.code());
    nextReply = new JsonObject().put("spki", "not base64!");
    assertThrows(HsmBridgeException.class, () -> hsm.publicKey(KEY));
  }

  @Test
  void ciphertextIsImmutable() {
    byte[] ct = {1, 2};
    Ciphertext c = new Ciphertext(ct, null);
    ct[0] = 9;
    c.ciphertext()[1] = 9;
    assertArrayEquals(new byte[] {1, 2}, c.ciphertext());
    assertNull(c.iv());
    assertEquals(new Ciphertext(new byte[] {1, 2}, null), c);
  }
}
