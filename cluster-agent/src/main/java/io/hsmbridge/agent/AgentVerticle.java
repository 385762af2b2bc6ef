package io.hsmbridge.agent;

import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.json.JsonObject;

/**
 * Serves one HSM on the event bus at {@code hsmbridge.v1.agent.<hsmId>}. Every request runs on
 * {@link TokenWorkers} (one thread per core by default, see {@link #workerThreads}), so PKCS#11 never
 * blocks an event loop. Failures reply with the stable error code as the
 * {@code ReplyException} failure code and a one-line, secret-free message.
 */
public final class AgentVerticle extends VerticleBase {
  private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(AgentVerticle.class.getName());
  private final String hsmId;
  private final HsmToken hsm;
  private final RequestHandler handler;
  private final String address;
  private final java.util.concurrent.atomic.AtomicInteger outstanding = new java.util.concurrent.atomic.AtomicInteger();
  private TokenWorkers workers;
  /** Replicated mutations wait for a commit round trip: they get their own threads (see RequestHandler). */
  private java.util.concurrent.ExecutorService clusterWaits;
  private MessageConsumer<Object> consumer;

  /** Default bound on how long an idle token worker spins before parking (see TokenWorkers). */
  public static final long DEFAULT_WORKER_SPIN_MICROS = 200;

  private final long spinNanos;

  private final int workerThreads;

  public AgentVerticle(String hsmId, HsmToken hsm) {
    this(hsmId, hsm, DEFAULT_WORKER_SPIN_MICROS, 0);
  }

  /**
   * @param workerSpinMicros how long an idle token worker spins before parking
   * @param workerThreads threads making PKCS#11 calls; 0 = one per CPU core, at most one per session
   */
  public AgentVerticle(String hsmId, HsmToken hsm, long workerSpinMicros, int workerThreads) {
    this(hsmId, hsm, new Operations(hsmId, hsm), workerSpinMicros, workerThreads);
  }

  /** An agent whose requests go to {@code handler} (e.g. {@link ClusterOperations} in a cluster). */
  public AgentVerticle(String hsmId, HsmToken hsm, RequestHandler handler, long workerSpinMicros, int workerThreads) {
    this(hsmId, Addresses.agent(hsmId), hsm, handler, workerSpinMicros, workerThreads);
  }

  /** An agent serving at {@code address} (a cluster agent's per-run address, see Addresses.agentIncarnation). */
  public AgentVerticle(String hsmId, String address, HsmToken hsm, RequestHandler handler, long workerSpinMicros,
      int workerThreads) {
    this.address = address;
    this.spinNanos = workerSpinMicros * 1000;
    this.workerThreads = workerThreads;
    this.hsmId = hsmId;
    this.hsm = hsm;
    this.handler = handler;
  }

  @Override
  public Future<?> start() {
    workers = new TokenWorkers("hsmbridge-agent-" + hsmId, workerThreads(), spinNanos);
    clusterWaits = java.util.concurrent.Executors.newFixedThreadPool(4, r -> {
      Thread t = new Thread(r, "hsmbridge-mutations-" + hsmId);
      t.setDaemon(true);
      return t;
    });
    consumer = vertx.eventBus().consumer(address, this::handle);
    return consumer.completion();
  }

  private void handle(Message<Object> message) {
    JsonObject body = Failures.jsonBodyOrFail(message);
    if (body == null) {
      return;
    }
    // Requests are independent and run in parallel, one per worker. The reply is sent from the
    // worker thread itself, saving a hop back through the event loop on every request.
    long received = System.nanoTime();
    Runnable task = () -> {
      long started = System.nanoTime();
      RequestTrace.begin();
      try {
        message.reply(handler.execute(body));
      } catch (Throwable e) {
        Failures.reply(message, e);
      } finally {
        outstanding.decrementAndGet();
        logIfSlow(body, received, started);
      }
    };
    outstanding.incrementAndGet();
    try {
      if (handler.waitsOnCluster(body)) {
        clusterWaits.execute(task);
      } else {
        workers.execute(task);
      }
    } catch (java.util.concurrent.RejectedExecutionException e) {
      outstanding.decrementAndGet();
      Failures.reply(message, ErrorCode.TOKEN_UNAVAILABLE, "agent is stopping");
    }
  }

  /**
   * A request this agent took this long to answer is logged: queued (waiting for a thread) and executed,
   * with its phases. 1 s by default; the JVM property {@code hsmbridge.agent.slowRequestMs} lowers it to
   * trace where ordinary requests spend their time (e.g. {@code HSMBRIDGE_NODE_JVM_OPTS}).
   */
  static final long SLOW_REQUEST_MS = Long.getLong("hsmbridge.agent.slowRequestMs", 1_000);

  private void logIfSlow(JsonObject body, long received, long started) {
    long done = System.nanoTime();
    if (done - received >= SLOW_REQUEST_MS * 1_000_000) {
      Object op = body.getValue("op");
      LOG.warning(hsmId + ": slow request: " + (op instanceof String o && o.length() <= 40 ? o : "?") + " queued "
          + (started - received) / 1_000_000 + " ms, executed in " + (done - started) / 1_000_000 + " ms"
          + RequestTrace.phases());
    }
  }

  /** Requests accepted and not yet answered (for heartbeats and load balancing). */
  public int outstanding() {
    return outstanding.get();
  }

  /** Threads making PKCS#11 calls for requests: this HSM's capacity as the load balancer weighs it. */
  public int workerThreads() {
    return workerThreads(workerThreads, hsm.sessionCapacity());
  }

  /**
   * The worker count. Default one per core: a software token computes on the host's cores, and more
   * threads than cores made requests queue behind each other's signatures (measured: 2 cores, 2 requests
   * in flight, RSA-2048: 0.89 of direct with 2 workers, 0.55 with 4 or 8). A network HSM, whose calls
   * wait on I/O, wants more: set agent.workerThreads up to the session count.
   */
  static int workerThreads(int configured, int sessions) {
    int wanted = configured > 0 ? configured : Runtime.getRuntime().availableProcessors();
    return Math.max(1, Math.min(wanted, sessions));
  }

  @Override
  public Future<?> stop() {
    Future<Void> unregistered = consumer == null ? Future.succeededFuture() : consumer.unregister();
    return unregistered.andThen(ar -> {
      if (workers != null) {
        workers.close();
      }
      if (clusterWaits != null) {
        clusterWaits.shutdownNow();
      }
    });
  }
}
