package io.hsmbridge.agent.audit;

import io.hsmbridge.agent.replication.LogEvents;
import io.hsmbridge.agent.replication.TokenStateMachine;
import java.util.List;

/**
 * Puts what the mutation log reports into this HSM's audit log: a committed entry every HSM refused
 * ({@value #REFUSED}: index, kind and reason, never the entry's bytes) and a change of the Raft group's
 * membership ({@value #MEMBERSHIP}). Every HSM applies the same log, so every HSM's audit log holds the
 * same lines. They are written by the cluster itself, not on a user's behalf: user and role are "-".
 */
public final class LogEventAudit implements LogEvents {
  static final String REFUSED = "raft.refused";
  static final String MEMBERSHIP = "raft.membership";

  private final AuditWriter audit;

  public LogEventAudit(AuditWriter audit) {
    this.audit = audit;
  }

  /**
   * Audits an entry that did not decode. An entry that decoded and was refused by the applier is audited by
   * the applier itself ({@code TokenApplier}, with the principal it claimed): one line per refusal.
   */
  @Override
  public void refused(long index, String kind, String reason) {
    if (!TokenStateMachine.UNDECODED.equals(kind)) {
      return;
    }
    audit.append(AuditingHandler.NO_USER, AuditingHandler.NO_USER, REFUSED, null,
        "REFUSED entry " + index + " (" + kind + "): " + reason);
  }

  @Override
  public void configurationChanged(long index, List<String> peers, List<String> oldPeers) {
    audit.append(AuditingHandler.NO_USER, AuditingHandler.NO_USER, MEMBERSHIP, null,
        "entry " + index + ": " + String.join(",", peers) + (oldPeers.isEmpty() ? "" : " (from " + String.join(",", oldPeers) + ")"));
  }
}
