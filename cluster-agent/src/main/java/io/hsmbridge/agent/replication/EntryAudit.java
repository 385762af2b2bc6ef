package io.hsmbridge.agent.replication;

/**
 * Where an HSM records every log entry it applied or refused (its audit log: {@code AuditWriter::append}
 * has this shape). Called on the state machine's thread, in log order; must not block for long.
 */
@FunctionalInterface
public interface EntryAudit {
  /** Records nothing (tests of the apply mechanics). */
  EntryAudit NONE = (user, role, op, target, result) -> { };

  /**
   * @param user the entry's principal (an HSM id for an agent's own entries), or "-" for a format-1 entry
   * @param role PRECO, CO, CU or AGENT, or "-"
   * @param op {@code log.<KIND>}
   * @param target the key id, user name or setting name the entry touches
   * @param result {@code OK@<index>} or {@code REFUSED@<index>: <reason>}
   */
  void record(String user, String role, String op, String target, String result);
}
