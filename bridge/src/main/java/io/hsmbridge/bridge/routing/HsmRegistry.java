package io.hsmbridge.bridge.routing;

import io.vertx.core.Promise;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Predicate;

/**
 * The bridge's table of HSMs, fed by heartbeats. Decides who is healthy (a heartbeat within
 * {@code deadAfter}), who gets the next request (least expected wait), and when a mutation has reached
 * enough HSMs. Event-loop confined: no locking.
 */
final class HsmRegistry {
  private final Duration deadAfter;
  private final Map<String, HsmView> hsms = new TreeMap<>();
  /** HSMs removed from the cluster: their last heartbeats (until their process stops) are ignored. */
  private final Set<String> removed = new HashSet<>();
  private final List<DurabilityWaiter> waiters = new ArrayList<>();

  HsmRegistry(Duration deadAfter) {
    this.deadAfter = deadAfter;
  }

  /** A mutation waiting to be applied on {@code needed} serving HSMs. */
  private record DurabilityWaiter(long seq, int needed, Promise<Integer> done) {}

  void onHeartbeat(JsonObject hb, long now) {
    String id = hb.getString("hsmId");
    if (id == null || removed.contains(id)) {
      return;
    }
    hsms.computeIfAbsent(id, HsmView::new).heartbeat(hb, now);
    checkWaiters();
  }

  /**
   * Marks HSMs without a recent heartbeat dead and returns those that just died; ages idle HSMs' service
   * time estimates toward the best one ({@link HsmView#ageToward}).
   */
  List<HsmView> sweep(long now) {
    List<HsmView> died = new ArrayList<>();
    for (HsmView v : hsms.values()) {
      if (v.alive && now - v.lastHeartbeatNanos > deadAfter.toNanos()) {
        v.alive = false;
        died.add(v);
      }
    }
    List<HsmView> serving = serving();
    double best = serving.stream().mapToDouble(v -> v.serviceMicros).min().orElse(0);
    serving.forEach(v -> v.ageToward(best));
    return died;
  }

  /**
   * Marks dead, at once, the HSMs whose current run served at one of {@code addresses} (those of a member
   * that left the cluster) and returns those that were alive. A heartbeat of that run in the next
   * {@link HsmView#LATE_HEARTBEAT_NANOS} is a late one and ignored; one after it means the run is back (a
   * paused or cut-off member joins the membership again), a restart announces a new address.
   */
  List<HsmView> left(Set<String> addresses, long now) {
    List<HsmView> died = new ArrayList<>();
    for (HsmView v : hsms.values()) {
      if (addresses.contains(v.address)) {
        v.departedNanos = now;
        if (v.alive) {
          v.alive = false;
          died.add(v);
        }
      }
    }
    return died;
  }

  Collection<HsmView> all() {
    return hsms.values();
  }

  HsmView get(String hsmId) {
    return hsms.get(hsmId);
  }

  void remove(String hsmId) {
    removed.add(hsmId);
    hsms.remove(hsmId);
    checkWaiters();
  }

  List<HsmView> serving() {
    return hsms.values().stream().filter(HsmView::serving).toList();
  }

  /**
   * How many HSMs the cluster has: the Raft group as the most advanced serving HSM reports it, or the
   * HSMs this bridge has seen when none reports a group.
   */
  int members() {
    return hsms.values().stream().filter(v -> v.alive && !v.peers.isEmpty())
        .max(Comparator.comparingLong((HsmView v) -> v.applied))
        .map(v -> v.peers.size())
        .orElse(hsms.size());
  }

  /**
   * The serving HSM with the least expected wait among those {@code eligible}, or null. The scan starts
   * at a rotating position so that equally loaded HSMs take turns instead of the first one taking all.
   */
  HsmView choose(Predicate<HsmView> eligible) {
    return choose(eligible, HsmView::expectedWaitMicros);
  }

  /** Requests in flight per worker, this one counted. */
  private static double queue(HsmView v) {
    return (v.inFlight.size() + 1.0) / v.capacity;
  }

  /** {@link #choose(Predicate)}, preferring {@code localId} (see {@link #preferLocal}). */
  HsmView choose(Predicate<HsmView> eligible, String localId) {
    return preferLocal(localId, eligible, HsmView::expectedWaitMicros);
  }

  /**
   * The serving HSM with the fewest requests in flight per worker, preferring {@code localId} (see
   * {@link #preferLocal}). For mutations: their round trip is the cluster's commit, not this HSM's speed, so
   * the crypto service-time estimate must not decide (with it, every creation went to the HSM that was
   * fastest at signing: measured by bench --cluster).
   */
  HsmView chooseLeastQueued(Predicate<HsmView> eligible, String localId) {
    return preferLocal(localId, eligible, HsmRegistry::queue);
  }

  /**
   * The HSM of this front door's own host when it can take the request and is not the most loaded of
   * those that can (the request then never leaves the process); else the cheapest by {@code cost}. Load is
   * the queue: requests in flight per worker (a service-time estimate would send idle requests elsewhere
   * because another HSM once answered a little faster).
   */
  private HsmView preferLocal(String localId, Predicate<HsmView> eligible, java.util.function.ToDoubleFunction<HsmView> cost) {
    HsmView local = localId == null ? null : hsms.get(localId);
    if (local != null && local.serving() && eligible.test(local)) {
      // Local unless every other HSM that could take the request has a shorter queue (local the most loaded).
      double busiestOther = hsms.values().stream().filter(v -> v != local && v.serving() && eligible.test(v))
          .mapToDouble(HsmRegistry::queue).max().orElse(Double.POSITIVE_INFINITY);
      if (busiestOther >= queue(local)) {
        return local;
      }
    }
    return choose(eligible, cost);
  }

  private HsmView choose(Predicate<HsmView> eligible, java.util.function.ToDoubleFunction<HsmView> cost) {
    List<HsmView> views = List.copyOf(hsms.values());
    if (views.isEmpty()) {
      return null;
    }
    int start = Math.floorMod(rotation++, views.size());
    HsmView best = null;
    for (int i = 0; i < views.size(); i++) {
      HsmView v = views.get((start + i) % views.size());
      if (v.serving() && eligible.test(v) && (best == null || cost.applyAsDouble(v) < cost.applyAsDouble(best))) {
        best = v;
      }
    }
    return best;
  }

  private int rotation;

  /**
   * The HSM for a request among those {@code eligible}, preferring {@code localHsmId}: crypto and reads by
   * expected wait; mutations by queue, leaving out an HSM that has just started serving
   * ({@link HsmView#WARM_UP_NANOS}). Either way an HSM making a backup is left out while another can take
   * the request: the backup keeps its token busy wrapping every key, and holds its applies while it settles
   * the state at one index (issue #12 item 3).
   */
  HsmView chooseFor(boolean mutation, java.util.function.Predicate<HsmView> eligible, String localHsmId, long now) {
    java.util.function.Predicate<HsmView> notBackingUp = eligible.and(v -> !v.backingUp);
    if (!mutation) {
      HsmView free = choose(notBackingUp, localHsmId);
      return free != null ? free : choose(eligible, localHsmId);
    }
    HsmView warm = chooseLeastQueued(notBackingUp.and(v -> !v.warmingUp(now)), localHsmId);
    return warm != null ? warm : chooseLeastQueued(eligible, localHsmId);
  }

  /** Completes with the count once {@code needed} serving HSMs have applied {@code seq}. */
  void awaitApplied(long seq, int needed, Promise<Integer> done) {
    waiters.add(new DurabilityWaiter(seq, needed, done));
    checkWaiters();
  }

  int appliedCount(long seq) {
    int n = 0;
    for (HsmView v : hsms.values()) {
      if (v.serving() && v.applied >= seq) {
        n++;
      }
    }
    return n;
  }

  private void checkWaiters() {
    for (Iterator<DurabilityWaiter> it = waiters.iterator(); it.hasNext(); ) {
      DurabilityWaiter w = it.next();
      if (w.done().future().isComplete()) {
        it.remove();
        continue;
      }
      int n = appliedCount(w.seq());
      if (n >= w.needed()) {
        w.done().tryComplete(n);
        it.remove();
      }
    }
  }
}
