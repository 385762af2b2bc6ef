package io.hsmbridge.agent.replication;

/**
 * A committed log entry that an HSM refuses to apply: its principal is not authorised for it at that
 * log index, its proof does not verify, or it cannot be applied at all. Every HSM decides alike (from the
 * entry and the token's state at that index only), so every HSM skips it; the state machine counts and
 * reports it instead of stopping. The reason names kinds, users and key ids, never a secret.
 */
public final class RefusedEntryException extends RuntimeException {
  public RefusedEntryException(String reason) {
    super(reason);
  }
}
