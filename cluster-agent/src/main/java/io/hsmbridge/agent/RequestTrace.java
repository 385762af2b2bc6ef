package io.hsmbridge.agent;

/**
 * The phases of the request the current worker thread executes, with their times, for the slow-request
 * log line ({@link AgentVerticle}): which part of a slow request took the time (the session check, the
 * token, the commit, waiting for this HSM to apply it). Holds phase names only, never request data.
 */
public final class RequestTrace {
  private static final ThreadLocal<RequestTrace> CURRENT = ThreadLocal.withInitial(RequestTrace::new);

  private final StringBuilder phases = new StringBuilder();
  private long start;

  private RequestTrace() {}

  /** Starts the current thread's trace. */
  static void begin() {
    RequestTrace t = CURRENT.get();
    t.phases.setLength(0);
    t.start = System.nanoTime();
  }

  /** Records that {@code phase} ended now. */
  public static void mark(String phase) {
    RequestTrace t = CURRENT.get();
    if (t.phases.length() < 512) {
      t.phases.append(", ").append(phase).append(" +").append((System.nanoTime() - t.start) / 1_000_000).append(" ms");
    }
  }

  /** The current thread's phases so far ("" when none). */
  static String phases() {
    return CURRENT.get().phases.toString();
  }
}
