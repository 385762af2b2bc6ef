package io.hsmbridge.client;

import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import io.hsmbridge.protocol.Op;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * A typed facade over the protocol (docs/protocol.md): one method per operation, bytes in and out,
 * base64 on the wire. Thread-safe when its {@link RequestSender} is ({@link BridgeClient} is).
 *
 * <p>Every method throws {@link HsmBridgeException} on failure. Decrypt and unwrap failures are the
 * opaque {@code CRYPTO_FAILURE}; a signature or MAC that does not match is {@code false}, not an error.
 * Algorithm names ({@code alg}) are the protocol's strings, e.g. {@code "AES_GCM"}, {@code "ED25519"}.
 */
public final class Hsm implements AutoCloseable {
  private final RequestSender sender;
  private final AutoCloseable owned;

  /** Uses a sender it does not own: {@link #close()} leaves it open. */
  public Hsm(RequestSender sender) {
    this.sender = Objects.requireNonNull(sender, "sender");
    this.owned = null;
  }

  private Hsm(BridgeClient client) {
    this.sender = client;
    this.owned = client;
  }

  /** Connects a new {@link BridgeClient} that this facade owns and closes. */
  public static Hsm connect(String host, int port) {
    return new Hsm(BridgeClient.connect(host, port));
  }

  /** Wraps a client and takes ownership of it. */
  public static Hsm owning(BridgeClient client) {
    return new Hsm(Objects.requireNonNull(client, "client"));
  }

  /** The health report of the HSM that served the request (fields as in protocol.md). */
  public JsonObject health() {
    return call(Op.HEALTH, new JsonObject());
  }

  /**
   * Generates a key inside the HSM.
   *
   * @param usage null for the spec's default usage
   * @param exportable whether {@link #wrap} may export the key under a user wrapping key
   */
  public KeyInfo generateKey(KeySpec spec, String label, KeyUsage usage, boolean exportable) {
    JsonObject req = new JsonObject()
        .put("spec", Objects.requireNonNull(spec, "spec").name())
        .put("label", Objects.requireNonNull(label, "label"))
        .put("exportable", exportable);
    if (usage != null) {
      req.put("usage", usage.name());
    }
    return KeyInfo.fromJson(call(Op.KEY_GENERATE, req));
  }

  /** Every key visible to the caller. */
  public List<KeyInfo> listKeys() {
    return listKeys(null);
  }

  /** Keys whose label equals {@code label} exactly; null lists all. */
  public List<KeyInfo> listKeys(String label) {
    JsonObject req = new JsonObject();
    if (label != null) {
      req.put("label", label);
    }
    JsonArray keys = Replies.array(call(Op.KEY_LIST, req), "keys");
    List<KeyInfo> out = new ArrayList<>(keys.size());
    for (Object k : keys) {
      if (!(k instanceof JsonObject o)) {
        throw new HsmBridgeException(ErrorCode.INTERNAL,
            "malformed reply: 'keys' holds a non-object");
      }
      out.add(KeyInfo.fromJson(o));
    }
    return Collections.unmodifiableList(out);
  }

  public KeyInfo describe(String keyId) {
    return KeyInfo.fromJson(call(Op.KEY_DESCRIBE, key(keyId)));
  }

  /** Deletes the key; UNKNOWN_KEY when there is none. */
  public void delete(String keyId) {
    call(Op.KEY_DELETE, key(keyId));
  }

  public KeyInfo setLabel(String keyId, String label) {
    return KeyInfo.fromJson(call(Op.KEY_SET_LABEL, key(keyId).put("label", Objects.requireNonNull(label))));
  }

  /** The public key of an RSA/EC/Ed25519 key pair as DER SubjectPublicKeyInfo. */
  public byte[] publicKey(String keyId) {
    return Replies.bytes(call(Op.KEY_PUBLIC, key(keyId)), "spki");
  }

  /**
   * Encrypts with {@code AES_GCM}, {@code AES_CBC_PAD} or {@code RSA_OAEP}.
   *
   * @param aad additional authenticated data (AES_GCM only), or null
   */
  public Ciphertext encrypt(String keyId, String alg, byte[] plaintext, byte[] aad) {
    JsonObject req = key(keyId).put("alg", alg).put("plaintext", Replies.b64(plaintext));
    if (aad != null) {
      req.put("aad", Replies.b64(aad));
    }
    JsonObject r = call(Op.ENCRYPT, req);
    return new Ciphertext(Replies.bytes(r, "ciphertext"), Replies.optBytes(r, "iv"));
  }

  /** Decrypts; any failure of integrity or padding is CRYPTO_FAILURE. {@code iv}/{@code aad} may be null. */
  public byte[] decrypt(String keyId, String alg, byte[] ciphertext, byte[] iv, byte[] aad) {
    JsonObject req = key(keyId).put("alg", alg).put("ciphertext", Replies.b64(ciphertext));
    if (iv != null) {
      req.put("iv", Replies.b64(iv));
    }
    if (aad != null) {
      req.put("aad", Replies.b64(aad));
    }
    return Replies.bytes(call(Op.DECRYPT, req), "plaintext");
  }

  /** Decrypts the result of {@link #encrypt}. */
  public byte[] decrypt(String keyId, String alg, Ciphertext c, byte[] aad) {
    return decrypt(keyId, alg, c.ciphertext(), c.iv(), aad);
  }

  public byte[] sign(String keyId, String alg, byte[] message) {
    return Replies.bytes(call(Op.SIGN, message(keyId, alg, message)), "signature");
  }

  public boolean verify(String keyId, String alg, byte[] message, byte[] signature) {
    JsonObject req = message(keyId, alg, message).put("signature", Replies.b64(signature));
    return Replies.bool(call(Op.VERIFY, req), "valid");
  }

  public byte[] mac(String keyId, String alg, byte[] message) {
    return Replies.bytes(call(Op.MAC, message(keyId, alg, message)), "mac");
  }

  public boolean macVerify(String keyId, String alg, byte[] message, byte[] mac) {
    JsonObject req = message(keyId, alg, message).put("mac", Replies.b64(mac));
    return Replies.bool(call(Op.MAC_VERIFY, req), "valid");
  }

  /** A digest computed by the HSM: {@code SHA256}, {@code SHA384} or {@code SHA512}. */
  public byte[] digest(String alg, byte[] message) {
    JsonObject req = new JsonObject().put("alg", alg).put("message", Replies.b64(message));
    return Replies.bytes(call(Op.DIGEST, req), "digest");
  }

  /** {@code length} (1..4096) bytes from the token's RNG. */
  public byte[] random(int length) {
    return Replies.bytes(call(Op.RANDOM, new JsonObject().put("length", length)), "random");
  }

  /** Exports an exportable key wrapped under another key ({@code AES_KEY_WRAP_PAD} or {@code RSA_OAEP}). */
  public byte[] wrap(String keyId, String wrappingKeyId, String alg) {
    JsonObject req = key(keyId).put("wrappingKeyId", wrappingKeyId).put("alg", alg);
    return Replies.bytes(call(Op.KEY_WRAP, req), "wrapped");
  }

  /** Imports a wrapped key as a new key; {@code usage} null for the spec's default. */
  public KeyInfo importWrapped(String wrappingKeyId, String alg, byte[] wrapped, KeySpec spec,
      String label, KeyUsage usage, boolean exportable) {
    JsonObject req = new JsonObject()
        .put("wrappingKeyId", wrappingKeyId)
        .put("alg", alg)
        .put("wrapped", Replies.b64(wrapped))
        .put("spec", Objects.requireNonNull(spec, "spec").name())
        .put("label", label)
        .put("exportable", exportable);
    if (usage != null) {
      req.put("usage", usage.name());
    }
    return KeyInfo.fromJson(call(Op.KEY_IMPORT_WRAPPED, req));
  }

  /** Closes the underlying client when this facade owns it. */
  @Override
  public void close() {
    if (owned != null) {
      try {
        owned.close();
      } catch (Exception e) {
        // BridgeClient.close() does not throw; nothing else is ever owned.
      }
    }
  }

  private JsonObject call(Op op, JsonObject req) {
    req.put("op", op.wire());
    return sender.request(req);
  }

  private static JsonObject key(String keyId) {
    return new JsonObject().put("keyId", Objects.requireNonNull(keyId, "keyId"));
  }

  private static JsonObject message(String keyId, String alg, byte[] message) {
    return key(keyId).put("alg", Objects.requireNonNull(alg, "alg")).put("message", Replies.b64(message));
  }
}
