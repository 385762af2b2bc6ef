package io.hsmbridge.agent;

import static io.hsmbridge.agent.RequestReader.MAX_CIPHERTEXT_BYTES;
import static io.hsmbridge.agent.RequestReader.MAX_DATA_BYTES;
import static io.hsmbridge.agent.RequestReader.MAX_SIGNATURE_BYTES;
import static io.hsmbridge.agent.RequestReader.MAX_WRAPPED_BYTES;

import io.hsmbridge.agent.replication.CertificateChains;
import io.hsmbridge.pkcs11.CryptoService;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyInfo;
import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.Op;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.Base64;

/**
 * Executes one protocol request on one HSM: reads the request's fields, calls the token, shapes the
 * reply. Blocking: runs on the agent's worker pool, never on an event loop.
 */
public final class Operations implements RequestHandler {
  private final String hsmId;
  private final HsmToken hsm;

  public Operations(String hsmId, HsmToken hsm) {
    this.hsmId = hsmId;
    this.hsm = hsm;
  }

  /**
   * Parses the op name: BAD_REQUEST when it is missing or not a string (a missing field, as for every
   * other field, see docs/protocol.md), UNKNOWN_OPERATION when it is not known.
   */
  public static Op op(JsonObject body) {
    String name = new RequestReader(body).string("op");
    Op op = Op.fromWire(name);
    if (op == null) {
      String shown = name.length() > 64 ? name.substring(0, 64) + "..." : name;
      throw new HsmException(ErrorCode.UNKNOWN_OPERATION,
          "unknown operation '" + shown.replaceAll("[^\\x20-\\x7E]", "?") + "'");
    }
    return op;
  }

  @Override
  public JsonObject execute(JsonObject body) {
    RequestReader r = new RequestReader(body);
    JsonObject reply = dispatch(op(body), r);
    String requestId = r.optionalString("requestId");
    if (requestId != null) {
      reply.put("requestId", requestId);
    }
    return reply;
  }

  private JsonObject dispatch(Op op, RequestReader r) {
    CryptoService crypto = hsm.crypto();
    switch (op) {
      case HEALTH:
        return health();
      case KEY_GENERATE: {
        KeySpec spec = r.spec();
        return key(hsm.keys().generate(spec, r.usage(spec), r.label("label"), r.bool("exportable", false)));
      }
      case KEY_LIST: {
        String label = r.optionalString("label");
        JsonArray keys = new JsonArray();
        hsm.keys().list().stream().filter(k -> label == null || label.equals(k.label())).forEach(k -> keys.add(key(k)));
        return new JsonObject().put("keys", keys);
      }
      case KEY_DESCRIBE:
        return key(hsm.keys().describe(r.keyId("keyId")));
      case KEY_DELETE: {
        String keyId = r.keyId("keyId");
        hsm.keys().delete(keyId);
        hsm.keyCertificates().delete(keyId); // after the key, as the log's DELETE_KEY does
        return new JsonObject().put("keyId", keyId).put("deleted", true);
      }
      case KEY_SET_LABEL:
        return key(hsm.keys().setLabel(r.keyId("keyId"), r.label("label")));
      case KEY_PUBLIC:
        return new JsonObject().put("spki", b64(hsm.keys().publicKey(r.keyId("keyId"))));
      case KEY_SET_CERTIFICATES: {
        // One HSM without a cluster: written straight to the token (ClusterOperations commits it through the log).
        String keyId = r.keyId("keyId");
        java.util.List<byte[]> chain = r.certificates("certificates");
        CertificateChains.check(hsm, keyId, chain);
        if (chain.isEmpty()) {
          hsm.keyCertificates().delete(keyId);
        } else {
          hsm.keyCertificates().put(new io.hsmbridge.pkcs11.CertificateChain(keyId, chain));
        }
        return new JsonObject().put("keyId", keyId).put("count", chain.size());
      }
      case KEY_CERTIFICATES:
        return certificates(r.keyId("keyId"));
      case KEY_IMPORT_WRAPPED: {
        KeySpec spec = r.spec();
        return key(hsm.keys().importWrapped(r.keyId("wrappingKeyId"), r.alg(Algorithm.Kind.KEY_WRAP),
            r.bytes("wrapped", MAX_WRAPPED_BYTES), spec, r.usage(spec), r.label("label"), r.bool("exportable", false)));
      }
      case KEY_WRAP:
        return new JsonObject().put("wrapped",
            b64(hsm.keys().wrap(r.keyId("keyId"), r.keyId("wrappingKeyId"), r.alg(Algorithm.Kind.KEY_WRAP))));
      case ENCRYPT: {
        CryptoService.Encrypted e = crypto.encrypt(r.keyId("keyId"), r.alg(Algorithm.Kind.CIPHER),
            r.bytes("plaintext", MAX_DATA_BYTES), r.optionalBytes("aad", MAX_DATA_BYTES));
        JsonObject reply = new JsonObject().put("ciphertext", b64(e.ciphertext()));
        return e.iv() == null ? reply : reply.put("iv", b64(e.iv()));
      }
      case DECRYPT:
        return new JsonObject().put("plaintext", b64(crypto.decrypt(r.keyId("keyId"), r.alg(Algorithm.Kind.CIPHER),
            r.bytes("ciphertext", MAX_CIPHERTEXT_BYTES), r.optionalBytes("iv", 64), r.optionalBytes("aad", MAX_DATA_BYTES))));
      case SIGN:
        return new JsonObject().put("signature",
            b64(crypto.sign(r.keyId("keyId"), r.alg(Algorithm.Kind.SIGNATURE), r.bytes("message", MAX_DATA_BYTES))));
      case VERIFY:
        return new JsonObject().put("valid", crypto.verify(r.keyId("keyId"), r.alg(Algorithm.Kind.SIGNATURE),
            r.bytes("message", MAX_DATA_BYTES), r.bytes("signature", MAX_SIGNATURE_BYTES)));
      case MAC:
        return new JsonObject().put("mac",
            b64(crypto.mac(r.keyId("keyId"), r.alg(Algorithm.Kind.MAC), r.bytes("message", MAX_DATA_BYTES))));
      case MAC_VERIFY:
        return new JsonObject().put("valid", crypto.verifyMac(r.keyId("keyId"), r.alg(Algorithm.Kind.MAC),
            r.bytes("message", MAX_DATA_BYTES), r.bytes("mac", MAX_SIGNATURE_BYTES)));
      case DIGEST:
        return new JsonObject().put("digest",
            b64(crypto.digest(r.alg(Algorithm.Kind.DIGEST), r.bytes("message", MAX_DATA_BYTES))));
      case RANDOM:
        return new JsonObject().put("random", b64(crypto.random(r.integer("length"))));
      default:
        throw new HsmException(ErrorCode.UNKNOWN_OPERATION, "operation " + op.wire() + " is not served by agents");
    }
  }

  private JsonObject health() {
    hsm.ping();
    return new JsonObject()
        .put("status", "OK")
        .put("hsmId", hsmId)
        .put("token", hsm.label())
        .put("serial", hsm.serial())
        .put("manufacturer", hsm.manufacturer())
        .put("profile", hsm.profile().name())
        .put("objects", hsm.keys().count())
        .put("sessionsMax", hsm.sessionCapacity())
        .put("sessionsInUse", hsm.sessionsInUse());
  }

  /** key.certificates: the chain stored beside the key, leaf first (empty when none); UNKNOWN_KEY for no key. */
  private JsonObject certificates(String keyId) {
    hsm.keys().describe(keyId);
    JsonArray chain = new JsonArray();
    hsm.keyCertificates().get(keyId).ifPresent(c -> c.certificates().forEach(der -> chain.add(b64(der))));
    return new JsonObject().put("keyId", keyId).put("certificates", chain);
  }

  static JsonObject key(KeyInfo k) {
    return new JsonObject()
        .put("keyId", k.keyId())
        .put("label", k.label())
        .put("spec", k.spec().name())
        .put("family", k.spec().family().name())
        .put("usage", k.usage().name())
        .put("exportable", k.exportable())
        .put("extractable", k.extractable())
        .put("sensitive", k.sensitive());
  }

  private static String b64(byte[] bytes) {
    return Base64.getEncoder().encodeToString(bytes);
  }
}
