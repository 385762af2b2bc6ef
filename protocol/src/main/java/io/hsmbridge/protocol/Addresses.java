package io.hsmbridge.protocol;

/**
 * Every event-bus address hsmbridge uses, in one place. The version segment lets a later protocol
 * live beside this one during a rolling upgrade.
 */
public final class Addresses {
  public static final String PREFIX = "hsmbridge.v1.";

  /** The bridge's client-facing address: every client request goes here. */
  public static final String BRIDGE_REQUEST = PREFIX + "request";

  /**
   * The front doors' address on the cluster's event bus, for a Vert.x application that is a member of the
   * cluster (docs/java.md, "On the cluster's event bus"): every front door consumes it, so Vert.x spreads the
   * requests over them and a front door that leaves is simply no longer chosen. The same requests and replies
   * as {@link #BRIDGE_REQUEST} over TCP; a request still needs a user's session.
   */
  public static final String CLIENT_REQUEST = PREFIX + "client";

  /** Agents publish their heartbeat (state, applied sequence, load) here; bridges listen. */
  public static final String HEARTBEAT = PREFIX + "heartbeat";

  /**
   * Front doors publish here, every second, which sessions they served lately and when (digests of the
   * tokens, never the tokens): a session's idle limit then counts its use at any front door.
   */
  public static final String SESSIONS_USED = PREFIX + "sessions.used";

  /** Agents that hold the cluster key answer joiners' requests for it here (wrapped to the joiner's transport key). */
  public static final String CLUSTER_KEY = PREFIX + "cluster.key";

  private static final String AGENT_PREFIX = PREFIX + "agent.";

  private Addresses() {}

  /**
   * The address of one run of an HSM's agent: its id plus a random incarnation, announced in its
   * heartbeats. A SIGKILLed agent's registration lingers in the cluster's routing table until Hazelcast
   * notices the member is gone; a restarted agent registering the same plain address got half the
   * requests sent into the dead registration (measured: a creation timed out after 30 s). Per-run
   * addresses make the bridge reach exactly the process that sent the last heartbeat.
   */
  public static String agentIncarnation(String hsmId, String incarnation) {
    if (incarnation == null || !incarnation.matches("[A-Za-z0-9-]{1,64}")) {
      throw new IllegalArgumentException("invalid incarnation");
    }
    return agent(hsmId) + "." + incarnation;
  }

  /** Whether {@code address} is an agent's (of any HSM, any run): only agents may consume such an address. */
  public static boolean isAgentAddress(String address) {
    return address.startsWith(AGENT_PREFIX);
  }

  /** The address of the agent that owns the HSM with this id. */
  public static String agent(String hsmId) {
    if (hsmId == null || !hsmId.matches("[A-Za-z0-9_-]{1,64}")) {
      throw new IllegalArgumentException("invalid hsm id");
    }
    return AGENT_PREFIX + hsmId;
  }
}
