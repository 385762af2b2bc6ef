package io.hsmbridge.bridge.routing;

import io.hsmbridge.agent.Failures;
import io.hsmbridge.bridge.RoutingSettings;
import io.hsmbridge.bridge.auth.FrontDoor;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Op;
import io.hsmbridge.protocol.SequenceNote;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.Message;
import io.vertx.core.eventbus.MessageConsumer;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.UUID;
import java.util.logging.Logger;

/**
 * The front door of a cluster of HSMs ({@code hsmbridge.v1.request}). For each request it picks the
 * serving HSM with the least expected wait (requests in flight times measured service time, per worker
 * thread), skipping HSMs that cannot hold the key yet; retries idempotent requests on another HSM when
 * one dies or is not ready, within a bounded number of attempts and time; refuses mutations when too few
 * HSMs are healthy to meet the durability requirement; and acknowledges a mutation only once enough HSMs
 * have applied it. Cluster administration (status, anti-entropy check, HSM removal) is answered here.
 *
 * <p>Event-loop confined, never blocks. HSM health comes from the agents' heartbeats.
 */
public final class ClusterBridgeVerticle extends VerticleBase {
  private static final Logger LOG = Logger.getLogger(ClusterBridgeVerticle.class.getName());
  private static final long SWEEP_MS = 200;
  /** How many key ids the bridge remembers the creation sequence of (routing hint only). */
  private static final int KEY_SEQ_MEMORY = 100_000;

  private final RoutingSettings settings;
  private final long agentTimeoutMs;
  private final Map<String, Long> keySeq = new LinkedHashMap<>(1024, 0.75f, false) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<String, Long> eldest) {
      return size() > KEY_SEQ_MEMORY;
    }
  };
  /** The sequence of the latest user-model change acknowledged here (users, activation, settings). */
  private long userSeq;
  /** The latest key creation, change or deletion this front door acknowledged: what a key.list must see. */
  private long latestKeySeq;
  /**
   * The sequence of the latest change known here that ends sessions: a logout, a user's deletion or new
   * password, a lock after failed logins; acknowledged through this front door or reported by another
   * ({@link Addresses#SESSIONS_USED}, every second). A session's requests go only to HSMs that applied it
   * while one can take them: an HSM that lags behind the majority would serve a session that has ended.
   */
  private long sessionEndSeq;
  /** What this front door last reported of {@link #sessionEndSeq}. */
  private long reportedSessionEndSeq;
  private HsmRegistry registry;
  private AntiEntropy antiEntropy;
  private final List<MessageConsumer<?>> consumers = new ArrayList<>();
  private FrontDoor frontDoor;
  private AgentCalls agentCalls;
  private Runnable stopWatchingMembers = () -> {};

  /** The HSM of this process when the front door runs on an HSM host, else null (the bridge). */
  private final String localHsmId;

  public ClusterBridgeVerticle(RoutingSettings settings, long agentTimeoutMs) {
    this(settings, agentTimeoutMs, null);
  }

  /**
   * @param localHsmId the HSM of this process (a front door on an HSM host), or null: its requests go to
   *     the local HSM unless that one is not serving, behind, or the most loaded of those that could take it
   */
  public ClusterBridgeVerticle(RoutingSettings settings, long agentTimeoutMs, String localHsmId) {
    this.settings = settings;
    this.agentTimeoutMs = agentTimeoutMs;
    this.localHsmId = localHsmId;
  }

  /**
   * A request that takes this long in the front door is logged with its trace (see Request#finished): 2 s by
   * default, or the JVM property {@code hsmbridge.frontDoor.slowRequestMs} (to trace ordinary requests).
   */
  static final long SLOW_REQUEST_MS = Long.getLong("hsmbridge.frontDoor.slowRequestMs", 2_000);
  /** How long a request pinned to an HSM waits for it to apply what the request needs (see #dispatch). */
  static final long PINNED_CATCH_UP_MS = 3_000;
  private static final long PINNED_RECHECK_MS = 20;
  /** The hedge delay for crypto and reads sent to an HSM that is warming up (see #hedgeAfterMs). */
  static final long WARMING_HEDGE_MS = 200;

  /** One client request and the HSMs it has been tried on. */
  private final class Request {
    final Message<Object> message;
    final JsonObject body;
    final Op op;
    final long deadlineNanos = System.nanoTime() + settings.requestBudget().toNanos();
    final Set<String> tried = new HashSet<>();
    final FrontDoor.Admitted admitted;
    boolean hadTransportFailure;
    final long startNanos = System.nanoTime();
    /** Attempts sent and not yet answered (two while a hedge runs, see #hedge). */
    int outstanding;
    /** The client has its answer: later answers of other attempts are dropped. */
    boolean answered;
    boolean hedged;
    /** The pending hedge timer (see #hedge), or -1: cancelled once no attempt is outstanding. */
    long hedgeTimer = -1;
    /** What happened to the request, for the slow-request log line: HSM ids, sequences, error codes only. */
    private final StringBuilder trace = new StringBuilder();

    void mark(String event) {
      trace.append(", +").append((System.nanoTime() - startNanos) / 1_000_000).append(" ms ").append(event);
    }

    /**
     * Logs a request that took {@link #SLOW_REQUEST_MS} or more, with what happened to it: where a stall
     * came from (an HSM that died with it, a commit, the durability wait) is otherwise invisible.
     */
    void finished(String outcome) {
      long ms = (System.nanoTime() - startNanos) / 1_000_000;
      if (ms >= SLOW_REQUEST_MS) {
        Object requestId = body.getValue("requestId");
        LOG.warning("slow request: " + op.wire() + (requestId instanceof String r && r.length() <= 64 ? " " + r : "")
            + " took " + ms + " ms, " + outcome + trace);
      }
    }

    Request(Message<Object> message, JsonObject body, Op op, FrontDoor.Admitted admitted) {
      this.message = message;
      this.body = body;
      this.op = op;
      this.admitted = admitted;
    }

    long minSeq() {
      Object keyId = body.getValue("keyId");
      Long seq = keyId instanceof String ? keySeq.get(keyId) : null;
      if (op == Op.KEY_LIST) {
        // Read-your-writes for the list too (seen, CI: a key.list right after a creation acknowledged by two
        // HSMs of three went to the third and listed nothing).
        seq = latestKeySeq;
      }
      return ClusterBridgeVerticle.minSeq(op, userSeq, sessionEndSeq, seq == null ? 0 : seq);
    }
  }

  /**
   * The least applied sequence of an HSM that may serve {@code op}: a login right after the user was created
   * (or the cluster activated) must not land on an HSM that has not applied that change yet (seen:
   * LOGIN_FAILED once in ten container starts); a key's request not on one that has not applied its creation;
   * and any request of a session not on one that has not applied the latest change known to end sessions.
   */
  static long minSeq(Op op, long userSeq, long sessionEndSeq, long keySeq) {
    if (op.isUserModel() || op == Op.AUTH_LOGIN) {
      return Math.max(userSeq, sessionEndSeq);
    }
    return io.hsmbridge.protocol.Access.isPublic(op) ? keySeq : Math.max(keySeq, sessionEndSeq);
  }

  /** Whether a successful {@code op} ends sessions (its sequence then raises {@link #sessionEndSeq}). */
  static boolean endsSessions(Op op) {
    return op == Op.AUTH_LOGOUT || op == Op.USER_DELETE || op == Op.USER_CHANGE_PASSWORD;
  }

  private void sessionsEnded(long seq) {
    sessionEndSeq = Math.max(sessionEndSeq, seq);
  }

  /** This front door's report for the others: the sessions used here lately and the latest session end. */
  private JsonObject sessionsReport() {
    JsonObject report = frontDoor.sessionsUsedReport();
    if (sessionEndSeq > reportedSessionEndSeq) {
      report = (report == null ? new JsonObject() : report).put("sessionEndSeq", sessionEndSeq);
      reportedSessionEndSeq = sessionEndSeq;
    }
    return report;
  }

  private void sessionsReported(Object body) {
    frontDoor.sessionsUsedElsewhere(body);
    if (body instanceof JsonObject r && r.getValue("sessionEndSeq") instanceof Number seq && seq.longValue() > 0) {
      // No lie can make this front door refuse service: when no HSM has applied it, any HSM serves (dispatch).
      sessionsEnded(seq.longValue());
      reportedSessionEndSeq = Math.max(reportedSessionEndSeq, seq.longValue()); // the others know it
    }
  }

  @Override
  public Future<?> start() {
    registry = new HsmRegistry(settings.deadAfter());
    frontDoor = new FrontDoor(settings.sessionIdle(), settings.sessionMax(), System::currentTimeMillis);
    antiEntropy = new AntiEntropy(vertx, registry, agentTimeoutMs);
    agentCalls = new AgentCalls(vertx, agentTimeoutMs);
    consumers.add(vertx.eventBus().<Object>consumer(Addresses.HEARTBEAT, m -> {
      if (m.body() instanceof JsonObject) {
        registry.onHeartbeat((JsonObject) m.body(), System.nanoTime());
      }
    }));
    // Local: the client endpoint of this process sends here. Every front door (the bridge, each HSM host
    // with frontDoor.enabled) has its own; a request never travels to another front door's.
    MessageConsumer<Object> requests = vertx.eventBus().localConsumer(Addresses.BRIDGE_REQUEST, this::handle);
    consumers.add(requests);
    // Clustered: Vert.x applications that are members of the cluster send here (only members reach the event
    // bus: docs/cluster-transport.md); the same handling as a request from this front door's TCP endpoint.
    consumers.add(vertx.eventBus().consumer(Addresses.CLIENT_REQUEST, this::handle));
    vertx.setPeriodic(SWEEP_MS, t -> sweep());
    // Sessions are idle only when idle at every front door: each tells the others which it served.
    consumers.add(vertx.eventBus().consumer(Addresses.SESSIONS_USED, m -> sessionsReported(m.body())));
    vertx.setPeriodic(io.hsmbridge.bridge.auth.Sessions.REPORT_MS, t -> {
      JsonObject report = sessionsReport();
      if (report != null) {
        vertx.eventBus().publish(Addresses.SESSIONS_USED, report);
      }
    });
    if (vertx instanceof io.vertx.core.internal.VertxInternal vi
        && vi.clusterManager() instanceof io.hsmbridge.agent.membership.CertifiedClusterManager membership) {
      io.vertx.core.Context context = vertx.getOrCreateContext();
      stopWatchingMembers = membership.onMemberLeft(addresses -> context.runOnContext(v -> membersLeft(addresses)));
    }
    if (!settings.antiEntropy().isZero()) {
      vertx.setPeriodic(settings.antiEntropy().toMillis(), t -> {
        if (!runsPeriodicCheck()) {
          return;
        }
        antiEntropy.runInBackground().onSuccess(report -> {
          if (report.isPresent() && !report.get().getBoolean("consistent")) {
            LOG.warning("anti-entropy: HSMs differ: " + report.get().encode());
          }
        });
      });
    }
    return Future.all(consumers.stream().map(MessageConsumer::completion).toList());
  }

  /**
   * Whether this front door runs the periodic consistency check now. One does, whichever process is lost:
   * the front door on the Raft leader's host; a front door without a token (the bridge) only when the
   * leader's host has none. Every digest holds its HSM's applier for a token rescan, so front doors must not
   * each run their own.
   */
  private boolean runsPeriodicCheck() {
    HsmView leader = registry.all().stream().filter(v -> v.leader && v.serving()).findFirst().orElse(null);
    if (leader == null) {
      return false; // no leader known: an election, or a cluster not serving; the next period tries again
    }
    return localHsmId != null ? localHsmId.equals(leader.hsmId) : leader.frontDoor == null;
  }

  private void sweep() {
    for (HsmView dead : registry.sweep(System.nanoTime())) {
      died(dead, "missed its heartbeats for " + settings.deadAfter().toMillis() + " ms");
    }
  }

  /**
   * A member of the cluster left (its process died, stopped or was cut off): an HSM that served at one of
   * its addresses is dead now, not after its missed heartbeats, and its requests in flight, which Vert.x
   * would leave to their reply timeout, go to another HSM at once (retry-safe ones; the others fail).
   */
  private void membersLeft(Set<String> addresses) {
    for (HsmView dead : registry.left(addresses, System.nanoTime())) {
      died(dead, "left the cluster (its process's membership link closed)");
    }
  }

  private void died(HsmView dead, String why) {
    LOG.warning("HSM " + dead.hsmId + " " + why + ": marked unhealthy, " + dead.inFlight.size()
        + " request(s) in flight moved to other HSMs");
    for (Attempt a : List.copyOf(dead.inFlight)) {
      a.outcome.tryFail(new HsmDied(dead.hsmId));
    }
  }

  private void handle(Message<Object> message) {
    JsonObject body = Failures.jsonBodyOrFail(message);
    if (body == null) {
      return;
    }
    Op op;
    try {
      op = io.hsmbridge.bridge.RequestValidator.validate(body);
    } catch (HsmException | IllegalArgumentException | ClassCastException e) {
      Failures.reply(message, e instanceof HsmException ? e : new HsmException(ErrorCode.BAD_REQUEST, "malformed request"));
      return;
    }
    io.hsmbridge.bridge.auth.Sessions.Session unverified = frontDoor.unverified(body.getValue("session"));
    if (unverified == null && op.answeredByBridge() && !io.hsmbridge.protocol.Access.isPublic(op)) {
      unverified = frontDoor.held(body.getValue("session"));
    }
    if (unverified == null) {
      admitAndRoute(message, body, op);
      return;
    }
    // A session issued through another front door, or before this one restarted: an agent checks its proof
    // (and that it was not logged out, its user still exists, ...) before this front door admits anything.
    // So does a held one before an operation this front door answers itself, which no agent would check.
    verifyThenRoute(message, body, op, unverified);
  }

  private void verifyThenRoute(Message<Object> message, JsonObject body, Op op, io.hsmbridge.bridge.auth.Sessions.Session unverified) {
    checkSession(unverified, new HashSet<>()).onComplete(ar -> {
      if (ar.failed()) {
        Failures.reply(message, ErrorCode.NO_HSM_AVAILABLE, ar.cause().getMessage());
        return;
      }
      if (ar.result()) {
        frontDoor.adopt(unverified);
      } else {
        frontDoor.refused(unverified); // the agent said no: not asked again for this token for a while
      }
      admitAndRoute(message, body, op); // refused as NOT_AUTHENTICATED when the agent refused the session
    });
  }

  /**
   * How long one agent may take to check a session before another is asked: its catch-up with the leader is
   * bounded at 2 s. Without a bound, an HSM frozen (SIGSTOP) but not yet missed held every request that
   * needed a check for the whole agent timeout (seen: a cluster.check during ClusterScenarioTest (h)).
   */
  static final long SESSION_CHECK_MS = 3_000;

  /**
   * Asks the agents, one after another, whether {@code s} is valid: true or false once one answered (false
   * only for NOT_AUTHENTICATED: an HSM not serving yet has no verdict); failed when none could answer.
   */
  private Future<Boolean> checkSession(io.hsmbridge.bridge.auth.Sessions.Session s, Set<String> tried) {
    // Preferably this host's own HSM (no crossing), and not one that has just started (a cold token, a
    // catch-up in progress: it answers slowly).
    HsmView checker = registry.chooseFor(true, v -> !tried.contains(v.hsmId), localHsmId, System.nanoTime());
    if (checker == null) {
      return Future.failedFuture(tried.isEmpty() ? "no HSM is serving requests: cannot check the session"
          : "no HSM could check the session (asked " + tried + ")");
    }
    tried.add(checker.hsmId);
    JsonObject check = new JsonObject().put("op", Op.AGENT_VERIFY_SESSION.wire())
        .put(io.hsmbridge.agent.users.Principal.FIELD, FrontDoor.principalOf(s));
    return agentCalls.ask(checker, check, SESSION_CHECK_MS).transform(ar -> {
      if (ar.succeeded()) {
        return Future.succeededFuture(true);
      }
      if (ar.cause() instanceof ReplyException r && r.failureType() == io.vertx.core.eventbus.ReplyFailure.RECIPIENT_FAILURE
          && ErrorCode.fromCode(r.failureCode()) == ErrorCode.NOT_AUTHENTICATED) {
        return Future.succeededFuture(false);
      }
      return checkSession(s, tried); // no answer in time, not serving, gone: another HSM decides
    });
  }

  private void admitAndRoute(Message<Object> message, JsonObject body, Op op) {
    FrontDoor.Admitted admitted;
    try {
      admitted = frontDoor.admit(op, body);
    } catch (HsmException e) {
      Failures.reply(message, e);
      return;
    }
    body = admitted.body();
    if (op.answeredByBridge()) {
      admin(op, admitted).onComplete(ar -> {
        if (ar.succeeded()) {
          message.reply(ar.result());
        } else {
          Failures.reply(message, ar.cause());
        }
      });
      return;
    }
    if (op.isMutation()) {
      String refusal = availabilityProblem();
      if (refusal != null) {
        Failures.reply(message, ErrorCode.KEY_AVAILABILITY, refusal);
        return;
      }
      if (body.getValue("requestId") == null) {
        // Retries of this mutation on another HSM must be recognisable as the same request.
        body = body.copy().put("requestId", UUID.randomUUID().toString());
      }
    }
    dispatch(new Request(message, body, op, admitted));
  }

  /** Mutations need min(durability, cluster size) healthy HSMs up front, so nothing is half-applied. */
  private String availabilityProblem() {
    int members = registry.members();
    int required = required();
    int healthy = registry.serving().size();
    if (healthy >= required) {
      return null;
    }
    return healthy + " of " + members + " HSMs are serving and durability " + settings.durability() + " needs "
        + required + "; nothing was changed";
  }

  private int required() {
    return Math.max(1, Math.min(settings.durability(), registry.members()));
  }

  private void dispatch(Request req) {
    long minSeq = req.minSeq();
    String pinned = req.body.getString("onHsm");
    HsmView target;
    if (pinned != null) {
      // An operator's (or a test's) explicit choice: that HSM or nothing, no failover.
      target = req.tried.isEmpty() ? registry.choose(v -> v.hsmId.equals(pinned)) : null;
      // Read-your-writes holds for it too: a key created a moment ago (acknowledged once durability's HSMs
      // had it) is not UNKNOWN_KEY on the pinned HSM, and a session ended is not served by it, while it
      // catches up (seen: a decrypt pinned to the third HSM right after the creation, CI). Bounded: after
      // PINNED_CATCH_UP_MS it goes as it is, the HSM answers with what it has.
      if (target != null && target.applied < minSeq
          && System.nanoTime() - req.startNanos < TimeUnit.MILLISECONDS.toNanos(PINNED_CATCH_UP_MS)) {
        vertx.setTimer(PINNED_RECHECK_MS, t -> dispatch(req));
        return;
      }
    } else {
      target = choose(req, v -> !req.tried.contains(v.hsmId) && v.applied >= minSeq);
      if (target == null && minSeq > 0) {
        target = registry.choose(v -> !req.tried.contains(v.hsmId));
      }
    }
    if (target == null && pinned != null && req.tried.isEmpty()) {
      req.finished("refused: " + pinned + " is not serving");
      Failures.reply(req.message, ErrorCode.NO_HSM_AVAILABLE, "HSM '" + pinned + "' is not serving");
      return;
    }
    if (target == null) {
      req.finished("refused: no HSM to send it to");
      Failures.reply(req.message, ErrorCode.NO_HSM_AVAILABLE, req.tried.isEmpty()
          ? "no HSM is serving requests (" + registry.all().size() + " known)"
          : "no other HSM is serving requests after " + req.tried.size() + " attempt(s)");
      return;
    }
    send(req, target);
    if (hedgeable(req)) {
      cancelHedge(req);
      req.hedgeTimer = vertx.setTimer(hedgeAfterMs(req, target), t -> {
        req.hedgeTimer = -1;
        hedge(req);
      });
    }
  }

  private void cancelHedge(Request req) {
    if (req.hedgeTimer != -1) {
      vertx.cancelTimer(req.hedgeTimer);
      req.hedgeTimer = -1;
    }
  }

  /**
   * How long a request sent to {@code target} waits before it goes to a second HSM as well: {@code
   * cluster.hedgeAfterMs}, or at most {@link #WARMING_HEDGE_MS} for crypto and reads sent to an HSM that
   * has just started serving (its JVM compiles the request path as it serves its first requests; a slow
   * answer from it should cost the client a fraction of a second, not the full hedge delay).
   */
  private long hedgeAfterMs(Request req, HsmView target) {
    long ms = settings.hedgeAfter().toMillis();
    return !req.op.isMutation() && target.warmingUp(System.nanoTime()) ? Math.min(ms, WARMING_HEDGE_MS) : ms;
  }

  /**
   * Whether a request may also be sent to a second HSM when the first is slow: what may be sent twice
   * anyway (reads, crypto, and the creations, deletes and relabels that carry a requestId), not logins
   * (each is a password check the lockout counts), not user, share or quorum changes (safe to repeat, but
   * rare and never worth two log entries), not a request with a quorum token (it serves once: the second
   * attempt would be refused), not a request pinned to one HSM.
   */
  private boolean hedgeable(Request req) {
    return !settings.hedgeAfter().isZero() && req.op.isRetrySafe() && !(req.op.isMutation() && req.op.isUserModel())
        && req.op != Op.AUTH_LOGIN && req.body.getValue("quorum") == null
        && req.op != Op.AUTH_LOGOUT && req.body.getValue("onHsm") == null;
  }

  /**
   * A request still unanswered after {@code cluster.hedgeAfterMs} goes to one more HSM as well; the first
   * answer wins. Measured (FrontDoorsTest): an HSM that had just restarted took 7.7 s to apply its own
   * creation, already committed by the others, while its front door waited for it; another HSM holds the
   * committed key and answers the same requestId at once (the key id derives from it: no second key).
   */
  private void hedge(Request req) {
    if (req.answered || req.hedged || req.outstanding == 0) {
      return;
    }
    long minSeq = req.minSeq();
    HsmView other = choose(req, v -> !req.tried.contains(v.hsmId) && v.applied >= minSeq);
    if (other == null) {
      return;
    }
    req.hedged = true;
    req.mark("no answer yet: hedged");
    send(req, other);
  }

  /**
   * The HSM for {@code req} among those {@code eligible}, preferring this host's own: crypto and reads by
   * expected wait; mutations by queue, leaving out an HSM that has just started serving while another can
   * take them (see {@link HsmView#WARM_UP_NANOS}).
   */
  private HsmView choose(Request req, java.util.function.Predicate<HsmView> eligible) {
    return registry.chooseFor(req.op.isMutation(), eligible, localHsmId, System.nanoTime());
  }

  private void send(Request req, HsmView target) {
    req.tried.add(target.hsmId);
    req.mark("sent to " + target.hsmId);
    req.outstanding++;
    Attempt attempt = new Attempt(target);
    target.inFlight.add(attempt);
    long leftMs = Math.max(1, (req.deadlineNanos - System.nanoTime()) / 1_000_000);
    DeliveryOptions delivery = new DeliveryOptions().setSendTimeout(Math.min(agentTimeoutMs, leftMs));
    vertx.eventBus().<JsonObject>request(target.address, req.body, delivery)
        .onComplete(ar -> {
          if (ar.succeeded()) {
            attempt.outcome.tryComplete(ar.result().body());
          } else {
            attempt.outcome.tryFail(ar.cause());
          }
        });
    HsmView hsm = target;
    attempt.outcome.future().onComplete(ar -> {
      hsm.inFlight.remove(attempt);
      req.outstanding--;
      if (req.outstanding == 0) {
        cancelHedge(req); // nothing left to hedge; at thousands of requests a second, pending timers add up
      }
      req.mark(hsm.hsmId + (ar.succeeded() ? " answered" : " failed (" + failureName(ar.cause()) + ")"));
      if (ar.succeeded() && !req.op.isMutation()) {
        // A mutation's round trip is the cluster's Raft commit (and an RSA generation can take a second),
        // not this HSM's speed: counted, it made the HSM that served creations look slow to crypto.
        hsm.recordServiceTime((System.nanoTime() - attempt.startNanos) / 1000);
      }
      if (req.answered) {
        return; // another attempt answered the client first
      }
      if (ar.failed() && req.outstanding > 0) {
        return; // the hedge (or the first attempt) may still answer; its own failure decides
      }
      if (ar.succeeded()) {
        req.answered = true;
        JsonObject reply = ar.result().put("servedBy", hsm.hsmId);
        if (req.op == Op.AUTH_LOGIN && reply.getValue("seq") instanceof Number seq) {
          sawApplied(hsm, seq.longValue()); // the login's outcome entry (frontDoor.succeeded drops the field)
        }
        if (endsSessions(req.op) && reply.getValue("seq") instanceof Number seq) {
          hsm.sawApplied(seq.longValue());
          sessionsEnded(seq.longValue());
        }
        try {
          succeeded(req, frontDoor.succeeded(req.op, req.admitted, reply));
        } catch (RuntimeException e) {
          LOG.log(java.util.logging.Level.WARNING, "could not complete " + req.op.wire(), e);
          req.finished("failed: INTERNAL");
          Failures.reply(req.message, ErrorCode.INTERNAL, "could not complete " + req.op.wire());
        }
      } else {
        failed(req, hsm, ar.cause());
      }
    });
  }

  private void succeeded(Request req, JsonObject reply) {
    Long seq = req.op.isMutation() ? reply.getLong("seq") : null;
    if (seq == null) {
      req.finished("answered");
      req.message.reply(reply);
      return;
    }
    int needed = required();
    req.mark("committed as sequence " + seq + ", waiting until " + needed + " HSMs applied it");
    Promise<Integer> applied = Promise.promise();
    // Bounded by what is left of the request's budget too: the TCP event-bus bridge in front gives up on
    // its own after 30 s (Vert.x's default send timeout), and a creation retried after an HSM died had
    // already spent most of it (seen: a client got the TCP bridge's TIMEOUT instead of an answer).
    long leftMs = Math.max(1, (req.deadlineNanos - System.nanoTime()) / 1_000_000);
    long timer = vertx.setTimer(Math.min(settings.durabilityTimeout().toMillis(), leftMs), t -> applied.tryFail("timeout"));
    registry.awaitApplied(seq, needed, applied);
    applied.future().onComplete(ar -> {
      vertx.cancelTimer(timer);
      String keyId = reply.getString("keyId");
      if (keyId != null) {
        latestKeySeq = Math.max(latestKeySeq, seq);
        if (req.op != Op.KEY_DELETE) {
          keySeq.put(keyId, seq);
        }
      }
      if (req.op.isUserModel()) {
        userSeq = Math.max(userSeq, seq);
      }
      req.finished(ar.succeeded() ? "applied on " + ar.result() + " HSMs" : "KEY_AVAILABILITY: applied on "
          + registry.appliedCount(seq) + " of " + needed + " in time");
      if (ar.succeeded()) {
        req.message.reply(reply.put("appliedOn", ar.result()));
      } else {
        Failures.reply(req.message, ErrorCode.KEY_AVAILABILITY, "the change was committed as sequence " + seq
            + " but only " + registry.appliedCount(seq) + " of the " + needed + " HSMs required applied it within "
            + settings.durabilityTimeout().toMillis() + " ms; it will reach the others as they catch up");
      }
    });
  }

  private void failed(Request req, HsmView hsm, Throwable cause) {
    boolean transport = cause instanceof HsmDied
        || (cause instanceof ReplyException && ((ReplyException) cause).failureType() != io.vertx.core.eventbus.ReplyFailure.RECIPIENT_FAILURE);
    ErrorCode code = transport ? null : ErrorCode.fromCode(((ReplyException) cause).failureCode());
    boolean inTime = System.nanoTime() < req.deadlineNanos;
    if (code == ErrorCode.UNKNOWN_KEY) {
      if (req.op == Op.KEY_DELETE && req.hadTransportFailure) {
        // An earlier attempt's HSM died after deleting: the delete is done.
        req.finished("deleted by an earlier attempt");
        req.message.reply(new JsonObject().put("keyId", req.body.getString("keyId")).put("deleted", true));
        return;
      }
      if (!req.op.isMutation() && inTime && req.body.getValue("onHsm") == null && registry.choose(v -> !req.tried.contains(v.hsmId)) != null) {
        // This HSM may lag or have lost the key (anti-entropy repairs it): another HSM may have it.
        dispatch(req);
        return;
      }
    }
    boolean retryableFailure = transport || code == ErrorCode.HSM_NOT_READY || code == ErrorCode.TOKEN_UNAVAILABLE
        || code == ErrorCode.SESSION_POOL_EXHAUSTED;
    req.hadTransportFailure |= transport;
    if (retryableFailure && req.op.isRetrySafe() && inTime && req.body.getValue("onHsm") == null && req.tried.size() < settings.attempts()) {
      LOG.fine(() -> "retrying " + req.op.wire() + " elsewhere after " + hsm.hsmId + ": " + cause.getMessage());
      dispatch(req);
      return;
    }
    // A retry-safe change whose commit the log did not confirm in time (a leader change: seen once when the
    // Raft leader's container was killed, the next creation's commit timed out on the HSM it was sent to).
    // Sent again with its request id to another HSM it is applied at most once and answers with its one
    // outcome (Op.isRetrySafe), which the client needs more than "it may still be applied". Without another
    // HSM to ask, the client gets OUTCOME_UNKNOWN as it was (its own retry with the request id does the same).
    if (code == ErrorCode.OUTCOME_UNKNOWN && req.op.isMutation() && req.op.isRetrySafe() && inTime
        && req.body.getValue("onHsm") == null && req.tried.size() < settings.attempts()
        && registry.choose(v -> !req.tried.contains(v.hsmId)) != null) {
      LOG.info("retrying " + req.op.wire() + " with its request id elsewhere: " + hsm.hsmId + " could not confirm its commit");
      dispatch(req);
      return;
    }
    req.finished("failed (" + failureName(cause) + ")");
    relay(req, hsm, cause);
  }

  /**
   * {@code hsm} answered after applying {@code seq}, an entry of the user model (a login's outcome, which
   * counts toward the lockout): this user's next reads here go to an HSM that applied it too. The heartbeat
   * that would tell may still be on its way, so the view of {@code hsm} is raised now.
   */
  private void sawApplied(HsmView hsm, long seq) {
    hsm.sawApplied(seq);
    userSeq = Math.max(userSeq, seq);
  }

  /** An error's code or kind for the trace: never its message (which may quote request fields). */
  private static String failureName(Throwable cause) {
    if (cause instanceof HsmDied) {
      return "its HSM died";
    }
    if (cause instanceof ReplyException r) {
      ErrorCode code = r.failureType() == io.vertx.core.eventbus.ReplyFailure.RECIPIENT_FAILURE
          ? ErrorCode.fromCode(r.failureCode()) : null;
      return code != null ? code.name() : r.failureType().name();
    }
    return cause.getClass().getSimpleName();
  }

  private void relay(Request req, HsmView hsm, Throwable cause) {
    Message<Object> message = req.message;
    if (cause instanceof HsmDied) {
      Failures.reply(message, ErrorCode.NO_HSM_AVAILABLE, cause.getMessage() + " and no other HSM could take the request");
      return;
    }
    if (cause instanceof ReplyException re) {
      switch (re.failureType()) {
        case RECIPIENT_FAILURE:
          // The agent's own typed failure; a refused login notes the outcome entry it committed (SequenceNote),
          // which routes and is then left out: it would tell an existing user from an unknown one.
          SequenceNote.Read noted = loginNote(req.op, re);
          if (noted.seq() > 0) {
            sawApplied(hsm, noted.seq());
            if (ErrorCode.fromCode(re.failureCode()) == ErrorCode.USER_LOCKED) {
              sessionsEnded(noted.seq()); // the user's sessions end with the lock
            }
          }
          message.fail(re.failureCode(), noted.message());
          return;
        case TIMEOUT:
          Failures.reply(message, ErrorCode.TIMEOUT, "the HSM did not answer in time");
          return;
        case NO_HANDLERS:
          Failures.reply(message, ErrorCode.NO_HSM_AVAILABLE, "no HSM is serving requests");
          return;
        default:
          break;
      }
    }
    Failures.reply(message, cause);
  }

  /**
   * The sequence note of a refused login, read from the agent's error text and stripped from it; any other
   * failure's text is relayed as it is, note-like ending or not. Only a login refusal carries a note
   * (UserOperations), and only there is it trusted: another error's text may end in what a client wrote,
   * which must neither raise this front door's view of an HSM nor lose its last words.
   */
  static SequenceNote.Read loginNote(Op op, ReplyException refusal) {
    ErrorCode code = ErrorCode.fromCode(refusal.failureCode());
    boolean loginRefusal = op == Op.AUTH_LOGIN && (code == ErrorCode.LOGIN_FAILED || code == ErrorCode.USER_LOCKED);
    return loginRefusal ? SequenceNote.read(refusal.getMessage()) : new SequenceNote.Read(refusal.getMessage(), 0);
  }

  private Future<JsonObject> admin(Op op, FrontDoor.Admitted admitted) {
    JsonObject body = admitted.body();
    switch (op) {
      case CLUSTER_STATUS:
        return Future.succeededFuture(status());
      case CLUSTER_CHECK:
        return antiEntropy.run();
      case CLUSTER_AUDIT_VERIFY:
        return auditVerify();
      case CLUSTER_REMOVE_HSM:
        return new HsmRemoval(vertx, registry, agentTimeoutMs).remove(body.getString("hsmId"));
      default:
        try {
          return Future.succeededFuture(frontDoor.answer(op, admitted));
        } catch (RuntimeException e) {
          return Future.failedFuture(e);
        }
    }
  }

  /** Every serving HSM checks its own audit chain with its own audit key. */
  private Future<JsonObject> auditVerify() {
    List<HsmView> hsms = registry.serving();
    List<Future<JsonObject>> replies = agentCalls.askEach(hsms, Op.AGENT_AUDIT_VERIFY);
    return Future.join(replies).transform(ignored -> {
      JsonObject perHsm = new JsonObject();
      boolean intact = !hsms.isEmpty();
      for (int i = 0; i < hsms.size(); i++) {
        Future<JsonObject> f = replies.get(i);
        JsonObject r = f.succeeded() ? f.result() : new JsonObject().put("intact", false)
            .put("problem", "no answer: " + f.cause().getMessage());
        intact &= r.getBoolean("intact", false);
        perHsm.put(hsms.get(i).hsmId, r);
      }
      return Future.succeededFuture(new JsonObject().put("intact", intact).put("hsms", perHsm));
    });
  }

  private JsonObject status() {
    long now = System.nanoTime();
    JsonArray hsms = new JsonArray();
    registry.all().forEach(v -> hsms.add(v.toJson(now)));
    // Where clients can go when the front door they use is lost: every serving HSM host that serves clients.
    JsonArray frontDoors = new JsonArray();
    registry.serving().stream().map(v -> v.frontDoor).filter(java.util.Objects::nonNull).distinct().forEach(frontDoors::add);
    return new JsonObject()
        .put("frontDoors", frontDoors)
        .put("durability", settings.durability())
        .put("required", required())
        .put("members", registry.members())
        .put("healthy", registry.serving().size())
        .put("hsms", hsms);
  }

  @Override
  public Future<?> stop() {
    stopWatchingMembers.run();
    return Future.all(consumers.stream().map(MessageConsumer::unregister).toList());
  }
}
