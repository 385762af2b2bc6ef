package io.hsmbridge.bridge;

import static io.hsmbridge.agent.RequestReader.MAX_CIPHERTEXT_BYTES;
import static io.hsmbridge.agent.RequestReader.MAX_DATA_BYTES;
import static io.hsmbridge.agent.RequestReader.MAX_SIGNATURE_BYTES;
import static io.hsmbridge.agent.RequestReader.MAX_WRAPPED_BYTES;

import io.hsmbridge.agent.Operations;
import io.hsmbridge.agent.RequestReader;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.Op;
import io.vertx.core.json.JsonObject;

/**
 * Rejects malformed requests at the door, before they reach an HSM: every field an operation needs
 * must be present, well-typed, within its size limit and a known spec/usage/algorithm. The agent
 * checks again (it trusts nobody); the bridge checks so that a bad request costs no HSM time.
 */
public final class RequestValidator {
  private RequestValidator() {}

  /** Returns the operation when the request is valid; throws a typed HsmException otherwise. */
  public static Op validate(JsonObject body) {
    Op op = Operations.op(body);
    if (op.isInternal()) {
      // Cluster members' own traffic (digests, repairs, membership) never comes through the front door.
      throw new HsmException(io.hsmbridge.protocol.ErrorCode.UNKNOWN_OPERATION, "unknown operation '" + op.wire() + "'");
    }
    RequestReader r = new RequestReader(body);
    String requestId = r.optionalString("requestId");
    if (requestId != null && requestId.length() > 64) {
      throw HsmException.badParam("requestId must be at most 64 characters");
    }
    String onHsm = r.optionalString("onHsm");
    if (onHsm != null && !onHsm.matches("[A-Za-z0-9_-]{1,64}")) {
      throw HsmException.badParam("onHsm must be an HSM id");
    }
    if (onHsm != null && op.isMutation()) {
      throw HsmException.badParam("onHsm pins reads and crypto to one HSM; mutations always go through the cluster");
    }
    switch (op) {
      case HEALTH:
      case KEY_LIST:
        r.optionalString("label");
        break;
      case KEY_GENERATE: {
        KeySpec spec = r.spec();
        r.usage(spec);
        r.label("label");
        r.bool("exportable", false);
        r.bool("extractable", true);
        break;
      }
      case CLUSTER_REMOVE_HSM:
        if (!r.string("hsmId").matches("[A-Za-z0-9_-]{1,64}")) {
          throw HsmException.badParam("hsmId must be 1..64 letters, digits, '-' or '_'");
        }
        break;
      case KEY_DESCRIBE:
      case KEY_DELETE:
      case KEY_PUBLIC:
      case KEY_CERTIFICATES:
        r.keyId("keyId");
        break;
      case KEY_SET_CERTIFICATES:
        // Shape and bounds here; whether they are certificates of this key, the agent checks (it holds the key).
        r.keyId("keyId");
        r.certificates("certificates");
        break;
      case KEY_SET_LABEL:
        r.keyId("keyId");
        r.label("label");
        break;
      case KEY_IMPORT_WRAPPED: {
        r.keyId("wrappingKeyId");
        r.alg(Algorithm.Kind.KEY_WRAP);
        r.bytes("wrapped", MAX_WRAPPED_BYTES);
        KeySpec spec = r.spec();
        r.usage(spec);
        r.label("label");
        r.bool("exportable", false);
        break;
      }
      case KEY_WRAP:
        r.keyId("keyId");
        r.keyId("wrappingKeyId");
        r.alg(Algorithm.Kind.KEY_WRAP);
        break;
      case ENCRYPT:
        r.keyId("keyId");
        r.alg(Algorithm.Kind.CIPHER);
        r.bytes("plaintext", MAX_DATA_BYTES);
        r.optionalBytes("aad", MAX_DATA_BYTES);
        break;
      case DECRYPT:
        r.keyId("keyId");
        r.alg(Algorithm.Kind.CIPHER);
        r.bytes("ciphertext", MAX_CIPHERTEXT_BYTES);
        r.optionalBytes("iv", 64);
        r.optionalBytes("aad", MAX_DATA_BYTES);
        break;
      case SIGN:
        r.keyId("keyId");
        r.alg(Algorithm.Kind.SIGNATURE);
        r.bytes("message", MAX_DATA_BYTES);
        break;
      case VERIFY:
        r.keyId("keyId");
        r.alg(Algorithm.Kind.SIGNATURE);
        r.bytes("message", MAX_DATA_BYTES);
        r.bytes("signature", MAX_SIGNATURE_BYTES);
        break;
      case MAC:
        r.keyId("keyId");
        r.alg(Algorithm.Kind.MAC);
        r.bytes("message", MAX_DATA_BYTES);
        break;
      case MAC_VERIFY:
        r.keyId("keyId");
        r.alg(Algorithm.Kind.MAC);
        r.bytes("message", MAX_DATA_BYTES);
        r.bytes("mac", MAX_SIGNATURE_BYTES);
        break;
      case DIGEST:
        r.alg(Algorithm.Kind.DIGEST);
        r.bytes("message", MAX_DATA_BYTES);
        break;
      case RANDOM: {
        int length = r.integer("length");
        if (length < 1 || length > 4096) {
          throw HsmException.badParam("random length must be between 1 and 4096");
        }
        break;
      }
      default:
        break;
    }
    return op;
  }
}
