package io.hsmbridge.bridge.endpoint;

import java.util.HashMap;
import java.util.Map;

/**
 * Counts open connections, in all and per remote IP address, and admits a new one only under both caps.
 * Thread-safe (synchronized: connections of several event loops share one instance); the map holds only
 * addresses with a connection open, so it is bounded by the endpoint cap.
 */
final class ConnectionLimits {
  /** Why a connection was not admitted. */
  enum Refusal { ENDPOINT_FULL, ADDRESS_FULL }

  private final int max;
  private final int perAddress;
  private final Map<String, Integer> byAddress = new HashMap<>();
  private int open;

  ConnectionLimits(int max, int perAddress) {
    this.max = max;
    this.perAddress = perAddress;
  }

  /** Admits a connection from {@code address} (counted until {@link #release}), or says why not. */
  synchronized Refusal admit(String address) {
    if (open >= max) {
      return Refusal.ENDPOINT_FULL;
    }
    int n = byAddress.getOrDefault(address, 0);
    if (n >= perAddress) {
      return Refusal.ADDRESS_FULL;
    }
    byAddress.put(address, n + 1);
    open++;
    return null;
  }

  /** Releases a connection {@link #admit} admitted; exactly once per admitted connection. */
  synchronized void release(String address) {
    Integer n = byAddress.get(address);
    if (n == null) {
      return;
    }
    if (n <= 1) {
      byAddress.remove(address);
    } else {
      byAddress.put(address, n - 1);
    }
    open--;
  }

  synchronized int open() {
    return open;
  }
}
