package io.hsmbridge.agent.audit;

import io.hsmbridge.pkcs11.HsmToken;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Clock;

/**
 * The first line of a restored HSM's audit log ({@value #OP}): a restore runs before any cluster exists (no
 * user, no front door, no Raft log), so it cannot be audited as a request. The restore step writes it itself,
 * chained and anchored in the new token like every later line, so the new cluster's audit trail starts with
 * where its keys came from: the backup, its index and counts, and the recovery key that released the PBK.
 * Written by whoever runs the host, not by a cluster user: user and role are {@value AuditingHandler#NO_USER}.
 */
public final class RestoreAudit {
  public static final String OP = "backup.restore";

  private RestoreAudit() {}

  /**
   * Appends the restore's line to {@code file} (created when missing) with {@code token}'s audit key, and
   * records it in the token's anchor, so that the agent that opens the log next continues this chain.
   *
   * @param what the line's result field, e.g. "OK backup b-... index 42: 10 keys, 3 users, ..."
   * @return the line as written
   */
  public static JsonObject write(Path file, HsmToken token, String hsmId, String what) {
    AuditLog log = AuditLog.open(file, token.auditKey()::mac, Clock.systemUTC(),
        AuditLog.AnchorStore.in(token.auditAnchor()), hsmId);
    try {
      JsonObject line = log.append(AuditingHandler.NO_USER, AuditingHandler.NO_USER, OP, null, what);
      log.flush();
      log.anchor();
      return line;
    } finally {
      log.close();
    }
  }
}
