package io.hsmbridge.bridge.auth;

import io.hsmbridge.agent.users.Principal;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.Access;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Op;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.function.LongSupplier;
import java.util.logging.Logger;

/**
 * Authentication and authorisation at the cluster's front door (docs/users.md). For every request it
 * takes the {@code session} token out of the body, checks the session and the role against
 * {@link Access}, and forwards the body with the {@link Principal} the agents trust; it answers who-am-I
 * itself and turns an agent's successful login check into a session, keeping the session proof the agent
 * issued (it goes with the principal to the agents, which check it, and into every log entry the request
 * makes; the client never sees it). MFA challenges and quorum tokens are the agents' (cluster state: any
 * HSM recomputes them, the log uses them up). Fields only the front door may set ({@code principal}) and
 * those earlier builds set ({@code quorumDocument}, {@code quorumNonce}, {@code mfaChallenge}) are always
 * removed from what a client sent. Event-loop confined.
 */
public final class FrontDoor {
  private static final Logger LOG = Logger.getLogger(FrontDoor.class.getName());
  private final Sessions sessions;

  public FrontDoor(Duration sessionIdle, Duration sessionMax, LongSupplier clockMillis) {
    this.sessions = new Sessions(sessionIdle, sessionMax, clockMillis);
  }

  /**
   * The session of a token this front door does not hold yet but that carries its proof: the caller has
   * an agent verify it ({@code agent.verifySession}) and then {@link #adopt}s it. Null when there is
   * nothing to verify (no such token, or one already held).
   */
  public Sessions.Session unverified(Object token) {
    return sessions.unverified(token);
  }

  /**
   * The session of {@code token} when this front door holds it: before an operation the front door answers
   * itself ({@link Op#answeredByBridge()}: who-am-I, the cluster's status, check, audit and HSM removal), no
   * agent checks it, so the caller has one do it again: a logout, deletion, lock or new password made through
   * another front door counts here at once, not when the session idles out.
   */
  public Sessions.Session held(Object token) {
    return sessions.held(token);
  }

  /** What to tell the other front doors of the sessions served here lately (see Sessions#usedSinceLastReport). */
  public JsonObject sessionsUsedReport() {
    java.util.Map<String, Long> used = sessions.usedSinceLastReport();
    return used.isEmpty() ? null : new JsonObject().put("used", new JsonObject(new java.util.LinkedHashMap<>(used)));
  }

  /**
   * Another front door's report of the sessions it served: each one's idle time counts from then here too.
   * What is not a report (wrong types, a name that is not a token digest, more entries than a report holds)
   * is ignored; only agents and front doors can publish here (an application member's frames to hsmbridge's
   * addresses are refused: EventBusGuard).
   */
  public void sessionsUsedElsewhere(Object report) {
    if (!(report instanceof JsonObject r) || !(r.getValue("used") instanceof JsonObject used)
        || used.size() > Sessions.MAX_REPORTED) {
      return;
    }
    for (java.util.Map.Entry<String, Object> e : used) {
      if (e.getKey().length() == Sessions.DIGEST_CHARS && e.getValue() instanceof Number at) {
        sessions.usedElsewhere(e.getKey(), at.longValue());
      }
    }
  }

  /** Holds a session an agent verified (see {@link #unverified}). */
  public void adopt(Sessions.Session s) {
    sessions.adopt(s);
  }

  /** An agent refused {@code s}: it ends here, and its token is refused for a while without asking again. */
  public void refused(Sessions.Session s) {
    sessions.refused(s);
  }

  /** What an agent needs to verify {@code s}: its principal as every request forwards it. */
  public static JsonObject principalOf(Sessions.Session s) {
    return Principal.toJson(s.user, s.role, s.proof);
  }

  /** A request let in: the body to forward (or answer) and the session it runs in (null for public ops). */
  public record Admitted(JsonObject body, Sessions.Session session) {}

  /**
   * Lets a request in or refuses it.
   *
   * @throws HsmException NOT_AUTHENTICATED or ACCESS_DENIED
   */
  public Admitted admit(Op op, JsonObject received) {
    JsonObject body = received.copy();
    Object token = body.remove("session");
    body.remove(Principal.FIELD);
    body.remove("quorumDocument");
    body.remove("mfaChallenge");
    body.remove("quorumNonce");
    if (Access.isPublic(op)) {
      return new Admitted(body, null);
    }
    Sessions.Session s = sessions.use(token);
    if (s == null) {
      throw new HsmException(ErrorCode.NOT_AUTHENTICATED, "not logged in or the session expired: log in"
          + " (auth.login, hsmbridge login) and send the session token with each request");
    }
    if (!Access.allows(op, s.role)) {
      LOG.info(() -> "access denied: user " + s.user + " (" + s.role + ") may not " + op.wire());
      throw new HsmException(ErrorCode.ACCESS_DENIED, "access denied: role " + s.role + " may not " + op.wire()
          + " (allowed for " + Access.rolesFor(op) + ")");
    }
    body.put(Principal.FIELD, Principal.toJson(s.user, s.role, s.proof));
    return new Admitted(body, s);
  }

  /** Answers the operation that lives in the front door: who-am-I. */
  public JsonObject answer(Op op, Admitted a) {
    switch (op) {
      case AUTH_WHOAMI:
        return new JsonObject().put("user", a.session().user).put("role", a.session().role.name())
            .put("expiresAt", sessions.expiresAt(a.session()));
      default:
        throw new HsmException(ErrorCode.UNKNOWN_OPERATION, "unknown operation " + op.wire());
    }
  }

  /**
   * After an agent answered successfully: a login check becomes a session; an activation ends every
   * PRECO session; a deleted user's sessions end.
   */
  public JsonObject succeeded(Op op, Admitted a, JsonObject reply) {
    switch (op) {
      case AUTH_LOGIN: {
        String user = reply.getString("user");
        Role role = Role.valueOf(reply.getString("role"));
        // The session token carries the agent's session proof (Sessions): any front door can take it, and
        // only the agents can tell whether it is (still) valid.
        Sessions.Session s = sessions.open(user, role, reply.getJsonObject(Principal.PROOF));
        return new JsonObject().put("session", s.token).put("user", user).put("role", role.name())
            .put("expiresAt", sessions.expiresAt(s)).put("idleTimeoutSeconds", sessions.idleSeconds())
            .put("servedBy", reply.getString("servedBy"));
      }
      case AUTH_LOGOUT:
        // Recorded in the cluster's log by the agent: refused everywhere from now on; forgotten here.
        sessions.close(a.session());
        return new JsonObject().put("loggedOut", true);
      case CLUSTER_ACTIVATE:
        sessions.closeRole(Role.PRECO);
        return reply;
      case USER_DELETE:
        String deleted = a.body().getValue("name") instanceof String n && UserRecord.isValidName(n) ? UserRecord.checkName(n) : "";
        sessions.closeUser(deleted);
        return reply;
      default:
        return reply;
    }
  }
}
