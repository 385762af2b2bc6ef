package io.hsmbridge.bridge.routing;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * What the bridge knows of one HSM: its last heartbeat (state, applied sequence, objects, capacity, last
 * error, Raft peers) and the bridge's own view of its load (requests in flight, measured service time).
 * Touched only on the bridge's event loop.
 */
final class HsmView {
  /** Weight of the newest sample in the service-time average. */
  private static final double EWMA_ALPHA = 0.2;
  /** Share of the gap to the best estimate an idle HSM's estimate loses per sweep (200 ms). */
  private static final double AGING = 0.3;

  final String hsmId;
  String agentState = "STARTING";
  long applied;
  int objects;
  int capacity = 1;
  /** Making a backup (from its heartbeat): routed around while another HSM can serve. */
  volatile boolean backingUp;
  /** The backup this HSM is making and how far it got ({backupId, wrapped, keys}), or null. */
  volatile JsonObject backup;
  int agentOutstanding;
  String lastError;
  /** Committed log entries the HSM skipped as refused since its start, and the last one (see TokenStateMachine). */
  long refusedEntries;
  String lastRefusal;
  String token;
  long pid;
  JsonArray peers = new JsonArray();
  /** Where this run of the agent listens (from its heartbeat); the plain per-HSM address until then. */
  String address;
  boolean leader;
  long lastHeartbeatNanos;
  /** When this run of the agent was first seen SERVING (0: not serving); see {@link #warmingUp}. */
  long servingSinceNanos;
  boolean alive;
  boolean draining;
  /** Requests this bridge has sent to the HSM and not yet seen answered. */
  final Set<Attempt> inFlight = new LinkedHashSet<>();
  /** Exponentially weighted mean service time (µs); starts neutral so a new HSM is tried. */
  double serviceMicros = 1000;

  HsmView(String hsmId) {
    this.hsmId = hsmId;
    this.address = io.hsmbridge.protocol.Addresses.agent(hsmId);
  }

  /** {@code host:port} of the client endpoint of this HSM's host, when it is a front door too; else null. */
  volatile String frontDoor;

  /** This HSM has applied at least {@code seq} (its heartbeat said so, or it answered after applying it). */
  void sawApplied(long seq) {
    if (seq > applied) {
      applied = seq;
    }
  }

  /**
   * How long after its member left the cluster a heartbeat of the same run is taken for a late one (sent
   * before the process died, read after its link closed) and ignored. A run that comes back later (it was
   * paused or cut off, not killed, and joined the membership again) is heard again.
   */
  static final long LATE_HEARTBEAT_NANOS = 1_000_000_000L;

  /** When the member serving {@link #address} left the cluster (0: it did not). */
  long departedNanos;

  void heartbeat(JsonObject hb, long now) {
    String announcedRun = hb.getString("address");
    if (departedNanos != 0 && now - departedNanos < LATE_HEARTBEAT_NANOS
        && (announcedRun == null || announcedRun.equals(address))) {
      return; // a late word of the run that left
    }
    departedNanos = 0;
    lastHeartbeatNanos = now;
    alive = true;
    Long a = hb.getLong("applied");
    if (a != null) {
      sawApplied(a);
    }
    if (!hb.containsKey("state")) {
      return; // a progress notice (applied only), sent after each applied mutation
    }
    agentState = hb.getString("state");
    if (!"SERVING".equals(agentState)) {
      servingSinceNanos = 0;
    } else if (servingSinceNanos == 0) {
      servingSinceNanos = now;
    }
    String announced = hb.getString("address");
    if (announced != null && announced.startsWith(io.hsmbridge.protocol.Addresses.agent(hsmId) + ".")
        && !announced.equals(address)) {
      // A new run of the agent: its applied index starts again from what its token holds (0 after a
      // quarantine, which replays the log), so the old run's higher index must not count toward durability.
      address = announced;
      applied = hb.getLong("applied", 0L);
      servingSinceNanos = "SERVING".equals(agentState) ? now : 0;
    }
    objects = hb.getInteger("objects", objects);
    capacity = Math.max(1, hb.getInteger("capacity", capacity));
    agentOutstanding = hb.getInteger("outstanding", 0);
    lastError = hb.getString("lastError");
    backingUp = hb.getBoolean("backingUp", false);
    backup = backupProgress(hb.getValue("backup"));
    refusedEntries = hb.getLong("refusedEntries", 0L);
    lastRefusal = hb.getString("lastRefusal");
    token = hb.getString("token", token);
    String door = hb.getString("frontDoor");
    frontDoor = door != null && door.length() <= 300 && door.matches("[A-Za-z0-9.:\\[\\]_-]+:[0-9]{1,5}") ? door : null;
    pid = hb.getLong("pid", pid);
    leader = hb.getBoolean("leader", false);
    JsonArray p = hb.getJsonArray("peers");
    if (p != null) {
      peers = p;
    }
  }

  /**
   * How long an HSM that has just started serving gets no mutation while another HSM can take it. Measured
   * (FrontDoorsTest, 2 cores): an agent seconds after its restart took 4.5-7.7 s to apply its own creation,
   * already committed by the others, and its front door waited for it; the JIT and the token's caches
   * are cold, and its applier lags.
   */
  static final long WARM_UP_NANOS = 10_000_000_000L;

  /** Whether this HSM started serving less than {@link #WARM_UP_NANOS} ago. */
  boolean warmingUp(long now) {
    return servingSinceNanos != 0 && now - servingSinceNanos < WARM_UP_NANOS;
  }

  boolean serving() {
    return alive && !draining && "SERVING".equals(agentState);
  }

  /** The state shown to operators. */
  String state() {
    if (!alive) {
      return "UNHEALTHY";
    }
    return draining ? "DRAINING" : agentState;
  }

  /** Expected time until a new request here completes: queue length times measured speed, per worker. */
  double expectedWaitMicros() {
    return (inFlight.size() + 1) * serviceMicros / capacity;
  }

  void recordServiceTime(long micros) {
    serviceMicros = (1 - EWMA_ALPHA) * serviceMicros + EWMA_ALPHA * Math.max(1, micros);
  }

  /**
   * Moves an idle HSM's estimate a step toward {@code best}. The estimate only changes when the HSM serves,
   * and least-expected-wait gives no request to an HSM that once measured slow (a cold JVM after a restart,
   * a busy moment) while the others keep up: without this it never gets the chance to show it is fast
   * again (ClusterScenarioTest saw a restarted HSM serve 1 request of thousands). A really slow HSM is
   * pushed back up by its next samples.
   */
  void ageToward(double best) {
    if (inFlight.isEmpty() && serviceMicros > best) {
      serviceMicros -= (serviceMicros - best) * AGING;
    }
  }

  JsonObject toJson(long now) {
    return new JsonObject()
        .put("hsmId", hsmId)
        .put("state", state())
        .put("applied", applied)
        .put("objects", objects)
        .put("outstanding", inFlight.size())
        .put("capacity", capacity)
        .put("serviceMicros", Math.round(serviceMicros))
        .put("lastError", lastError)
        .put("refusedEntries", refusedEntries)
        .put("lastRefusal", lastRefusal)
        .put("heartbeatAgeMs", lastHeartbeatNanos == 0 ? null : (now - lastHeartbeatNanos) / 1_000_000)
        .put("token", token)
        .put("pid", pid)
        .put("leader", leader)
        .put("frontDoor", frontDoor)
        .put("backup", backup);
  }

  /**
   * A heartbeat's backup progress, kept only in its documented shape (it reaches an operator's terminal
   * through {@code cluster status} and {@code backup create}'s progress bar); anything else is dropped.
   */
  static JsonObject backupProgress(Object value) {
    if (!(value instanceof JsonObject p) || p.size() != 3) {
      return null;
    }
    Object id = p.getValue("backupId");
    Object wrapped = p.getValue("wrapped");
    Object keys = p.getValue("keys");
    if (!(id instanceof String s) || !s.matches("backup-[a-z2-7]{11,16}") || !(wrapped instanceof Integer w)
        || !(keys instanceof Integer k) || w < 0 || k < 0 || w > k) {
      return null;
    }
    return new JsonObject().put("backupId", s).put("wrapped", w).put("keys", k);
  }
}
