package io.hsmbridge.bridge.endpoint;

import java.util.EnumMap;
import java.util.Map;
import java.util.logging.Logger;

/**
 * What the endpoint logs about refused and closed connections: sizes, frame types, remote addresses and
 * reasons, never a byte of a frame's content (nor an exception's message: a TLS decoder's message holds
 * a hex dump of what a plaintext client sent). Rate-limited, so that a flood cannot flood the log: the
 * first {@value #LINES_PER_WINDOW} lines of each kind in a {@value #WINDOW_MS} ms window, then one
 * summary line per kind. Thread-safe.
 */
final class EndpointLog {
  /** Kinds of events, each with its own budget. */
  enum Kind { REFUSED, OVERSIZED, PROTOCOL, TLS, TIMEOUT }

  static final int LINES_PER_WINDOW = 10;
  static final long WINDOW_MS = 10_000;

  private final Logger log;
  private final Map<Kind, Integer> logged = new EnumMap<>(Kind.class);
  private final Map<Kind, Integer> suppressed = new EnumMap<>(Kind.class);
  private long windowStart = System.currentTimeMillis();

  EndpointLog(Logger log) {
    this.log = log;
  }

  void refused(ConnectionLimits.Refusal why, String address) {
    line(Kind.REFUSED, "refused a connection from " + address + ": "
        + (why == ConnectionLimits.Refusal.ENDPOINT_FULL ? "bridge.tcp.maxConnections reached"
            : "bridge.tcp.maxConnectionsPerAddress reached for this address"));
  }

  void event(Kind kind, String message) {
    line(kind, message);
  }

  private synchronized void line(Kind kind, String message) {
    rollWindow();
    int n = logged.getOrDefault(kind, 0);
    if (n < LINES_PER_WINDOW) {
      logged.put(kind, n + 1);
      log.warning("client endpoint: " + message);
    } else {
      suppressed.merge(kind, 1, Integer::sum);
    }
  }

  /** Called by the sweep: says how many lines each kind left out once its window ended. */
  synchronized void flushSummaries() {
    rollWindow();
  }

  private void rollWindow() {
    long now = System.currentTimeMillis();
    if (now - windowStart < WINDOW_MS) {
      return;
    }
    for (Map.Entry<Kind, Integer> e : suppressed.entrySet()) {
      log.warning("client endpoint: " + e.getValue() + " more event(s) of kind " + e.getKey()
          + " in the last " + (now - windowStart) / 1000 + " s (not logged one by one)");
    }
    suppressed.clear();
    logged.clear();
    windowStart = now;
  }
}
