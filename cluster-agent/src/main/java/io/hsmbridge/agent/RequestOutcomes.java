package io.hsmbridge.agent;

import io.hsmbridge.agent.users.Principal;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.Op;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonObject;

/**
 * The changes whose outcome the cluster records per request id (issue #11, "no ambiguous outcomes"), and
 * the answer to a request sent again after its change was applied.
 *
 * <p>Key creation, import, delete and relabel are safe to send again by their nature (the key id derives
 * from the request id; a delete or a relabel leaves the same state). The changes listed here are not: a
 * second {@code user.create} would fail with "user exists", a second {@code key.share} with "already
 * shared", a second password change would end the user's sessions again. So each goes through the log as
 * a {@code Mutation.Once}: applied once per user and request id, with an outcome record that every HSM
 * keeps for {@code Settings.OUTCOME_KEPT}. A request that finds its record answers as the first attempt
 * did, without changing anything ({@link #repeatedReply}).
 */
final class RequestOutcomes {
  private RequestOutcomes() {}

  /** Whether {@code op}'s change is applied at most once per request id through an outcome record. */
  static boolean recorded(Op op) {
    switch (op) {
      case USER_CREATE:
      case USER_DELETE:
      case USER_CHANGE_PASSWORD:
      case USER_UNLOCK:
      case USER_REGISTER_KEY:
      case USER_SET_MFA:
      case QUORUM_SET:
      case KEY_SHARE:
      case KEY_UNSHARE:
      case KEY_SET_QUORUM:
      case BACKUP_ROTATE_KEY:
      case CLUSTER_ROTATE_KEY:
        return true;
      default:
        return false;
    }
  }

  /**
   * The answer the first attempt gave (its fields that follow from the request), marked {@code repeated}.
   * Key shares are answered by the caller, which describes the key as it is now.
   */
  static JsonObject repeatedReply(Op op, RequestReader r, Principal p, long seq) {
    JsonObject reply = new JsonObject();
    switch (op) {
      case USER_CREATE:
        reply.put("name", name(r, "name")).put("role", Role.parseCreatable(r.string("role")).name());
        break;
      case USER_DELETE:
        reply.put("name", name(r, "name")).put("deleted", true);
        break;
      case USER_CHANGE_PASSWORD:
        reply.put("name", name(r, "name")).put("changed", true);
        break;
      case USER_UNLOCK:
        reply.put("name", name(r, "name")).put("unlocked", true);
        break;
      case USER_REGISTER_KEY:
        reply.put("name", p.user()).put("registered", true);
        break;
      case USER_SET_MFA:
        reply.put("name", p.user()).put("mfa", r.bool("enabled", true));
        break;
      case QUORUM_SET:
        reply.put("service", r.string("service")).put("value", r.integer("value"));
        break;
      case KEY_SET_QUORUM:
        reply.put("keyId", r.keyId("keyId")).put("management", r.integer("management")).put("usage", r.integer("usage"));
        break;
      case BACKUP_ROTATE_KEY:
      case CLUSTER_ROTATE_KEY:
        reply.put("rotated", true);
        break;
      default:
        throw new IllegalArgumentException(op.wire() + " has no recorded outcome");
    }
    return reply.put("seq", seq).put("repeated", true);
  }

  private static String name(RequestReader r, String field) {
    return UserRecord.checkName(r.string(field)); // canonical, as the first attempt answered
  }
}
