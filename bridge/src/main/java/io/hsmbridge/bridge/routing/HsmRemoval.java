package io.hsmbridge.bridge.routing;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Op;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

/**
 * Takes an HSM out of the cluster: drain it (no new requests; wait, bounded, for those in flight), then
 * ask another serving HSM to commit the smaller Raft group, then forget it. Its process and token are
 * the operator's to stop and keep or wipe (the CLI does both).
 */
final class HsmRemoval {
  private static final long DRAIN_LIMIT_MS = 30_000;
  private static final long DRAIN_POLL_MS = 50;

  private final Vertx vertx;
  private final HsmRegistry registry;
  private final AgentCalls agents;

  HsmRemoval(Vertx vertx, HsmRegistry registry, long timeoutMs) {
    this.vertx = vertx;
    this.registry = registry;
    this.agents = new AgentCalls(vertx, timeoutMs);
  }

  Future<JsonObject> remove(String hsmId) {
    HsmView leaving = registry.get(hsmId);
    if (leaving == null) {
      return Future.failedFuture(new HsmException(ErrorCode.INVALID_PARAMETER, "no HSM '" + hsmId + "' in this cluster"));
    }
    HsmView other = registry.choose(v -> !v.hsmId.equals(hsmId));
    if (other == null) {
      return Future.failedFuture(new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY,
          "cannot remove " + hsmId + ": no other HSM is serving (a cluster keeps at least one HSM)"));
    }
    JsonArray remaining = new JsonArray();
    for (Object o : other.peers) {
      JsonObject p = (JsonObject) o;
      if (!hsmId.equals(p.getString("id"))) {
        remaining.add(p);
      }
    }
    if (remaining.isEmpty()) {
      return Future.failedFuture(new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "cannot remove the last HSM"));
    }
    leaving.draining = true;
    return drained(leaving, System.currentTimeMillis() + DRAIN_LIMIT_MS)
        .compose(v -> agents.ask(other, new JsonObject().put("op", Op.AGENT_SET_PEERS.wire()).put("peers", remaining)))
        .map(reply -> {
          registry.remove(hsmId);
          JsonArray ids = new JsonArray();
          reply.getJsonArray("peers").forEach(p -> ids.add(((JsonObject) p).getString("id")));
          return new JsonObject().put("removed", hsmId).put("peers", ids);
        })
        .onFailure(e -> leaving.draining = false);
  }

  private Future<Void> drained(HsmView v, long deadline) {
    Promise<Void> done = Promise.promise();
    poll(v, deadline, done);
    return done.future();
  }

  private void poll(HsmView v, long deadline, Promise<Void> done) {
    if (v.inFlight.isEmpty() || !v.alive) {
      done.complete();
    } else if (System.currentTimeMillis() > deadline) {
      done.fail(new HsmException(ErrorCode.TIMEOUT, v.hsmId + " still has " + v.inFlight.size()
          + " request(s) in flight after " + DRAIN_LIMIT_MS / 1000 + " s; not removed"));
    } else {
      vertx.setTimer(DRAIN_POLL_MS, t -> poll(v, deadline, done));
    }
  }
}
