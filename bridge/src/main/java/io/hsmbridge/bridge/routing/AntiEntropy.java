package io.hsmbridge.bridge.routing;

import io.hsmbridge.protocol.Op;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.logging.Logger;

/**
 * Compares the HSMs' object sets and repairs drift. Each serving HSM rescans its token and returns a
 * digest of its keys' metadata; HSMs at the same applied sequence must agree. A key that a majority of
 * them holds and some lack (deleted behind the cluster's back) is re-replicated from a holder through the
 * mutation log; a key only a minority holds (added behind the cluster's back) is reported, never deleted.
 * Keys that cannot travel under the cluster key (exportable, never-extractable) live on one HSM by
 * design and are left out.
 */
final class AntiEntropy {
  private static final Logger LOG = Logger.getLogger(AntiEntropy.class.getName());

  /** Rounds of digests asked for at most, until every serving HSM answers at the same applied index. */
  static final int MAX_ROUNDS = 10;
  static final long ROUND_PAUSE_MS = 150;
  /**
   * Bounds that keep a whole check (rounds, then repairs) under a client's 30 s request timeout. A check
   * that asked an agent killed mid-request would otherwise wait the agent timeout (60 s) per round, and
   * every cluster.check in the meantime joins it (seen in CI: the periodic check started during a kill).
   * A digest is a token rescan (tens of milliseconds on a warm token, 1.0-1.8 s measured on one seconds after
   * its agent restarted); an HSM that takes longer than this bound is reported as skipped.
   */
  static final long DIGEST_TIMEOUT_MS = 5_000;
  static final long ROUNDS_BUDGET_MS = 10_000;
  static final long REPAIR_TIMEOUT_MS = 10_000;

  private final Vertx vertx;
  private final HsmRegistry registry;
  private final AgentCalls digestCalls;
  private final AgentCalls repairCalls;
  private Future<JsonObject> running;

  AntiEntropy(Vertx vertx, HsmRegistry registry, long timeoutMs) {
    this.vertx = vertx;
    this.registry = registry;
    this.digestCalls = new AgentCalls(vertx, Math.min(timeoutMs, DIGEST_TIMEOUT_MS));
    this.repairCalls = new AgentCalls(vertx, Math.min(timeoutMs, REPAIR_TIMEOUT_MS));
  }

  /**
   * Rounds of the periodic check. Each digest holds its HSM's applier for the length of a token rescan
   * (measured: 1.0-1.8 s on an agent seconds after its restart), so ten rounds in a row stalled that HSM's
   * applies for ~10 s, and with another HSM down every creation waited for it (FrontDoorsTest: 15 s).
   */
  static final int BACKGROUND_ROUNDS = 2;

  /** Runs one check as an operator asked for it (or joins the one running) and returns its report. */
  Future<JsonObject> run() {
    return run(MAX_ROUNDS);
  }

  /**
   * The periodic check: fewer rounds, and none while an HSM has just started serving (its applier is
   * catching up and must not be held) or while any known HSM is not serving: then every HSM left may be
   * needed for durability, and a digest pauses its applying for a token rescan (FrontDoorsTest, hsm3
   * killed 3 s after hsm2 had warmed up: hsm2's digests took 6.2 and 4.6 s under load and a creation
   * waited 20 s, two durability timeouts). Empty when skipped.
   */
  Future<java.util.Optional<JsonObject>> runInBackground() {
    long now = System.nanoTime();
    if (running == null && registry.all().stream().anyMatch(v -> v.warmingUp(now) || !v.serving())) {
      return Future.succeededFuture(java.util.Optional.empty());
    }
    return run(BACKGROUND_ROUNDS).map(java.util.Optional::of);
  }

  private Future<JsonObject> run(int rounds) {
    if (running == null) {
      running = check(rounds).onComplete(ar -> running = null);
    }
    return running;
  }

  /**
   * Each HSM's digest is taken at exactly one applied index (between two entries). Under load the HSMs
   * are rarely at the same index at the same moment, so up to {@link #MAX_ROUNDS} rounds are asked for,
   * and the round where the most HSMs answered at one index is compared; HSMs at another index are
   * reported as skipped ("behind"), never as inconsistent.
   */
  private Future<JsonObject> check(int maxRounds) {
    long roundsUntil = System.nanoTime() + ROUNDS_BUDGET_MS * 1_000_000;
    return round(1, maxRounds, null, roundsUntil).compose(best -> compare(best.hsms(), best.replies()));
  }

  private record Round(List<HsmView> hsms, List<Future<JsonObject>> replies, int atTop) {}

  private Future<Round> round(int n, int maxRounds, Round best, long until) {
    List<HsmView> hsms = registry.serving();
    List<Future<JsonObject>> asked = digestCalls.askEach(hsms, Op.AGENT_DIGEST);
    return Future.join(asked).transform(ignored -> {
      List<Future<JsonObject>> digests = DigestReplies.checked(hsms, asked);
      Round r = new Round(hsms, digests, atTop(digests));
      Round better = best == null || r.atTop() >= best.atTop() ? r : best;
      if (better.atTop() == hsms.size() || n >= maxRounds || System.nanoTime() > until) {
        return Future.succeededFuture(better);
      }
      io.vertx.core.Promise<Round> next = io.vertx.core.Promise.promise();
      vertx.setTimer(ROUND_PAUSE_MS, t -> round(n + 1, maxRounds, better, until).onComplete(next));
      return next.future();
    });
  }

  /** How many replies are final and at the highest applied index among them. */
  private static int atTop(List<Future<JsonObject>> replies) {
    long top = replies.stream().filter(Future::succeeded).mapToLong(f -> f.result().getLong("applied")).max().orElse(-1);
    return (int) replies.stream()
        .filter(f -> f.succeeded() && f.result().getLong("applied") == top && !unconfirmed(f.result())).count();
  }

  /**
   * A digest whose HSM saw a difference between its token and its cache for the first time: not adopted yet
   * (SoftHSM2 can miss an object for a moment), so the digest is not final; the next round's, 150 ms later,
   * either no longer sees it or adopts it.
   */
  private static boolean unconfirmed(JsonObject digest) {
    return digest.getBoolean("driftUnconfirmed", false);
  }

  private Future<JsonObject> compare(List<HsmView> hsms, List<Future<JsonObject>> replies) {
    JsonArray skipped = new JsonArray();
    List<JsonObject> stable = new ArrayList<>();
    for (int i = 0; i < hsms.size(); i++) {
      Future<JsonObject> f = replies.get(i);
      if (f.failed()) {
        skipped.add(new JsonObject().put("hsmId", hsms.get(i).hsmId).put("reason", f.cause().getMessage()));
      } else if (unconfirmed(f.result())) {
        skipped.add(new JsonObject().put("hsmId", hsms.get(i).hsmId)
            .put("reason", "its token differed from its cache once; not confirmed yet"));
      } else if (f.result().getLong("applied").equals(f.result().getLong("appliedAfter"))) {
        stable.add(f.result());
      } else {
        skipped.add(new JsonObject().put("hsmId", hsms.get(i).hsmId).put("reason", "applied mutations during the scan"));
      }
    }
    // An HSM the cluster knows but that is not serving (down, frozen, catching up) is named too: a check
    // that leaves one out says so rather than looking complete.
    for (HsmView v : registry.all()) {
      if (hsms.stream().noneMatch(h -> h.hsmId.equals(v.hsmId))) {
        skipped.add(new JsonObject().put("hsmId", v.hsmId).put("reason", "not serving (" + v.state() + ")"));
      }
    }
    long top = stable.stream().mapToLong(d -> d.getLong("applied")).max().orElse(0);
    List<JsonObject> compared = new ArrayList<>();
    for (JsonObject d : stable) {
      if (d.getLong("applied") == top) {
        compared.add(d);
      } else {
        skipped.add(new JsonObject().put("hsmId", d.getString("hsmId")).put("reason", "behind (applied " + d.getLong("applied") + " < " + top + ")"));
      }
    }
    JsonObject digests = new JsonObject();
    compared.forEach(d -> digests.put(d.getString("hsmId"), d.getString("digest")));
    JsonObject report = new JsonObject().put("applied", top).put("digests", digests).put("skipped", skipped);
    // Users, ACLs and settings: reported, never repaired by majority (which user record is right is an
    // admin's call, and a lockout count must not be reset by a vote).
    JsonObject usersDigests = new JsonObject();
    compared.forEach(d -> usersDigests.put(d.getString("hsmId"), d.getString("usersDigest")));
    boolean usersAgree = compared.stream().map(d -> d.getString("usersDigest")).distinct().count() <= 1;
    report.put("usersDigests", usersDigests).put("usersConsistent", usersAgree);
    if (!usersAgree) {
      JsonArray differ = differingRecords(compared);
      report.put("usersDiffer", differ);
      LOG.warning("anti-entropy: HSMs hold different users, key ACLs or settings: " + usersDigests.encode()
          + "; records that differ: " + differ.encode());
    }
    if (compared.stream().map(d -> d.getString("digest")).distinct().count() <= 1) {
      return Future.succeededFuture(report.put("consistent", usersAgree).put("repaired", new JsonArray())
          .put("unexpected", new JsonArray()).put("mismatched", new JsonArray()));
    }
    return reconcile(compared, report);
  }

  /** At most this many differing records are named in a report (the count of all is given beside). */
  static final int MAX_DIFFERING_NAMED = 20;

  /**
   * The user-model records whose short digests are not the same on every compared HSM ("-" where an HSM
   * lacks the record), by name: what an operator needs to tell a drifted lockout count from a lost ACL.
   */
  static JsonArray differingRecords(List<JsonObject> compared) {
    Map<String, Map<String, String>> byRecord = new TreeMap<>();
    for (JsonObject d : compared) {
      JsonObject records = d.getJsonObject("usersRecords", new JsonObject());
      for (String name : records.fieldNames()) {
        byRecord.computeIfAbsent(name, k -> new TreeMap<>()).put(d.getString("hsmId"), records.getString(name));
      }
    }
    JsonArray out = new JsonArray();
    for (Map.Entry<String, Map<String, String>> e : byRecord.entrySet()) {
      Map<String, String> on = e.getValue();
      if (on.size() == compared.size() && new TreeSet<>(on.values()).size() == 1) {
        continue;
      }
      if (out.size() == MAX_DIFFERING_NAMED) {
        out.add(new JsonObject().put("record", "...").put("more", true));
        break;
      }
      JsonObject where = new JsonObject();
      compared.forEach(d -> where.put(d.getString("hsmId"), on.getOrDefault(d.getString("hsmId"), "-")));
      out.add(new JsonObject().put("record", e.getKey()).put("on", where));
    }
    return out;
  }

  private Future<JsonObject> reconcile(List<JsonObject> compared, JsonObject report) {
    // keyId -> (hsmId -> metadata line)
    Map<String, Map<String, String>> holders = new TreeMap<>();
    for (JsonObject d : compared) {
      for (Object o : d.getJsonArray("keys")) {
        JsonObject k = (JsonObject) o;
        if (k.getBoolean("exportable", false) || !k.getBoolean("extractable", true)) {
          continue;
        }
        holders.computeIfAbsent(k.getString("keyId"), x -> new TreeMap<>())
            .put(d.getString("hsmId"), k.getString("spec") + "|" + k.getString("usage") + "|" + k.getString("label"));
      }
    }
    JsonArray unexpected = new JsonArray();
    JsonArray mismatched = new JsonArray();
    List<Future<JsonObject>> repairs = new ArrayList<>();
    for (Map.Entry<String, Map<String, String>> e : holders.entrySet()) {
      Map<String, String> on = e.getValue();
      if (new TreeSet<>(on.values()).size() > 1) {
        mismatched.add(new JsonObject().put("keyId", e.getKey()).put("on", new JsonObject(new TreeMap<>(on))));
      }
      if (on.size() == compared.size()) {
        continue;
      }
      if (on.size() * 2 > compared.size()) {
        repairs.add(repair(e.getKey(), on.keySet().iterator().next(), missing(compared, on)));
      } else {
        unexpected.add(new JsonObject().put("keyId", e.getKey()).put("on", new JsonArray(List.copyOf(on.keySet()))));
        on.keySet().forEach(h -> {
          HsmView v = registry.get(h);
          if (v != null) {
            v.lastError = "anti-entropy: object " + e.getKey() + " exists here but not on most HSMs";
          }
        });
      }
    }
    return Future.join(repairs).transform(ignored -> {
      JsonArray repaired = new JsonArray();
      boolean allRepaired = true;
      for (Future<JsonObject> f : repairs) {
        if (f.succeeded()) {
          repaired.add(f.result());
        } else {
          allRepaired = false;
          repaired.add(new JsonObject().put("failed", f.cause().getMessage()));
        }
      }
      boolean consistent = allRepaired && unexpected.isEmpty() && mismatched.isEmpty()
          && report.getBoolean("usersConsistent");
      if (!repairs.isEmpty()) {
        LOG.warning("anti-entropy repaired " + repaired.encode());
      }
      return Future.succeededFuture(report.put("consistent", consistent).put("repaired", repaired)
          .put("unexpected", unexpected).put("mismatched", mismatched));
    });
  }

  private static JsonArray missing(List<JsonObject> compared, Map<String, String> on) {
    JsonArray m = new JsonArray();
    compared.stream().map(d -> d.getString("hsmId")).filter(h -> !on.containsKey(h)).forEach(m::add);
    return m;
  }

  /** Asks a holder to re-replicate the key: a no-op on HSMs that have it, a restore on those that lost it. */
  private Future<JsonObject> repair(String keyId, String holder, JsonArray missingOn) {
    JsonObject request = new JsonObject().put("op", Op.AGENT_REPAIR.wire()).put("keyId", keyId);
    HsmView v = registry.get(holder);
    return repairCalls.ask(v != null ? v : new HsmView(holder), request)
        .map(reply -> new JsonObject().put("keyId", keyId).put("from", holder).put("to", missingOn)
            .put("seq", reply.getLong("seq")));
  }
}
