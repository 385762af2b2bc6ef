package io.hsmbridge.bridge.cluster;

import io.vertx.core.Completable;
import io.vertx.core.Vertx;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.shareddata.AsyncMap;
import io.vertx.core.shareddata.Counter;
import io.vertx.core.shareddata.Lock;
import io.vertx.core.spi.cluster.ClusterManager;
import io.vertx.core.spi.cluster.NodeInfo;
import io.vertx.core.spi.cluster.NodeListener;
import io.vertx.core.spi.cluster.RegistrationInfo;
import io.vertx.core.spi.cluster.RegistrationListener;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A cluster manager that keeps this node's own entries in the shared routing table. Vert.x writes a
 * consumer's registration into the cluster manager once, when the consumer is registered; if the entry is
 * lost afterwards (removed by a buggy or compromised member, dropped while merging split clusters, cleaned
 * up by a coordinator that wrongly thought this node had left) nobody routes to that consumer again. Here
 * every {@link #PERIOD_MS} the node looks up each registration it made and its own node info, and puts
 * back whatever is missing. A lost entry therefore heals within one period plus the cluster's propagation
 * time.
 *
 * <p>Everything else is passed to the wrapped manager unchanged. {@code beforeJoin} runs (on a worker
 * thread) before the wrapped manager joins and {@code afterLeave} after it has left: they start and stop
 * the transport the wrapped manager does not own. Thread-safe.
 */
final class ReassertingClusterManager implements ClusterManager {
  /** How often own registrations are checked. A lookup is a local read of a replicated cache: cheap. */
  static final long PERIOD_MS = 2_000;

  private static final Logger LOG = Logger.getLogger(ReassertingClusterManager.class.getName());

  private final ClusterManager delegate;
  private final Runnable beforeJoin;
  private final Runnable afterLeave;
  /** The registrations this node made and has not removed, by address (local-only ones excluded). */
  private final Map<String, Set<RegistrationInfo>> own = new ConcurrentHashMap<>();
  /** Adds in flight. */
  private final Set<Pending> adding = ConcurrentHashMap.newKeySet();
  private final AtomicLong reasserted = new AtomicLong();

  private record Pending(String address, RegistrationInfo info) {}
  private volatile VertxInternal vertx;
  private volatile long timerId = -1;
  private volatile NodeInfo writtenNodeInfo;

  ReassertingClusterManager(ClusterManager delegate, Runnable beforeJoin, Runnable afterLeave) {
    this.delegate = delegate;
    this.beforeJoin = beforeJoin;
    this.afterLeave = afterLeave;
  }

  /** How many lost entries (registrations or node info) this node has put back since it joined. */
  long reassertedCount() {
    return reasserted.get();
  }

  @Override
  public void init(Vertx vertx) {
    this.vertx = (VertxInternal) vertx;
    delegate.init(vertx);
  }

  @Override
  public void join(Completable<Void> promise) {
    vertx.<Void>executeBlocking(() -> {
      beforeJoin.run();
      return null;
    }, false).onComplete((started, startErr) -> {
      if (startErr != null) {
        promise.fail(startErr);
        return;
      }
      delegate.join((v, err) -> {
        if (err == null) {
          LOG.info(MembershipLog.PREFIX + delegate.getNodes().size() + " members " + delegate.getNodes());
          timerId = vertx.setPeriodic(PERIOD_MS, PERIOD_MS, id -> reassert());
        }
        promise.complete(v, err);
      });
    });
  }

  @Override
  public void leave(Completable<Void> promise) {
    long id = timerId;
    if (id >= 0) {
      vertx.cancelTimer(id);
    }
    delegate.leave((v, err) -> vertx.<Void>executeBlocking(() -> {
      afterLeave.run();
      return null;
    }, false).onComplete((stopped, stopErr) -> {
      if (stopErr != null) {
        LOG.log(Level.WARNING, "cluster transport did not stop cleanly", stopErr);
      }
      promise.complete(v, err);
    }));
  }

  @Override
  public void addRegistration(String address, RegistrationInfo info, Completable<Void> promise) {
    // Tracked once the write has ended (a check must not see an add in flight as a loss and write it a
    // second time), also when it failed (the consumer stays registered locally: the next check writes it
    // again); not at all if Vert.x removed it while the add was in flight.
    Pending key = new Pending(address, info);
    adding.add(key);
    delegate.addRegistration(address, info, (v, err) -> {
      if (adding.remove(key) && !info.localOnly()) {
        own.computeIfAbsent(address, a -> ConcurrentHashMap.newKeySet()).add(info);
      }
      promise.complete(v, err);
    });
  }

  @Override
  public void removeRegistration(String address, RegistrationInfo info, Completable<Void> promise) {
    // Forget it first, so that a check running now does not put it back after it is gone.
    adding.remove(new Pending(address, info));
    own.computeIfPresent(address, (a, set) -> {
      set.remove(info);
      return set.isEmpty() ? null : set;
    });
    delegate.removeRegistration(address, info, promise);
  }

  private boolean isOwn(String address, RegistrationInfo info) {
    Set<RegistrationInfo> set = own.get(address);
    return set != null && set.contains(info);
  }

  /** One pass: every own registration and the node info, put back where missing. */
  void reassert() {
    if (!delegate.isActive()) {
      return;
    }
    ContextInternal ctx = vertx.getOrCreateContext();
    for (Map.Entry<String, Set<RegistrationInfo>> e : own.entrySet()) {
      String address = e.getKey();
      List<RegistrationInfo> mine = List.copyOf(e.getValue());
      delegate.getRegistrations(address, (present, err) -> {
        if (err != null) {
          LOG.log(Level.FINE, "cannot read the registrations of " + address, err);
          return;
        }
        for (RegistrationInfo r : mine) {
          if (!present.contains(r)) {
            ctx.runOnContext(v -> putBack(address, r));
          }
        }
      });
    }
    NodeInfo info = writtenNodeInfo;
    if (info != null) {
      delegate.getNodeInfo(delegate.getNodeId(), (found, err) -> {
        if (err != null || found == null) {
          reasserted.incrementAndGet();
          LOG.warning("this node's info was missing from the cluster; put it back");
          ctx.runOnContext(v -> delegate.setNodeInfo(info, (ok, err2) -> logFailure("node info", err2)));
        }
      });
    }
  }

  private void putBack(String address, RegistrationInfo r) {
    if (!isOwn(address, r) || !delegate.isActive()) {
      return;
    }
    reasserted.incrementAndGet();
    LOG.warning("registration of " + address + " was missing from the cluster; put it back");
    delegate.addRegistration(address, r, (ok, err) -> {
      logFailure(address, err);
      // Removed by Vert.x while it was being put back: take it out again.
      if (err == null && !isOwn(address, r)) {
        delegate.removeRegistration(address, r, (ok2, err2) -> logFailure(address, err2));
      }
    });
  }

  private static void logFailure(String what, Throwable err) {
    if (err != null) {
      LOG.log(Level.WARNING, "cannot put back " + what + " (next try in " + PERIOD_MS + " ms): " + err);
    }
  }

  // Everything below is the wrapped manager's, unchanged.

  @Override
  public <K, V> void getAsyncMap(String name, Completable<AsyncMap<K, V>> promise) {
    delegate.getAsyncMap(name, promise);
  }

  @Override
  public <K, V> Map<K, V> getSyncMap(String name) {
    return delegate.getSyncMap(name);
  }

  @Override
  public void getLockWithTimeout(String name, long timeout, Completable<Lock> promise) {
    delegate.getLockWithTimeout(name, timeout, promise);
  }

  @Override
  public void getCounter(String name, Completable<Counter> promise) {
    delegate.getCounter(name, promise);
  }

  @Override
  public String getNodeId() {
    return delegate.getNodeId();
  }

  @Override
  public List<String> getNodes() {
    return delegate.getNodes();
  }

  @Override
  public void nodeListener(NodeListener listener) {
    delegate.nodeListener(listener);
  }

  @Override
  public void setNodeInfo(NodeInfo nodeInfo, Completable<Void> promise) {
    // Checked once written, for the same reason as registrations.
    delegate.setNodeInfo(nodeInfo, (v, err) -> {
      if (err == null) {
        writtenNodeInfo = nodeInfo;
      }
      promise.complete(v, err);
    });
  }

  @Override
  public NodeInfo getNodeInfo() {
    return delegate.getNodeInfo();
  }

  @Override
  public void getNodeInfo(String nodeId, Completable<NodeInfo> promise) {
    delegate.getNodeInfo(nodeId, promise);
  }

  @Override
  public boolean isActive() {
    return delegate.isActive();
  }

  @Override
  public void registrationListener(RegistrationListener listener) {
    delegate.registrationListener(listener);
  }

  @Override
  public void getRegistrations(String address, Completable<List<RegistrationInfo>> promise) {
    delegate.getRegistrations(address, promise);
  }

  @Override
  public String clusterHost() {
    return delegate.clusterHost();
  }

  @Override
  public String clusterPublicHost() {
    return delegate.clusterPublicHost();
  }
}
