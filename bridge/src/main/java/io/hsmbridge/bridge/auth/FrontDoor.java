package io.hsmbridge.bridge.auth;

import io.hsmbridge.agent.users.Principal;
import io.hsmbridge.agent.users.RequestHash;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.Access;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Op;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonObject;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import java.util.EnumSet;
import java.util.Set;
import java.util.function.LongSupplier;
import java.util.logging.Logger;

/**
 * Authentication and authorisation at the cluster's front door (docs/users.md). For every request it
 * takes the {@code session} token out of the body, checks the session and the role against
 * {@link Access}, and forwards the body with the {@link Principal} the agents trust; it answers the
 * session and quorum-token operations itself and turns an agent's successful login check into a
 * session, keeping the session proof the agent issued (it goes with the principal to the agents, which
 * check it, and into every log entry the request makes; the client never sees it). Fields only the
 * bridge may set ({@code principal}, {@code quorumDocument},
 * {@code quorumNonce}, {@code mfaChallenge}) are always removed from what a client sent. Event-loop confined.
 */
public final class FrontDoor {
  private static final Logger LOG = Logger.getLogger(FrontDoor.class.getName());
  private static final Duration CHALLENGE_TTL = Duration.ofMinutes(2);
  static final int DEFAULT_QUORUM_TTL_SECONDS = 600;
  static final int MAX_QUORUM_TTL_SECONDS = 3600;
  /** What a quorum can protect (admin services, key management, key usage). */
  static final Set<Op> QUORUM_OPS = EnumSet.of(Op.USER_CREATE, Op.USER_DELETE, Op.USER_CHANGE_PASSWORD, Op.QUORUM_SET,
      Op.KEY_DELETE, Op.KEY_SET_LABEL, Op.KEY_WRAP, Op.KEY_SHARE, Op.KEY_UNSHARE, Op.KEY_SET_QUORUM, Op.ENCRYPT,
      Op.DECRYPT, Op.SIGN, Op.VERIFY, Op.MAC, Op.MAC_VERIFY);
  private static final SecureRandom RANDOM = new SecureRandom();

  private final Sessions sessions;
  private final OneTimeTokens<byte[]> challenges;
  private final OneTimeTokens<QuorumTicket> quorumTokens;

  /** A quorum token as the bridge keeps it: the signed document and the key of its operation fingerprint. */
  private record QuorumTicket(String document, byte[] nonce) {}
  /** Quorum tokens taken by requests still running, by id (see {@link #attachQuorumDocument}). */
  private final java.util.Map<String, OneTimeTokens.Issued<QuorumTicket>> inFlight = new java.util.HashMap<>();
  private final LongSupplier clock;

  public FrontDoor(Duration sessionIdle, Duration sessionMax, LongSupplier clockMillis) {
    this.sessions = new Sessions(sessionIdle, sessionMax, clockMillis);
    this.challenges = new OneTimeTokens<>(clockMillis);
    this.quorumTokens = new OneTimeTokens<>(clockMillis);
    this.clock = clockMillis;
  }

  /**
   * The session of a token this front door does not hold yet but that carries its proof: the caller has
   * an agent verify it ({@code agent.verifySession}) and then {@link #adopt}s it. Null when there is
   * nothing to verify (no such token, or one already held).
   */
  public Sessions.Session unverified(Object token) {
    return sessions.unverified(token);
  }

  /** Holds a session an agent verified (see {@link #unverified}). */
  public void adopt(Sessions.Session s) {
    sessions.adopt(s);
  }

  /** An agent refused {@code s}: its token is refused here for a while without asking again. */
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
   * @throws HsmException NOT_AUTHENTICATED, ACCESS_DENIED or QUORUM_NOT_MET
   */
  public Admitted admit(Op op, JsonObject received) {
    JsonObject body = received.copy();
    Object token = body.remove("session");
    body.remove(Principal.FIELD);
    body.remove("quorumDocument");
    body.remove("mfaChallenge");
    body.remove("quorumNonce");
    if (Access.isPublic(op)) {
      if (op == Op.AUTH_LOGIN) {
        attachChallenge(body);
      }
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
    if (body.getValue("quorum") != null) {
      attachQuorumDocument(body, s);
    }
    return new Admitted(body, s);
  }

  private void attachChallenge(JsonObject body) {
    Object mfa = body.getValue("mfa");
    if (mfa instanceof JsonObject m && body.getValue("user") instanceof String user && UserRecord.isValidName(user)) {
      StringBuilder why = new StringBuilder();
      // Taken at admission: of parallel logins presenting one challenge, only the first carries it.
      OneTimeTokens.Issued<byte[]> c = challenges.take(m.getValue("challengeId"), UserRecord.checkName(user), why);
      if (c != null) {
        body.put("mfaChallenge", Base64.getEncoder().encodeToString(c.payload()));
      }
    }
  }

  private void attachQuorumDocument(JsonObject body, Sessions.Session s) {
    Object q = body.getValue("quorum");
    Object id = q instanceof JsonObject j ? j.getValue("tokenId") : null;
    StringBuilder why = new StringBuilder();
    // Taken here, at admission, not after the operation succeeded: of N requests presenting one token at
    // once, exactly one is let in (this class is event-loop confined, so taking it is atomic); the others
    // are refused (474, "unknown or already used"). Given back only when the agent refused the approvals
    // (QUORUM_NOT_MET: nothing ran), so a missing approval can still be added; any other end uses it up.
    OneTimeTokens.Issued<QuorumTicket> t = quorumTokens.take(id, s.user, why);
    if (t == null) {
      throw new HsmException(ErrorCode.QUORUM_NOT_MET, "quorum token " + why);
    }
    inFlight.values().removeIf(i -> i.expiresAt() <= clock.getAsLong());
    inFlight.put(t.id(), t);
    body.put("quorumDocument", t.payload().document())
        .put("quorumNonce", Base64.getEncoder().encodeToString(t.payload().nonce()));
  }

  /** Answers the operations that live in the bridge: challenge, logout, whoami, quorum.token. */
  public JsonObject answer(Op op, Admitted a) {
    JsonObject body = a.body();
    switch (op) {
      case AUTH_CHALLENGE: {
        String user = body.getValue("user") instanceof String u && UserRecord.isValidName(u) ? UserRecord.checkName(u) : null;
        if (user == null) {
          throw HsmException.badParam("user must match " + UserRecord.NAME_PATTERN);
        }
        byte[] challenge = new byte[32];
        RANDOM.nextBytes(challenge);
        OneTimeTokens.Issued<byte[]> c = challenges.issue(OneTimeTokens.randomId(), user, CHALLENGE_TTL.toMillis(), challenge);
        return new JsonObject().put("challengeId", c.id()).put("challenge", Base64.getEncoder().encodeToString(challenge))
            .put("expiresAt", c.expiresAt());
      }
      case AUTH_WHOAMI:
        return new JsonObject().put("user", a.session().user).put("role", a.session().role.name())
            .put("expiresAt", sessions.expiresAt(a.session()));
      case QUORUM_TOKEN:
        return quorumToken(body, a.session());
      default:
        throw new HsmException(ErrorCode.UNKNOWN_OPERATION, "unknown operation " + op.wire());
    }
  }

  private JsonObject quorumToken(JsonObject body, Sessions.Session s) {
    if (!(body.getValue("operation") instanceof JsonObject operation)) {
      throw HsmException.badParam("operation must be the request body of the operation to approve");
    }
    Op target = operation.getValue("op") instanceof String w ? Op.fromWire(w) : null;
    if (target == null || !QUORUM_OPS.contains(target)) {
      throw HsmException.badParam("operation.op must be one a quorum can protect: " + QUORUM_OPS.stream().map(Op::wire).toList());
    }
    if (!Access.allows(target, s.role)) {
      throw new HsmException(ErrorCode.ACCESS_DENIED, "access denied: role " + s.role + " may not " + target.wire());
    }
    Object ttlValue = body.getValue("ttlSeconds", DEFAULT_QUORUM_TTL_SECONDS);
    if (!(ttlValue instanceof Number n) || n.intValue() < 1 || n.intValue() > MAX_QUORUM_TTL_SECONDS) {
      throw HsmException.badParam("ttlSeconds must be 1.." + MAX_QUORUM_TTL_SECONDS);
    }
    String id = OneTimeTokens.randomId();
    long now = clock.getAsLong();
    long expiresAt = now + n.intValue() * 1000L;
    // The document approvers sign: who asks, for exactly which operation (its fields for people to read,
    // secrets hidden; its keyed fingerprint for the agents to match), until when.
    byte[] nonce = new byte[32];
    RANDOM.nextBytes(nonce);
    String document = new JsonObject().put("tokenId", id).put("requester", s.user).put("op", target.wire())
        .put("operation", RequestHash.forApprovers(operation)).put("requestHash", RequestHash.of(operation, nonce))
        .put("issuedAt", now).put("expiresAt", expiresAt).encode();
    quorumTokens.issue(id, s.user, expiresAt - now, new QuorumTicket(document, nonce));
    return new JsonObject().put("tokenId", id).put("document", document).put("expiresAt", expiresAt);
  }

  /**
   * After a forwarded request failed for good with {@code code} (null: no HSM answered): a quorum token
   * whose approvals the agent refused is given back to its owner, any other failure uses it up.
   */
  public void failed(Admitted a, ErrorCode code) {
    quorumTokenDone(a, code == ErrorCode.QUORUM_NOT_MET);
  }

  private void quorumTokenDone(Admitted a, boolean refusedApprovals) {
    if (a.body().getValue("quorum") instanceof JsonObject q && q.getValue("tokenId") instanceof String id) {
      OneTimeTokens.Issued<QuorumTicket> t = inFlight.remove(id);
      if (t != null && refusedApprovals) {
        quorumTokens.giveBack(t);
      }
    }
  }

  /**
   * After an agent answered successfully: a login check becomes a session; an activation ends every
   * PRECO session; a deleted user's sessions end. (A quorum token was used up at admission.)
   */
  public JsonObject succeeded(Op op, Admitted a, JsonObject reply) {
    quorumTokenDone(a, false);
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
