package io.hsmbridge.agent.node;

import io.vertx.core.Vertx;

/**
 * Starts the front door (sessions, routing, durability, and its client endpoint) in an HSM host's process,
 * for an agent with {@code frontDoor.enabled}. The front door lives in the bridge module, which depends on
 * this one: its process entry point ({@code io.hsmbridge.bridge.NodeMain}) hands {@link AgentNode} this
 * interface, so the agent starts the front door at the right moment (once its HSM serves) without
 * depending on it.
 */
@FunctionalInterface
public interface FrontDoorStarter {
  /**
   * Starts the front door on the node's Vert.x and blocks until it listens.
   *
   * @return where it listens, as endpoint.json says it
   * @throws io.hsmbridge.pkcs11.HsmException when it cannot serve clients (the message says where)
   */
  FrontDoorEndpoint start(Vertx vertx);
}
