package io.hsmbridge.pkcs11;

/**
 * Told before the token rewrites an object that already exists in place (C_SetAttributeValue on a key), and
 * after. On SoftHSM2 such a write truncates the object's file and writes it again: a crash in between loses
 * the whole object, an old key included, and the start-up {@link IntegrityScan} can only say that an empty
 * file was moved away, not whose it was. Every other write of this project makes a new object (and destroys
 * the old one afterwards) or rewrites an applied-index slot, whose loss costs one entry applied again; so a
 * start that quarantined a file while no rewrite was open knows that nothing an applied entry made was lost
 * (cluster-agent's AgentNode then re-applies from the token's applied index, not from the log's start).
 */
public interface RewriteJournal {
  /** A journal that records nothing: a token outside a cluster agent. */
  RewriteJournal NONE = what -> () -> { };

  /**
   * Records, durably, that an in-place rewrite of {@code what} begins; the returned scope's close records
   * that it ended (or failed: a failed write leaves the object as it was, or the crash rule applies).
   *
   * @param what what is rewritten, for the log (a key id, never a secret)
   */
  Scope begin(String what);

  /** An open rewrite. */
  interface Scope extends AutoCloseable {
    @Override
    void close();
  }
}
