package io.hsmbridge.client;

import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The typed client: a logged-in connection to the cluster with per-key primitives (Tink's style: a {@link
 * KeyHandle} from {@link Keys#generate} gives a {@link Signer}, an {@link Aead}, a {@link MacPrimitive}),
 * algorithms as enums, results as types, each call blocking or asynchronous.
 *
 * <pre>
 * try (HsmClient hsm = HsmClient.connect(HsmClient.options()
 *     .endpoints("10.0.0.11:7443", "10.0.0.12:7443").ca(Path.of("ca.pem"))
 *     .user("payments-app").password(() -&gt; System.getenv("HSMBRIDGE_PASSWORD").toCharArray()))) {
 *   KeyHandle key = hsm.keys().generate(KeySpec.EC_P256, "payments-signer");
 *   byte[] signature = key.signer(Algorithm.ECDSA_SHA256).sign(message);
 * }
 * </pre>
 *
 * <p><b>Resilience.</b> It fails over between front doors and learns the others from the first it reaches
 * ({@link FailoverSender}); a request without a definite answer is sent again when that cannot do it twice
 * (reads and crypto; creations with their request id: {@link RetryingSender}); when the cluster says the
 * session is gone (expiry, logout, a password change) it logs in again with the password callback and sends
 * the call once more. What still fails is an {@link HsmBridgeException} that says whether a retry may help
 * ({@link HsmBridgeException#isRetryable()}) and whether the connection was lost or the cluster answered
 * ({@link HsmBridgeException#isConnectionLost()}).
 *
 * <p><b>Asynchronous calls</b> run on the client's own threads and complete on the caller's Vert.x context
 * when they were made on one (an event loop or a worker of a Vert.x application), else on a client thread.
 * Thread-safe; one client per application is enough.
 */
public final class HsmClient implements AutoCloseable {
  /** Asynchronous calls out at once, by default ({@link Options#asyncThreads}). */
  public static final int DEFAULT_ASYNC_THREADS = 32;
  private final Options options;
  private final Hsm hsm;
  private final ExecutorService async;
  private final Keys keys;
  private long logins;

  private HsmClient(Options options, Hsm hsm) {
    this.options = options;
    this.hsm = hsm;
    // Each asynchronous call holds a client thread while its request is out: at most asyncThreads are in
    // flight, the rest wait in the queue (was: a thread per waiting call, without bound).
    ThreadPoolExecutor pool = new ThreadPoolExecutor(options.asyncThreads, options.asyncThreads, 30, TimeUnit.SECONDS,
        new LinkedBlockingQueue<>(), daemonThreads());
    pool.allowCoreThreadTimeOut(true);
    this.async = pool;
    this.keys = new Keys(this);
  }

  /** Options to fill in, then {@link #connect(Options)}. */
  public static Options options() {
    return new Options();
  }

  /**
   * Connects to the first endpoint that answers and logs in.
   *
   * @throws HsmBridgeException {@code LOGIN_FAILED}, {@code USER_LOCKED}; {@code NO_HSM_AVAILABLE} with
   *     {@link HsmBridgeException#isConnectionLost()} when no endpoint answered
   */
  public static HsmClient connect(Options options) {
    options.check();
    Hsm hsm;
    if (options.eventBus != null) {
      EventBusSender bus = new EventBusSender(options.eventBus, options.timeout);
      if (options.memberLeft != null) {
        options.memberLeft.accept(bus::memberLeft);
      }
      hsm = Hsm.owning(new RetryingSender(bus, options.retryBudget), bus);
    } else {
      ClientTls tls = options.ca == null ? null : ClientTls.pinning(options.ca);
      FailoverSender failover = new FailoverSender(options.endpoints, options.timeout, tls);
      hsm = Hsm.owning(new RetryingSender(failover, options.retryBudget), failover);
    }
    HsmClient client = new HsmClient(options, hsm);
    try {
      client.login();
    } catch (RuntimeException e) {
      client.close();
      throw e;
    }
    return client;
  }

  /** Key creation and look-up. */
  public Keys keys() {
    return keys;
  }

  /** {@code length} (1..4096) bytes from an HSM's generator. */
  public byte[] random(int length) {
    return call(h -> h.random(length));
  }

  /** How many times this client logged in: 1, plus one per session that ended while it was in use. */
  public synchronized long logins() {
    return logins;
  }

  /**
   * Runs {@code call} with the logged-in facade, logging in again once when the session is gone: the way
   * in for what the typed API has no method for.
   */
  public <T> T call(Function<Hsm, T> call) {
    long seen = logins();
    try {
      return call.apply(hsm);
    } catch (HsmBridgeException e) {
      if (e.code() != ErrorCode.NOT_AUTHENTICATED) {
        throw e;
      }
      synchronized (this) {
        if (logins == seen) { // threads that saw the same session end log in once
          login();
        }
      }
      return call.apply(hsm);
    }
  }

  /**
   * {@link #call} on a client thread; completes on the caller's Vert.x context when there is one.
   */
  public <T> CompletionStage<T> callAsync(Function<Hsm, T> call) {
    Context context = Vertx.currentContext();
    CompletableFuture<T> result = new CompletableFuture<>();
    async.execute(() -> {
      T value = null;
      Throwable failure = null;
      try {
        value = call(call);
      } catch (Throwable t) {
        failure = t;
      }
      complete(result, value, failure, context);
    });
    return result;
  }

  private static <T> void complete(CompletableFuture<T> result, T value, Throwable failure, Context context) {
    Runnable done = () -> {
      if (failure != null) {
        result.completeExceptionally(failure);
      } else {
        result.complete(value);
      }
    };
    if (context != null) {
      context.runOnContext(v -> done.run());
    } else {
      done.run();
    }
  }

  private synchronized void login() {
    char[] password = options.password.get();
    try {
      hsm.login(options.user, password);
      logins++;
    } finally {
      Arrays.fill(password, '\0');
    }
  }

  /** Logs out and closes the connection; calls in flight fail. */
  @Override
  public void close() {
    if (logins() > 0) { // else there is no session, and perhaps no cluster to tell
      try {
        hsm.logout();
      } catch (RuntimeException e) {
        // the session ends by itself at its expiry; closing must not fail for it
      }
    }
    hsm.close();
    async.shutdownNow();
  }

  @Override
  public String toString() {
    return "HsmClient[" + options + "]";
  }

  private static ThreadFactory daemonThreads() {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, "hsmbridge-client-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }

  /** Where the cluster is and who the client acts as. The password is asked from the callback at each login. */
  public static final class Options {
    private final List<FailoverSender.Endpoint> endpoints = new ArrayList<>();
    private Path ca;
    private boolean plaintext;
    private String user;
    private Supplier<char[]> password;
    private Duration timeout = BridgeClient.DEFAULT_TIMEOUT;
    private Duration retryBudget = RetryingSender.DEFAULT_BUDGET;
    private int asyncThreads = DEFAULT_ASYNC_THREADS;
    private Vertx eventBus;
    private java.util.function.Consumer<Runnable> memberLeft;

    private Options() {}

    /**
     * Instead of endpoints: requests travel on the cluster's own event bus, through {@code clusteredVertx}, a
     * Vert.x instance that is a member of the cluster (docs/java.md, "On the cluster's event bus"). It stays
     * the application's: closing the client does not close it.
     */
    public Options eventBus(Vertx clusteredVertx) {
      this.eventBus = Objects.requireNonNull(clusteredVertx, "clusteredVertx");
      return this;
    }

    /**
     * With {@link #eventBus}: how the client hears that a member of the cluster left, so that its requests in
     * flight are sent again at once rather than after their timeout; {@code subscribe} is given the action to
     * run at each departure (e.g. {@code ApplicationMember::onMemberLeft} of cluster-agent).
     */
    public Options memberLeft(java.util.function.Consumer<Runnable> subscribe) {
      this.memberLeft = Objects.requireNonNull(subscribe, "subscribe");
      return this;
    }

    /** Front doors as {@code host:port} (IPv6 {@code [addr]:port}); the client learns the others. */
    public Options endpoints(String... hostPorts) {
      for (String e : hostPorts) {
        endpoints.add(FailoverSender.Endpoint.of(e));
      }
      return this;
    }

    public Options endpoints(List<FailoverSender.Endpoint> list) {
      endpoints.addAll(list);
      return this;
    }

    /** The cluster's CA certificate (PEM), pinned. */
    public Options ca(Path caPem) {
      this.ca = Objects.requireNonNull(caPem, "caPem");
      return this;
    }

    /** No TLS: only for a loopback endpoint with {@code bridge.tls=false}. */
    public Options plaintext() {
      this.plaintext = true;
      return this;
    }

    /** The crypto user (CU) the client acts as. */
    public Options user(String name) {
      this.user = Objects.requireNonNull(name, "user");
      return this;
    }

    /** Called at each login (the first, and after a session ended); the client clears the array after use. */
    public Options password(Supplier<char[]> callback) {
      this.password = Objects.requireNonNull(callback, "password");
      return this;
    }

    /** The time one request may take (default 30 s). */
    /**
     * How many asynchronous calls ({@code signAsync}, {@link HsmClient#callAsync}, ...) may be out at once (default
     * {@value HsmClient#DEFAULT_ASYNC_THREADS}): each holds one client thread until its answer; more wait in order.
     */
    public Options asyncThreads(int threads) {
      if (threads < 1 || threads > 1024) {
        throw new IllegalArgumentException("asyncThreads must be 1..1024");
      }
      this.asyncThreads = threads;
      return this;
    }

    public Options timeout(Duration timeout) {
      this.timeout = Objects.requireNonNull(timeout, "timeout");
      return this;
    }

    /**
     * How long a request without a definite answer (no front door reachable, a lost connection, no HSM
     * serving) is sent again before the failure reaches the caller (default 90 s: long enough for a host's
     * restart).
     */
    public Options retryBudget(Duration budget) {
      this.retryBudget = Objects.requireNonNull(budget, "budget");
      return this;
    }

    private void check() {
      if (eventBus != null && !endpoints.isEmpty()) {
        throw new IllegalArgumentException("endpoints or eventBus, not both");
      }
      if (eventBus == null && memberLeft != null) {
        throw new IllegalArgumentException("memberLeft is for eventBus(...)");
      }
      if (eventBus == null && endpoints.isEmpty()) {
        throw new IllegalArgumentException("endpoints: at least one host:port of a front door is needed"
            + " (or eventBus(vertx) for a member of the cluster)");
      }
      if (eventBus == null && ca == null && !plaintext) {
        throw new IllegalArgumentException("ca: the cluster CA (ca.pem) is needed; plaintext() only for a loopback"
            + " endpoint with bridge.tls=false");
      }
      if (user == null || password == null) {
        throw new IllegalArgumentException("user and password (a callback) are needed");
      }
    }

    /** Never the password. */
    @Override
    public String toString() {
      String where = eventBus != null ? "the cluster's event bus"
          : "endpoints=" + endpoints + ", ca=" + (ca == null ? "none (plaintext)" : ca);
      return where + ", user=" + user + ", timeout=" + timeout.toSeconds() + "s";
    }
  }
}
