package io.hsmbridge.agent.users;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import java.util.Base64;
import java.util.Set;
import java.util.TreeSet;

/**
 * The fingerprint of one operation a quorum token is issued for: SHA-256 over the request body in a
 * canonical form (object keys sorted, recursively), without the fields that are not the operation itself
 * (session, quorum, request id, HSM pinning, and what the bridge adds). The bridge computes it when it
 * issues a token and the agent again for the request that presents the token: any other operation, or
 * the same operation with another field value, does not match.
 *
 * <p>Keyed: an HMAC-SHA256 under a random per-token key that only the bridge and the agents see
 * ({@code quorumNonce}). The document approvers sign carries this fingerprint, and an operation may hold
 * a secret (the new password of {@code user.create}); an unkeyed hash would let an approver, who knows
 * every other field, guess that password offline against a fast hash.
 */
public final class RequestHash {
  private static final Set<String> NOT_THE_OPERATION =
      Set.of("session", "quorum", "quorumDocument", "quorumNonce", "requestId", "onHsm", Principal.FIELD, "mfaChallenge");
  /** Fields of an operation that are secrets: shown to approvers as {@value #HIDDEN}. */
  private static final Set<String> SECRETS = Set.of("password");
  static final String HIDDEN = "(hidden)";

  private RequestHash() {}

  /** Base64 of HMAC-SHA256 under {@code key} of the canonical operation. */
  public static String of(JsonObject body, byte[] key) {
    StringBuilder b = new StringBuilder();
    canonical(operation(body), b);
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(key, "HmacSHA256"));
      return Base64.getEncoder().encodeToString(mac.doFinal(b.toString().getBytes(StandardCharsets.UTF_8)));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The operation as approvers see it in the document: its fields, secrets shown as {@value #HIDDEN}. */
  public static JsonObject forApprovers(JsonObject body) {
    JsonObject op = operation(body);
    SECRETS.forEach(f -> {
      if (op.containsKey(f)) {
        op.put(f, HIDDEN);
      }
    });
    return op;
  }

  private static JsonObject operation(JsonObject body) {
    JsonObject op = body.copy();
    NOT_THE_OPERATION.forEach(op::remove);
    return op;
  }

  private static void canonical(Object v, StringBuilder b) {
    if (v instanceof JsonObject o) {
      b.append('{');
      boolean first = true;
      for (String k : new TreeSet<>(o.fieldNames())) {
        b.append(first ? "" : ",").append(jsonValue(k)).append(':');
        canonical(o.getValue(k), b);
        first = false;
      }
      b.append('}');
    } else if (v instanceof JsonArray a) {
      b.append('[');
      for (int i = 0; i < a.size(); i++) {
        b.append(i == 0 ? "" : ",");
        canonical(a.getValue(i), b);
      }
      b.append(']');
    } else {
      b.append(jsonValue(v));
    }
  }

  /** A string, number, boolean or null as JSON text (with the JSON library's escaping). */
  private static String jsonValue(Object v) {
    String e = JsonArray.of(v).encode();
    return e.substring(1, e.length() - 1);
  }
}
