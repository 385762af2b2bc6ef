package io.hsmbridge.agent.users;

import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonObject;

/** Issues the session proof of a user whose password this agent has just verified ({@link Principal#PROOF}). */
@FunctionalInterface
public interface SessionIssuer {
  JsonObject issue(String user, Role role);
}
