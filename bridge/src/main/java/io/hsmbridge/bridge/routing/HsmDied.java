package io.hsmbridge.bridge.routing;

/** The HSM an attempt was sent to stopped sending heartbeats before it answered. */
final class HsmDied extends RuntimeException {
  HsmDied(String hsmId) {
    super("HSM " + hsmId + " stopped answering", null, false, false);
  }
}
