package io.hsmbridge.agent.replication;

/**
 * What a {@link TokenStateMachine} applies committed mutations to: one HSM's token in production
 * ({@link TokenApplier}), a recording list in tests. No PKCS#11 type crosses this interface.
 *
 * <p>The applier owns the index of the last entry it applied, so that the index can later live inside
 * the token itself (next to the keys it describes) and survive restarts and backups. Entries are handed
 * over strictly in log order, one at a time, from one thread; the state machine calls
 * {@link #apply} and then {@link #applied} for each entry above {@link #lastApplied()}.
 */
public interface Applier {
  /**
   * Applies one committed mutation. Must be idempotent: after a crash between {@code apply} and
   * {@code applied} the same entry is applied again.
   *
   * @param index the entry's Raft log index
   * @throws RuntimeException when the mutation could not be applied; the state machine then stops this
   *     peer rather than skip the entry (see docs/replication.md)
   */
  void apply(long index, Mutation mutation);

  /**
   * Applies one committed entry (the mutation and the principal it acts for). The default applies the
   * mutation alone (test appliers); {@link TokenApplier} first checks that the principal may make it.
   *
   * @throws RefusedEntryException when the entry is refused: the state machine skips it on every HSM
   */
  default void apply(long index, Entry entry) {
    apply(index, entry.mutation());
  }

  /**
   * Runs on the leader before an entry is logged ({@link TokenStateMachine#startTransaction}): refuses what
   * no state could make valid, so that it never reaches the log. Must not depend on the state at any index
   * (entries before it may not be applied yet) and must be thread-safe (it runs beside {@link #apply}). The
   * default admits everything; {@link TokenApplier} refuses entries without a principal or a valid seal.
   *
   * @throws RefusedEntryException when the entry cannot be valid anywhere
   */
  default void admit(Entry entry) {}

  /** The log index of the last applied entry, or 0 (Raft indexes of mutations start above 0) when none. */
  long lastApplied();

  /** Records that the entry at {@code index} has been applied. */
  void applied(long index);

  /**
   * Runs one entry's application and the record of its index ({@code step}: {@link #apply} then
   * {@link #applied}) as one step: a reader that must see the state at exactly one index
   * ({@link TokenApplier#atOneIndex}) never runs in the middle of it. The default just runs it.
   */
  default void step(Runnable step) {
    step.run();
  }
}
