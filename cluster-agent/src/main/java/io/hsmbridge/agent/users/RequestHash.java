package io.hsmbridge.agent.users;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;
import java.util.Set;
import java.util.TreeSet;

/**
 * The fingerprint of one operation a quorum token is issued for: SHA-256 over the request body in a
 * canonical form (object keys sorted, recursively), without the fields that are not the operation itself
 * (session, quorum, request id, HSM pinning, and what the bridge adds). The bridge computes it when it
 * issues a token and the agent again for the request that presents the token: any other operation, or
 * the same operation with another field value, does not match.
 */
public final class RequestHash {
  private static final Set<String> NOT_THE_OPERATION =
      Set.of("session", "quorum", "quorumDocument", "requestId", "onHsm", Principal.FIELD, "mfaChallenge");

  private RequestHash() {}

  /** Base64 of SHA-256 of the canonical operation. */
  public static String of(JsonObject body) {
    JsonObject op = body.copy();
    NOT_THE_OPERATION.forEach(op::remove);
    StringBuilder b = new StringBuilder();
    canonical(op, b);
    try {
      byte[] h = MessageDigest.getInstance("SHA-256").digest(b.toString().getBytes(StandardCharsets.UTF_8));
      return Base64.getEncoder().encodeToString(h);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void canonical(Object v, StringBuilder b) {
    if (v instanceof JsonObject o) {
      b.append('{');
      boolean first = true;
      for (String k : new TreeSet<>(o.fieldNames())) {
        b.append(first ? "" : ",").append(JsonArray.of(k).encode(), 1, JsonArray.of(k).encode().length() - 1).append(':');
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
      String e = JsonArray.of(v).encode();
      b.append(e, 1, e.length() - 1);
    }
  }
}
