package io.hsmbridge.agent.node;

import io.hsmbridge.agent.Failures;
import io.hsmbridge.pkcs11.ClusterKeys;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.Vertx;
import io.vertx.core.eventbus.DeliveryOptions;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.Base64;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * Gets the cluster key into a token, and hands it to joiners. The first HSM of a new cluster creates it
 * inside its token. A joiner's SO makes an RSA transport key pair inside the joiner's token and sends
 * the public half to {@code hsmbridge.v1.cluster.key}; a member that holds the cluster key imports it as
 * a trusted key, wraps the cluster key to it (RSA-OAEP) and answers with the blob; the joiner's SO
 * unwraps it as a trusted key. The plaintext key never leaves a token; the event bus carries only the
 * public key and the wrapped blob, over the cluster's mutual TLS.
 *
 * <p>Trust: only agents (an agent certificate of the cluster CA) may ask, or answer: every member's
 * EventBusGuard refuses a frame to this address from a front door's or an application's link, and the
 * membership refuses their consuming it (AddressPolicy). The CA's key is what admits an HSM to the cluster
 * (see docs/cluster-transport.md). Not yet: the holder of an agent certificate and its TLS key (without the
 * token) can still ask with a key pair of its own, and read the cluster key (docs/security.md).
 */
final class ClusterKeyJoin {
  private static final Logger LOG = Logger.getLogger(ClusterKeyJoin.class.getName());
  private static final Duration JOIN_LIMIT = Duration.ofMinutes(3);
  private static final long RETRY_MS = 500;

  private final Vertx vertx;
  private final HsmToken hsm;
  private final String hsmId;

  ClusterKeyJoin(Vertx vertx, HsmToken hsm, String hsmId) {
    this.vertx = vertx;
    this.hsm = hsm;
    this.hsmId = hsmId;
  }

  /** Blocks until the token holds the cluster key. */
  void ensure(boolean createIfMissing) {
    if (hsm.clusterKeys().hasClusterKey()) {
      return;
    }
    if (createIfMissing) {
      hsm.clusterKeys().createClusterKey();
      // The backup key (PBK) is born beside the cluster key and travels with it to every joiner.
      hsm.backupKeys().createBackupKey();
      LOG.info(hsmId + " created the cluster key and the backup key inside token '" + hsm.label() + "'");
      return;
    }
    String spki = Base64.getEncoder().encodeToString(hsm.clusterKeys().createTransportKey());
    JsonObject request = new JsonObject().put("hsmId", hsmId).put("spki", spki);
    long deadline = System.nanoTime() + JOIN_LIMIT.toNanos();
    while (true) {
      try {
        JsonObject reply = vertx.eventBus().<JsonObject>request(Addresses.CLUSTER_KEY, request,
                new DeliveryOptions().setSendTimeout(20_000))
            .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS).body();
        ClusterKeys.JoinerKeys keys = joinerKeys(reply);
        hsm.clusterKeys().installClusterKey(keys);
        LOG.info(hsmId + " received " + (1 + keys.newerClusterKeys().size()) + " cluster key generations and "
            + keys.backupKeys().size() + " backup key generations from " + reply.getString("from"));
        return;
      } catch (java.util.concurrent.ExecutionException e) {
        boolean nobodyYet = e.getCause() instanceof ReplyException
            && ((ReplyException) e.getCause()).failureType() == ReplyFailure.NO_HANDLERS;
        if (!nobodyYet) {
          throw new HsmException(ErrorCode.INTERNAL, "cannot get the cluster key from a member: " + e.getCause().getMessage());
        }
      } catch (java.util.concurrent.TimeoutException e) {
        // a member took too long; ask again
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new HsmException(ErrorCode.INTERNAL, "interrupted while fetching the cluster key");
      }
      if (System.nanoTime() > deadline) {
        throw new HsmException(ErrorCode.NO_HSM_AVAILABLE, "no cluster member holding the cluster key answered within "
            + JOIN_LIMIT.toMinutes() + " min; is the first HSM (cluster.createKey=true) running?");
      }
      sleep();
    }
  }

  /** Answers joiners' requests for the cluster key (this token must hold it). */
  static void serve(Vertx vertx, HsmToken hsm) {
    vertx.eventBus().<Object>consumer(Addresses.CLUSTER_KEY, message -> {
      JsonObject body = Failures.jsonBodyOrFail(message);
      if (body == null) {
        return;
      }
      vertx.<JsonObject>executeBlocking(() -> {
        byte[] spki = Base64.getDecoder().decode(body.getString("spki"));
        ClusterKeys.JoinerKeys wrapped = hsm.clusterKeys().wrapForJoiner(spki);
        LOG.info("wrapped the cluster key, " + wrapped.backupKeys().size() + " backup key generations"
            + (wrapped.carrier() == null ? "" : " and their carrier") + " for joining HSM " + body.getString("hsmId"));
        return toJson(wrapped).put("from", hsm.label());
      }, false).onComplete(ar -> {
        if (ar.succeeded()) {
          message.reply(ar.result());
        } else {
          Failures.reply(message, ar.cause() instanceof IllegalArgumentException
              ? HsmException.badParam("spki must be base64") : ar.cause());
        }
      });
    });
  }

  /**
   * The reply's fields: {@code wrapped} (generation 1 of the cluster key), {@code newerClusterKeys} and
   * {@code backupKeys} [{generation, label, wrapped}], {@code carrier}.
   */
  static JsonObject toJson(ClusterKeys.JoinerKeys keys) {
    Base64.Encoder b64 = Base64.getEncoder();
    JsonObject json = new JsonObject().put("wrapped", b64.encodeToString(keys.clusterKey()))
        .put("backupKeys", toJson(keys.backupKeys())).put("newerClusterKeys", toJson(keys.newerClusterKeys()));
    if (keys.carrier() != null) {
      json.put("carrier", b64.encodeToString(keys.carrier()));
    }
    return json;
  }

  private static io.vertx.core.json.JsonArray toJson(java.util.List<ClusterKeys.WrappedGeneration> generations) {
    io.vertx.core.json.JsonArray json = new io.vertx.core.json.JsonArray();
    for (ClusterKeys.WrappedGeneration g : generations) {
      json.add(new JsonObject().put("generation", g.generation()).put("label", g.label())
          .put("wrapped", Base64.getEncoder().encodeToString(g.wrapped())));
    }
    return json;
  }

  /** What {@link #toJson} wrote; a member of this cluster sent it over the cluster's mutual TLS. */
  static ClusterKeys.JoinerKeys joinerKeys(JsonObject reply) {
    Base64.Decoder b64 = Base64.getDecoder();
    String carrier = reply.getString("carrier");
    return new ClusterKeys.JoinerKeys(b64.decode(reply.getString("wrapped")), generations(reply, "newerClusterKeys"),
        generations(reply, "backupKeys"), carrier == null ? null : b64.decode(carrier));
  }

  private static java.util.List<ClusterKeys.WrappedGeneration> generations(JsonObject reply, String field) {
    java.util.List<ClusterKeys.WrappedGeneration> generations = new java.util.ArrayList<>();
    for (Object o : reply.getJsonArray(field, new io.vertx.core.json.JsonArray())) {
      JsonObject g = (JsonObject) o;
      generations.add(new ClusterKeys.WrappedGeneration(g.getInteger("generation"), g.getString("label"),
          Base64.getDecoder().decode(g.getString("wrapped"))));
    }
    return generations;
  }

  private static void sleep() {
    try {
      Thread.sleep(RETRY_MS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new HsmException(ErrorCode.INTERNAL, "interrupted while fetching the cluster key");
    }
  }
}
