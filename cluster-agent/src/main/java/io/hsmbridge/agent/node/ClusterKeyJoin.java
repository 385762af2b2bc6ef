package io.hsmbridge.agent.node;

import io.hsmbridge.agent.Failures;
import io.hsmbridge.agent.membership.TransportCertificates;
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
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Base64;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * Gets the cluster key into a token, and hands it to joiners. The first HSM of a new cluster creates it
 * inside its token. A joiner's SO makes an RSA transport key pair inside the joiner's token (kept across
 * restarts), the cluster CA certifies its public half ({@link TransportCertificates}: the agent writes the
 * request to its state directory and waits for the certificate beside it), and the joiner sends that
 * certificate to {@code hsmbridge.v1.cluster.key}; a member that holds the cluster key checks that the cluster
 * CA issued it, as a transport key certificate, for the HSM that asks, imports the certified key as a trusted
 * key, wraps the cluster key to it (RSA-OAEP) and answers with the blob; the joiner's SO unwraps it as a
 * trusted key, once the key's check value (computed inside the token) is the one the certificate carries. The
 * plaintext key never leaves a token; the event bus carries only the certificate and the wrapped blob, over the
 * cluster's mutual TLS.
 *
 * <p>Trust: only agents (an agent certificate of the cluster CA) may ask, or answer: every member's
 * EventBusGuard refuses a frame to this address from a front door's or an application's link, and the
 * membership refuses their consuming it (AddressPolicy). And the cluster key is wrapped only to a key the CA
 * certified: the holder of an agent's TLS key without its token cannot ask with a key pair of its own, nor, by
 * answering, make a joiner install a key of its choosing.
 */
final class ClusterKeyJoin {
  private static final Logger LOG = Logger.getLogger(ClusterKeyJoin.class.getName());
  private static final Duration JOIN_LIMIT = Duration.ofMinutes(3);
  private static final long RETRY_MS = 500;
  /** After a refusal: slower, so a misconfigured joiner logs one warning every 2 s, not two a second. */
  private static final long REFUSED_RETRY_MS = 2_000;
  /** How long a joiner waits for its transport key certificate (an operator may sign it by hand). */
  private static final Duration CERTIFICATE_WAIT = Duration.ofMinutes(30);
  private static final int MAX_CERTIFICATE_FIELD_CHARS = (TransportCertificates.MAX_CERTIFICATE_BYTES + 2) / 3 * 4;

  private final Vertx vertx;
  private final HsmToken hsm;
  private final String hsmId;
  /** Where the joiner writes its transport key request and finds the CA's certificate of that key. */
  private final Path transportDir;

  ClusterKeyJoin(Vertx vertx, HsmToken hsm, String hsmId, Path transportDir) {
    this.vertx = vertx;
    this.hsm = hsm;
    this.hsmId = hsmId;
    this.transportDir = transportDir;
  }

  /** Blocks until the token holds the cluster key. */
  void ensure(boolean createIfMissing) {
    if (!hsm.clusterKeys().hasClusterKey()) {
      if (createIfMissing) {
        hsm.clusterKeys().createClusterKey();
        // The backup key (PBK) is born beside the cluster key and travels with it to every joiner.
        hsm.backupKeys().createBackupKey();
        LOG.info(hsmId + " created the cluster key and the backup key inside token '" + hsm.label() + "'");
      } else {
        join();
      }
    }
    publishCheckValue();
  }

  /**
   * Writes the cluster key's check value where whoever certifies a joiner's transport key reads it (the CLI, the
   * container script; docs/cluster-transport.md). It is public: equal values mean the same key, nothing more.
   */
  private void publishCheckValue() {
    byte[] check = hsm.clusterKeys().clusterKeyCheckValue();
    Path file = transportDir.resolve(TransportCertificates.CHECK_VALUE_FILE);
    try {
      Files.createDirectories(transportDir);
      TransportCertificates.writeCheckValue(file, check);
    } catch (IOException e) {
      LOG.warning(hsmId + " could not write " + file + " (joiners' transport keys are certified with it): " + e);
    }
    LOG.info(hsmId + " holds the cluster key with check value " + java.util.HexFormat.of().formatHex(check));
  }

  private void join() {
    X509Certificate certificate = transportCertificate();
    byte[] expectedCheck = TransportCertificates.clusterKeyCheck(certificate);
    if (expectedCheck == null) {
      throw new HsmException(ErrorCode.CONFIG_INVALID, "the transport key certificate in " + transportDir
          + " carries no cluster key check value: certify the request again with ./hsmbridge cluster transport-cert");
    }
    JsonObject request = new JsonObject().put("hsmId", hsmId).put("certificate", Base64.getEncoder().encodeToString(der(certificate)));
    long deadline = System.nanoTime() + JOIN_LIMIT.toNanos();
    while (true) {
      try {
        JsonObject reply = vertx.eventBus().<JsonObject>request(Addresses.CLUSTER_KEY, request,
                new DeliveryOptions().setSendTimeout(20_000))
            .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS).body();
        ClusterKeys.JoinerKeys keys = joinerKeys(reply);
        try {
          // Destroys the transport key pair once the key is in: its files are spent.
          hsm.clusterKeys().installClusterKey(keys, expectedCheck);
        } catch (HsmException e) {
          if (e.code() != ErrorCode.ACCESS_DENIED) {
            throw e;
          }
          // Not the cluster's key: whoever answered is no honest member. Ask again; another member may answer.
          LOG.warning(hsmId + " refused the cluster key from " + reply.getString("from") + ": " + e.getMessage());
          if (System.nanoTime() > deadline) {
            throw e;
          }
          sleep();
          continue;
        }
        forgetTransportFiles();
        LOG.info(hsmId + " received " + (1 + keys.newerClusterKeys().size()) + " cluster key generations and "
            + keys.backupKeys().size() + " backup key generations from " + reply.getString("from"));
        return;
      } catch (java.util.concurrent.ExecutionException e) {
        boolean nobodyYet = e.getCause() instanceof ReplyException
            && ((ReplyException) e.getCause()).failureType() == ReplyFailure.NO_HANDLERS;
        if (e.getCause() instanceof ReplyException r && r.failureCode() == ErrorCode.ACCESS_DENIED.code()) {
          // A certificate for another cluster key or CA; or a rogue answerer refusing: ask again until the limit.
          LOG.warning(hsmId + ": a member refused to wrap the cluster key to this HSM's transport key: " + r.getMessage());
          if (System.nanoTime() > deadline) {
            throw new HsmException(ErrorCode.ACCESS_DENIED, "members refused to wrap the cluster key to this HSM's"
                + " transport key for " + JOIN_LIMIT.toMinutes() + " min; the last said: " + r.getMessage());
          }
          sleep(REFUSED_RETRY_MS);
          continue;
        }
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

  /**
   * The CA's certificate of this token's transport key, DER: made (once) and requested when missing, then
   * waited for. The key survives restarts, so a certificate signed while this agent was down still fits.
   */
  private X509Certificate transportCertificate() {
    byte[] spki = hsm.clusterKeys().transportPublicKey();
    if (spki == null) {
      spki = hsm.clusterKeys().createTransportKey();
    }
    Path certificateFile = transportDir.resolve(TransportCertificates.CERTIFICATE_FILE);
    Path requestFile = transportDir.resolve(TransportCertificates.REQUEST_FILE);
    X509Certificate certificate = certificateOrNull(certificateFile, spki);
    if (certificate == null) {
      try {
        Files.createDirectories(transportDir);
        TransportCertificates.writeRequest(requestFile, spki);
      } catch (IOException e) {
        throw new HsmException(ErrorCode.CONFIG_INVALID, "cannot write the transport key request " + requestFile + ": " + e.getMessage());
      }
      LOG.info(hsmId + " waits for the cluster CA to certify its transport key (up to " + CERTIFICATE_WAIT.toMinutes()
          + " min): on the machine that holds the CA, ./hsmbridge cluster transport-cert --hsm-id " + hsmId + " --request "
          + requestFile + " --cluster-key-check <" + TransportCertificates.CHECK_VALUE_FILE + " of an HSM that holds the"
          + " cluster key> --out " + certificateFile + (Files.exists(certificateFile) ? " (the certificate there is for"
          + " another transport key)" : ""));
      long deadline = System.nanoTime() + CERTIFICATE_WAIT.toNanos();
      while ((certificate = certificateOrNull(certificateFile, spki)) == null) {
        if (System.nanoTime() > deadline) {
          throw new HsmException(ErrorCode.NO_HSM_AVAILABLE, "no certificate of this HSM's transport key in "
              + certificateFile + " after " + CERTIFICATE_WAIT.toMinutes() + " min; sign " + requestFile
              + " with ./hsmbridge cluster transport-cert and start the agent again");
        }
        sleep();
      }
      LOG.info(hsmId + " found the certificate of its transport key in " + certificateFile);
    }
    return certificate;
  }

  private static byte[] der(X509Certificate certificate) {
    try {
      return certificate.getEncoded();
    } catch (java.security.cert.CertificateEncodingException e) {
      throw new HsmException(ErrorCode.CONFIG_INVALID, "cannot encode the transport key certificate: " + e.getMessage());
    }
  }

  private void forgetTransportFiles() {
    for (String name : new String[] {TransportCertificates.REQUEST_FILE, TransportCertificates.CERTIFICATE_FILE}) {
      try {
        Files.deleteIfExists(transportDir.resolve(name));
      } catch (IOException e) {
        LOG.warning(hsmId + " could not delete " + transportDir.resolve(name) + " (the key it names is destroyed): " + e);
      }
    }
  }

  /** The certificate of {@code spki} in {@code file}, or null (none yet, another key's, or a file being copied in). */
  private static X509Certificate certificateOrNull(Path file, byte[] spki) {
    try {
      return TransportCertificates.certificateFor(file, spki);
    } catch (HsmException e) {
      return null;
    }
  }

  /**
   * Answers joiners' requests for the cluster key (this token must hold it): only to a transport key that the
   * cluster CA ({@code ca}) certified for the HSM that asks.
   */
  static void serve(Vertx vertx, HsmToken hsm, X509Certificate ca) {
    vertx.eventBus().<Object>consumer(Addresses.CLUSTER_KEY, message -> {
      JsonObject body = Failures.jsonBodyOrFail(message);
      if (body == null) {
        return;
      }
      vertx.<JsonObject>executeBlocking(() -> {
        Object field = body.getValue("certificate");
        if (!(field instanceof String text) || text.length() > MAX_CERTIFICATE_FIELD_CHARS) {
          throw new HsmException(ErrorCode.ACCESS_DENIED, "a joining HSM must present its transport key certificate"
              + " (field certificate, base64 DER); see docs/cluster-transport.md");
        }
        byte[] spki;
        try {
          TransportCertificates.Certified certified = TransportCertificates.verify(ca, Base64.getDecoder().decode(text),
              body.getString("hsmId"));
          if (!java.security.MessageDigest.isEqual(certified.clusterKeyCheck(), hsm.clusterKeys().clusterKeyCheckValue())) {
            throw new HsmException(ErrorCode.ACCESS_DENIED, "the transport key certificate is for another cluster key"
                + " (its check value is not this token's)");
          }
          spki = certified.spki();
        } catch (HsmException e) {
          LOG.warning("refused to wrap the cluster key for a member asking as HSM " + body.getString("hsmId") + ": "
              + e.getMessage());
          throw e;
        }
        ClusterKeys.JoinerKeys wrapped = hsm.clusterKeys().wrapForJoiner(spki);
        LOG.info("wrapped the cluster key, " + wrapped.backupKeys().size() + " backup key generations"
            + (wrapped.carrier() == null ? "" : " and their carrier") + " for joining HSM " + body.getString("hsmId"));
        return toJson(wrapped).put("from", hsm.label());
      }, false).onComplete(ar -> {
        if (ar.succeeded()) {
          message.reply(ar.result());
        } else {
          Failures.reply(message, ar.cause() instanceof IllegalArgumentException
              ? new HsmException(ErrorCode.ACCESS_DENIED, "the transport key certificate must be base64") : ar.cause());
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
    sleep(RETRY_MS);
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new HsmException(ErrorCode.INTERNAL, "interrupted while fetching the cluster key");
    }
  }
}
