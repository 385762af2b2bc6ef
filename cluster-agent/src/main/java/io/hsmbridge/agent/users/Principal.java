package io.hsmbridge.agent.users;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonObject;

/**
 * The authenticated user a request runs for. The bridge checks the session and puts it in the body it
 * forwards ({@value #FIELD}); agents take it as true because only cluster members (mutual TLS with the
 * cluster's CA) reach them, and the bridge removes any {@value #FIELD} a client sent.
 */
public record Principal(String user, Role role) {
  public static final String FIELD = "principal";

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
      return new Principal(j.getString("user"), Role.valueOf(j.getString("role")));
    } catch (RuntimeException e) {
      throw new HsmException(ErrorCode.BAD_REQUEST, "malformed principal");
    }
  }

  public JsonObject toJson() {
    return new JsonObject().put("user", user).put("role", role.name());
  }

  /** Whether {@code name} (in any case) names this principal's user. */
  public boolean is(String name) {
    return UserRecord.isValidName(name) && user.equals(UserRecord.checkName(name));
  }
}
