package io.hsmbridge.agent.replication;

/**
 * An {@link Applier}'s deterministic refusal of a committed entry: every HSM, holding the same state at
 * the same log index, refuses it the same way (for example an entry whose acting principal is not
 * authorized for it). The state machine then skips the entry on every HSM — the applied index moves
 * past it, the refusal is logged, counted and audited — instead of stopping the peer. Anything else an
 * applier throws (a token error, an HSM that died mid-call) is not deterministic and still stops the
 * peer, so that the entry is retried rather than lost.
 *
 * <p>The reason goes to logs, heartbeats and the audit log: it must never hold a secret (no password
 * hash, no key material, no entry bytes).
 */
public final class RefusedEntryException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** @param reason why the entry cannot be applied anywhere; holds no secret */
  public RefusedEntryException(String reason) {
    super(reason, null, false, false);
  }
}
