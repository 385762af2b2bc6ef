package io.hsmbridge.agent.replication;

import java.util.List;

/**
 * What a {@link TokenStateMachine} reports besides applying mutations, so the node can audit it on its
 * HSM: committed entries it refused, and changes of the group's membership. Called on Ratis's single
 * state-machine thread, in log order, on every HSM; an implementation must not block for long and must
 * not throw (what it throws is logged and ignored).
 */
public interface LogEvents {
  /** Reports nothing. */
  LogEvents NONE = new LogEvents() {
    @Override
    public void refused(long index, String kind, String reason) {}

    @Override
    public void configurationChanged(long index, List<String> peers, List<String> oldPeers) {}
  };

  /**
   * A committed entry this HSM skipped because it cannot be applied anywhere (it does not decode, or the
   * applier refused it with {@link RefusedEntryException}).
   *
   * @param kind the entry's mutation kind, or "unknown" when it does not decode
   * @param reason why; holds no secret and no entry bytes
   */
  void refused(long index, String kind, String reason);

  /**
   * The group's membership changed at {@code index} (applied on this HSM).
   *
   * @param peers the new membership's HSM ids, sorted
   * @param oldPeers during a change, the previous membership (a joint configuration); else empty
   */
  void configurationChanged(long index, List<String> peers, List<String> oldPeers);
}
