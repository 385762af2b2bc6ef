package io.hsmbridge.agent.audit;

import io.hsmbridge.agent.RequestHandler;
import io.hsmbridge.agent.users.Principal;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.KeyAcl;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Op;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;

/**
 * Puts every request an agent handles into its HSM's {@link AuditLog}: operation, key id and result
 * (OK or the error code), after the operation ran, whether it succeeded or not. Answers
 * {@code agent.auditVerify} by recomputing the chain with the HSM's audit key.
 *
 * <p>User and role are the request's {@link Principal} (set by the bridge after it checked the session);
 * a login is recorded under the user name it tried (when that is a valid name) and, when it succeeded,
 * the role it got; the members' own calls and public requests are {@value #NO_USER}. Entries never
 * hold request payloads (passwords, plaintexts, signatures, wrapped keys).
 */
public final class AuditingHandler implements RequestHandler {
  static final String NO_USER = "-";

  private final RequestHandler inner;
  private final AuditWriter log;
  private final Path file;
  private final AuditLog.ChainMac mac;

  private final AuditLog.AnchorStore anchor;

  public AuditingHandler(RequestHandler inner, AuditWriter log, Path file, AuditLog.ChainMac mac) {
    this(inner, log, file, mac, AuditLog.AnchorStore.NONE);
  }

  /** @param anchor the token's audit anchor, compared with the file's end by {@code agent.auditVerify} */
  public AuditingHandler(RequestHandler inner, AuditWriter log, Path file, AuditLog.ChainMac mac,
      AuditLog.AnchorStore anchor) {
    this.inner = inner;
    this.log = log;
    this.file = file;
    this.mac = mac;
    this.anchor = anchor;
  }

  @Override
  public boolean waitsOnCluster(JsonObject body) {
    return inner.waitsOnCluster(body);
  }

  @Override
  public JsonObject execute(JsonObject body) {
    // Only known names and well-formed key ids reach the log: it must not carry a caller's arbitrary text.
    String op = body.getValue("op") instanceof String && Op.fromWire((String) body.getValue("op")) != null
        ? (String) body.getValue("op") : "unknown";
    if (Op.AGENT_AUDIT_VERIFY.wire().equals(op)) {
      return verify();
    }
    String keyId = body.getValue("keyId") instanceof String && KeyAcl.isKeyId((String) body.getValue("keyId"))
        ? ((String) body.getValue("keyId")).toLowerCase(java.util.Locale.ROOT) : null;
    Principal p = principalOrNull(body);
    String user = p != null ? p.user() : loginName(op, body);
    String role = p != null ? p.role().name() : NO_USER;
    try {
      JsonObject reply = inner.execute(body);
      String granted = Op.AUTH_LOGIN.wire().equals(op) && reply.getValue("role") instanceof String r ? r : role;
      log.append(user, granted, op, keyId != null ? keyId : reply.getString("keyId"), "OK");
      return reply;
    } catch (HsmException e) {
      log.append(user, role, op, keyId, e.code().name());
      throw e;
    } catch (RuntimeException e) {
      log.append(user, role, op, keyId, ErrorCode.INTERNAL.name());
      throw e;
    }
  }

  private static Principal principalOrNull(JsonObject body) {
    try {
      return Principal.of(body);
    } catch (HsmException e) {
      return null;
    }
  }

  /** The name a login tried, when it is a valid user name (never arbitrary caller text). */
  private static String loginName(String op, JsonObject body) {
    Object user = body.getValue("user");
    return Op.AUTH_LOGIN.wire().equals(op) && user instanceof String u && UserRecord.isValidName(u)
        ? UserRecord.checkName(u) : NO_USER;
  }

  /**
   * The chain recomputed and the file's end compared with the token's anchor (after everything queued is
   * written and anchored); {@code startProblem}: what the agent found at start, which stays reported
   * until the operator has dealt with it (the gap stays in the file too).
   */
  private JsonObject verify() {
    log.sync();
    AuditLog.Report r = AuditLog.verify(file, mac, anchor.read());
    return new JsonObject().put("intact", r.intact() && log.startProblem() == null).put("entries", r.entries())
        .put("badLine", r.badLine()).put("problem", r.problem()).put("lastMac", r.lastMac())
        .put("lastSeq", r.lastSeq()).put("anchorSeq", r.anchorSeq()).put("startProblem", log.startProblem());
  }

  /** What the agent found wrong with its audit log at start (for health and status), or null. */
  public String startProblem() {
    return log.startProblem();
  }
}
