package io.hsmbridge.containers;

import static io.hsmbridge.containers.Keys.b64;

import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.client.RequestSender;
import io.hsmbridge.client.RetryingSender;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.security.PublicKey;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Client load on the bridge: one thread signs with an EC key (every signature checked with the JDK), one
 * encrypts with an AES key (every 8th ciphertext decrypted again and compared), and optionally one creates
 * keys; each thread on its own connection, as the crypto user. Every reply is recorded with its send and
 * receive time and the HSM that answered ({@code servedBy}); every error with its time.
 *
 * <p>Bounded: each thread stops at {@link #stop()}, at its time bound or after {@code maxOps} requests.
 */
final class Load implements AutoCloseable {
  /** One answered request. Times are System.nanoTime(). */
  record Reply(String thread, long sentNanos, long doneNanos, String servedBy) {}

  /** One acknowledged key creation. */
  record Created(String keyId, String label, long doneNanos) {}

  /** One error a client saw. */
  record Failure(String thread, long atNanos, String message) {}

  private final ContainerCluster cluster;
  private final String aesKey;
  private final String ecKey;
  private final PublicKey ecPublic;
  private final long deadline;
  private final long maxOps;
  private final AtomicBoolean stop = new AtomicBoolean();
  private final AtomicLong ops = new AtomicLong();
  private final AtomicLong maxLatencyMs = new AtomicLong();
  private final AtomicInteger creations = new AtomicInteger();
  private final List<Thread> threads = new ArrayList<>();
  final ConcurrentLinkedQueue<Reply> replies = new ConcurrentLinkedQueue<>();
  final ConcurrentLinkedQueue<Created> created = new ConcurrentLinkedQueue<>();
  private final List<Failure> failures = new CopyOnWriteArrayList<>();
  /** Answers to creations that were not definite, each followed by a resend with the same request id. */
  private final List<Failure> resent = new CopyOnWriteArrayList<>();
  /** How long one creation is sent again at most (a leader change refuses creations for up to ~31 s). */
  private static final Duration CREATION_BUDGET = Duration.ofSeconds(60);

  Load(ContainerCluster cluster, String aesKey, String ecKey, Duration bound, long maxOps) {
    this.cluster = cluster;
    this.aesKey = aesKey;
    this.ecKey = ecKey;
    this.ecPublic = Keys.publicKey(cluster, ecKey);
    this.deadline = System.nanoTime() + bound.toNanos();
    this.maxOps = maxOps;
  }

  /** Starts the signer and the encrypter. */
  Load start() {
    spawn("signer", this::sign);
    spawn("encrypter", this::encrypt);
    return this;
  }

  /**
   * Also creates keys (label {@code prefix-n}, AES_256 and EC_P256 in turn) one after another, pausing
   * {@code gapMs} between them, at most {@code max}. Each creation is sent as the Java client sends it
   * (item 4 of docs/cluster.md's failure model): with a request id, and sent again with that id while the
   * answer is not definite ({@link RetryingSender}: OUTCOME_UNKNOWN after a leader change, KEY_AVAILABILITY
   * while too few HSMs serve), so it gets its one outcome. Every answer that was not definite is kept in
   * {@link #resent()}; an error that reaches this client is recorded as a failure.
   */
  Load creating(String prefix, long gapMs, int max) {
    spawn("creator", c -> {
      int n = creations.get();
      if (n >= max) {
        ContainerCluster.sleep(100);
        return null;
      }
      creations.incrementAndGet();
      String label = prefix + "-" + n;
      JsonObject k;
      BridgeClient connection = c;
      RequestSender noting = body -> {
        try {
          return connection.request(body);
        } catch (HsmBridgeException e) {
          resent.add(new Failure("creator", System.nanoTime(), label + ": " + e.getMessage()));
          throw e;
        }
      };
      try {
        k = new RetryingSender(noting, CREATION_BUDGET).request(cluster.withSession(new JsonObject()
            .put("op", "key.generate").put("spec", n % 2 == 0 ? "AES_256" : "EC_P256").put("label", label)
            .put("requestId", UUID.randomUUID().toString())));
      } catch (HsmBridgeException e) {
        throw new HsmBridgeException(e.code(), label + ": " + e.getMessage(), e);
      }
      created.add(new Created(k.getString("keyId"), label, System.nanoTime()));
      ContainerCluster.sleep(gapMs);
      return k;
    });
    return this;
  }

  private boolean running() {
    return !stop.get() && System.nanoTime() < deadline && ops.get() < maxOps;
  }

  private JsonObject sign(BridgeClient c) {
    byte[] m = ("load " + ops.get()).getBytes(StandardCharsets.UTF_8);
    JsonObject r = c.request(cluster.withSession(new JsonObject().put("op", "sign").put("keyId", ecKey)
        .put("alg", "ECDSA_SHA256").put("message", b64(m))));
    if (!Keys.verify(ecPublic, "SHA256withECDSA", m, r.getString("signature"))) {
      throw new IllegalStateException("bad signature from " + r.getString("servedBy"));
    }
    return r;
  }

  private JsonObject encrypt(BridgeClient c) {
    long n = ops.get();
    String plain = b64("load " + n);
    JsonObject r = c.request(cluster.withSession(new JsonObject().put("op", "encrypt").put("keyId", aesKey)
        .put("alg", "AES_GCM").put("plaintext", plain)));
    if (n % 8 == 0) {
      JsonObject d = c.request(cluster.withSession(new JsonObject().put("op", "decrypt").put("keyId", aesKey)
          .put("alg", "AES_GCM").put("ciphertext", r.getString("ciphertext")).put("iv", r.getString("iv"))));
      if (!plain.equals(d.getString("plaintext"))) {
        throw new IllegalStateException("bad decryption on " + d.getString("servedBy"));
      }
    }
    return r;
  }

  private interface Step {
    JsonObject run(BridgeClient c);
  }

  private void spawn(String name, Step step) {
    Thread t = new Thread(() -> {
      BridgeClient c = null;
      try {
        c = cluster.connect();
        while (running()) {
          long s = System.nanoTime();
          try {
            JsonObject r = step.run(c);
            if (r != null) {
              long done = System.nanoTime();
              replies.add(new Reply(name, s, done, r.getString("servedBy")));
              ops.incrementAndGet();
              maxLatencyMs.accumulateAndGet((done - s) / 1_000_000, Math::max);
            }
          } catch (HsmBridgeException | IllegalStateException e) {
            failures.add(new Failure(name, System.nanoTime(), e.getMessage()));
            if (!c.isOpen()) {
              c = cluster.connect();
            }
          }
        }
      } catch (Throwable e) {
        failures.add(new Failure(name, System.nanoTime(), "untyped: " + e));
      } finally {
        if (c != null) {
          c.close();
        }
      }
    }, "load-" + name);
    t.setDaemon(true);
    t.start();
    threads.add(t);
  }

  /** Errors seen by the signer and the encrypter. */
  List<Failure> cryptoFailures() {
    return failures.stream().filter(f -> !f.thread().equals("creator")).toList();
  }

  /** Errors seen by the creator (the label of the creation first). */
  List<Failure> creationFailures() {
    return failures.stream().filter(f -> f.thread().equals("creator")).toList();
  }

  /** Answers to creations that were not definite, so the creator sent them again with their request id. */
  List<Failure> resent() {
    return List.copyOf(resent);
  }

  /** Requests answered (crypto and creations). */
  long ops() {
    return ops.get();
  }

  long maxLatencyMs() {
    return maxLatencyMs.get();
  }

  /** Replies received in [fromNanos, toNanos) to requests sent at or after fromNanos, counted per HSM. */
  Map<String, Long> servedBetween(long fromNanos, long toNanos) {
    Map<String, Long> m = new TreeMap<>();
    for (Reply r : replies) {
      if (r.sentNanos() >= fromNanos && r.doneNanos() < toNanos) {
        m.merge(r.servedBy(), 1L, Long::sum);
      }
    }
    return m;
  }

  List<String> createdIds() {
    return created.stream().map(Created::keyId).toList();
  }

  /** Stops every thread and waits for them (each finishes its request in flight: at most the client timeout). */
  @Override
  public void close() {
    stop.set(true);
    for (Thread t : threads) {
      try {
        t.join(ContainerCluster.CLIENT_TIMEOUT.toMillis() + 5000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  static String describe(List<Failure> failures) {
    return failures.size() + (failures.isEmpty() ? "" : " " + failures.subList(0, Math.min(10, failures.size())));
  }
}
