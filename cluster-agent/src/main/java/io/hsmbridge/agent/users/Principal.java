package io.hsmbridge.agent.users;

import io.hsmbridge.agent.replication.Actor;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonObject;
import java.util.Base64;

/**
 * The authenticated user a request runs for. The bridge checks the session and puts it in the body it
 * forwards ({@value #FIELD}), with the session proof the agent that checked the password issued at
 * login ({@value #PROOF}: session id, issued-at, expires-at and the HMAC made inside a cluster token).
 * An agent serves a request only when that proof verifies in its own token, and copies it into every
 * log entry it submits for the request, where every HSM checks it again at apply. The bridge removes any
 * {@value #FIELD} a client sent; a front door cannot make a proof.
 *
 * @param session the principal as an entry's {@link Actor}, with its proof; null when the bridge sent none
 */
public record Principal(String user, Role role, Actor session) {
  public static final String FIELD = "principal";
  /** The field of a login reply and of a principal that holds the session proof. */
  public static final String PROOF = "sessionProof";

  public Principal {
    user = UserRecord.checkName(user); // canonical (lowercase), as every stored user name
    java.util.Objects.requireNonNull(role, "role");
  }

  /** The request's principal, or null when it carries none (public operations, the members' own calls). */
  public static Principal of(JsonObject body) {
    Object p = body.getValue(FIELD);
    if (!(p instanceof JsonObject)) {
      return null;
    }
    JsonObject j = (JsonObject) p;
    try {
      Role role = Role.valueOf(j.getString("role"));
      String user = j.getString("user");
      return new Principal(user, role, actor(user, role, j.getJsonObject(PROOF)));
    } catch (RuntimeException e) {
      throw new HsmException(ErrorCode.BAD_REQUEST, "malformed principal");
    }
  }

  private static Actor actor(String user, Role role, JsonObject proof) {
    if (proof == null) {
      return null;
    }
    return new Actor(Actor.Role.valueOf(role.name()), user, proof.getString("sessionId"), proof.getLong("issuedAt"),
        proof.getLong("expiresAt"), Base64.getDecoder().decode(proof.getString("proof")));
  }

  /** A session proof as agents hand it to the bridge (login reply) and the bridge forwards it. */
  public static JsonObject proofJson(Actor a) {
    return new JsonObject().put("sessionId", a.sessionId()).put("issuedAt", a.issuedAt())
        .put("expiresAt", a.expiresAt()).put("proof", Base64.getEncoder().encodeToString(a.proof()));
  }

  /** The principal as the bridge forwards it: user, role and the session proof it keeps with the session. */
  public static JsonObject toJson(String user, Role role, JsonObject sessionProof) {
    JsonObject j = new JsonObject().put("user", user).put("role", role.name());
    return sessionProof == null ? j : j.put(PROOF, sessionProof.copy());
  }

  /** Whether {@code name} (in any case) names this principal's user. */
  public boolean is(String name) {
    return UserRecord.isValidName(name) && user.equals(UserRecord.checkName(name));
  }

  @Override
  public String toString() {
    return "Principal[" + user + ", " + role + "]";
  }
}
