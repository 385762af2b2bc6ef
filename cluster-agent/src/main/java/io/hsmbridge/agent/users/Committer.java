package io.hsmbridge.agent.users;

import io.hsmbridge.agent.replication.Mutation;

/**
 * Commits a mutation through the cluster's log for a principal and returns its sequence once it is
 * applied on this HSM (throws KEY_AVAILABILITY when it cannot, ACCESS_DENIED when the cluster refused it).
 */
@FunctionalInterface
public interface Committer {
  /**
   * @param by the user the request runs for (its session proof goes into the entry), or null for an
   *     entry this agent makes on its own (login bookkeeping, repairs)
   */
  long commit(Principal by, Mutation m);
}
