package io.hsmbridge.agent.users;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.pkcs11.UserRecords;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * M-of-N token-sign quorum (docs/users.md): a protected operation runs only when its request carries a
 * quorum token issued for exactly this operation by this requester, unexpired, and approvals — RSA
 * signatures over the token document — from at least M distinct users of the approving role, each
 * checked against the approval key registered in this HSM's user records.
 *
 * <p>The token's document is not kept anywhere: {@link OneTimeCredentials} recomputes it for the request
 * that presents the token (any HSM can), the approvals must sign exactly it, and only then is the token
 * used up through the log, once cluster-wide.
 * Everything that makes the approvals count is checked here, against the users stored in the HSM.
 */
public final class QuorumCheck {
  /** Most approvals a request may carry (bounds the signature checks one request costs). */
  static final int MAX_APPROVALS = 16;

  private QuorumCheck() {}

  /**
   * Returns normally when {@code required} is 1 or less, or the request carries enough valid approvals.
   *
   * @param service what is protected, for messages ("admin services", "key 0a1b... management")
   * @throws HsmException QUORUM_NOT_MET naming what is missing or wrong
   */
  public static void require(JsonObject body, Principal requester, long required, Role approverRole, String service,
      UserRecords users, OneTimeCredentials credentials) {
    if (required <= 1) {
      return;
    }
    Object q = body.getValue("quorum");
    if (!(q instanceof JsonObject)) {
      throw notMet(service + " need " + required + " approvals (quorum): request a quorum token for this operation,"
          + " have it signed by " + required + " " + approverRole + " users, then send it with the approvals");
    }
    OneTimeCredentials.Presented token = credentials.presented(body, requester);
    String document = token.document();
    Object a = ((JsonObject) q).getValue("approvals");
    if (!(a instanceof JsonArray approvals) || approvals.size() > MAX_APPROVALS) {
      throw notMet("approvals must be an array of at most " + MAX_APPROVALS + " {user, signature}");
    }
    Set<String> approvers = new HashSet<>();
    int valid = 0;
    List<String> problems = new ArrayList<>();
    byte[] signed = document.getBytes(StandardCharsets.UTF_8);
    for (int i = 0; i < approvals.size(); i++) {
      Object entry = approvals.getValue(i);
      String user = entry instanceof JsonObject e && e.getValue("user") instanceof String u ? u : null;
      String sig = entry instanceof JsonObject e && e.getValue("signature") instanceof String s ? s : null;
      if (user == null || sig == null || !UserRecord.isValidName(user)) {
        problems.add("approval " + (i + 1) + " is not {user, signature}");
        continue;
      }
      user = UserRecord.checkName(user); // canonical: "Alice" and "alice" are one approver
      if (!approvers.add(user)) {
        throw notMet("user " + user + " approved more than once; approvals must come from distinct users");
      }
      Optional<UserRecord> u = users.get(user);
      if (u.isEmpty() || !approverRole.name().equals(u.get().role())) {
        problems.add(user + " is not a " + approverRole + " user");
      } else if (u.get().locked()) {
        problems.add(user + " is locked");
      } else if (u.get().approvalKeySpki() == null) {
        problems.add(user + " has no registered approval key");
      } else if (!ApprovalKeys.verify(u.get().approvalKeySpki(), signed, decode(sig))) {
        problems.add("the signature of " + user + " does not verify");
      } else {
        valid++;
      }
    }
    if (valid < required) {
      throw notMet(service + " need " + required + " valid approvals, got " + valid
          + (problems.isEmpty() ? "" : ": " + String.join("; ", problems))
          + (valid == 0 && !approvals.isEmpty() ? " (approvals sign the token's document: a token issued for another"
              + " operation, other fields or another requester has another one)" : ""));
    }
    credentials.useUp(requester, token);
  }

  private static byte[] decode(String b64) {
    try {
      return Base64.getDecoder().decode(b64);
    } catch (IllegalArgumentException e) {
      return new byte[0];
    }
  }

  private static HsmException notMet(String message) {
    return new HsmException(ErrorCode.QUORUM_NOT_MET, message);
  }
}
