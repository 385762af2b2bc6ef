package io.hsmbridge.agent.membership;

import io.hsmbridge.protocol.Addresses;
import java.util.function.Predicate;

/**
 * Which members may consume and send to hsmbridge's own event-bus addresses, by the kind in their certificate.
 * Vert.x spreads a request over every consumer of its address, and the event bus does not say who sent a
 * message: so the membership refuses a state that consumes an address its member may not consume
 * ({@link CertifiedClusterManager}), and each member's {@link EventBusGuard} refuses a frame to an address its
 * link's member may not send to.
 *
 * <ul>
 *   <li><b>Agents</b> (HSM hosts): anything.</li>
 *   <li><b>Front doors</b> (the bridge, a DMZ front door): not the cluster-key address (an agent there wraps
 *       the cluster key to the public key in the request: a front door asking with a key of its own would read
 *       it; a front door answering could hand a joiner a key of its choosing), not an agent's address (it would
 *       receive other front doors' requests, logins included), and no heartbeats (the routing trusts them).</li>
 *   <li><b>Applications</b> (and any other kind): none of hsmbridge's addresses, except sending requests to the
 *       front doors' client address.</li>
 * </ul>
 */
final class AddressPolicy {
  /** hsmbridge's own addresses ({@link Addresses}). */
  static final String RESERVED_PREFIX = "hsmbridge.";

  private AddressPolicy() {}

  /** Null when a member of {@code kind} may consume {@code address}, else why not. */
  static String mayConsume(ClusterCa.MemberKind kind, String address) {
    if (!address.startsWith(RESERVED_PREFIX) || kind == ClusterCa.MemberKind.AGENT) {
      return null;
    }
    if (kind == ClusterCa.MemberKind.FRONT_DOOR) {
      return address.equals(Addresses.CLUSTER_KEY) || Addresses.isAgentAddress(address)
          ? "a front door may not consume " + address + " (agents only)" : null;
    }
    return "an application member may not consume " + address + ": hsmbridge's own addresses (" + RESERVED_PREFIX
        + "*) are consumed by agents and front doors only";
  }

  /** Where a link of a member of {@code kind} may send frames; null: anywhere. */
  static Predicate<String> sendRule(ClusterCa.MemberKind kind) {
    if (kind == ClusterCa.MemberKind.AGENT) {
      return null;
    }
    if (kind == ClusterCa.MemberKind.FRONT_DOOR) {
      return address -> !address.equals(Addresses.CLUSTER_KEY) && !address.equals(Addresses.HEARTBEAT);
    }
    return address -> !address.startsWith(RESERVED_PREFIX) || address.equals(Addresses.CLIENT_REQUEST);
  }
}
