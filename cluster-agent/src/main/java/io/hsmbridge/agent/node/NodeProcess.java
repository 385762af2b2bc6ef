package io.hsmbridge.agent.node;

import io.hsmbridge.agent.membership.ClusterConfig;
import io.hsmbridge.agent.membership.ClusterTransport;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * What every node process does alike, whatever it runs (agent, bridge, or both in one): open its token,
 * start Vert.x (clustered or local), write and delete {@code endpoint.json}, close Vert.x. The agent
 * process ({@link AgentNode}) and the bridge module's processes share these.
 */
public final class NodeProcess {
  private static final Logger LOG = Logger.getLogger(NodeProcess.class.getName());
  /** The membership waits at most 5 s for the listed members and starts alone; this bounds the rest. */
  private static final long CLUSTER_JOIN_TIMEOUT_S = 60;

  private NodeProcess() {}

  /**
   * A local Vert.x by default; with {@code cluster.enabled=true}, a clustered one (mutual-TLS membership,
   * mutual-TLS event bus). The verticles are the same either way.
   */
  public static Vertx startVertx(NodeSettings config) {
    VertxOptions options = new VertxOptions().setEventLoopPoolSize(config.eventLoops());
    if (!config.cluster().enabled()) {
      return Vertx.vertx(options);
    }
    ClusterConfig cluster = config.cluster();
    try {
      Vertx vertx = ClusterTransport.start(cluster, options)
          .toCompletionStage().toCompletableFuture().get(CLUSTER_JOIN_TIMEOUT_S, TimeUnit.SECONDS);
      LOG.info("joined cluster '" + cluster.name() + "' as " + cluster.host() + ":" + cluster.memberPort()
          + " (event bus TLS on " + cluster.host() + ", members " + String.join(",", cluster.members()) + ")");
      return vertx;
    } catch (java.util.concurrent.ExecutionException e) {
      if (e.getCause() instanceof HsmException) {
        throw (HsmException) e.getCause();
      }
      throw new HsmException(io.hsmbridge.protocol.ErrorCode.INTERNAL, "cannot join the cluster: " + e.getCause());
    } catch (java.util.concurrent.TimeoutException e) {
      throw new HsmException(io.hsmbridge.protocol.ErrorCode.INTERNAL,
          "cannot join cluster '" + cluster.name() + "' within " + CLUSTER_JOIN_TIMEOUT_S + " s");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new HsmException(io.hsmbridge.protocol.ErrorCode.INTERNAL, "interrupted while joining the cluster");
    }
  }

  /** Writes {@code endpoint.json} atomically: launchers take its presence as "ready". No-op without a state dir. */
  public static void writeEndpoint(Path stateDir, JsonObject endpoint) {
    if (stateDir == null) {
      return;
    }
    try {
      Files.createDirectories(stateDir);
      Path tmp = stateDir.resolve("endpoint.json.tmp");
      Files.writeString(tmp, endpoint.encode() + "\n", StandardCharsets.UTF_8);
      Files.move(tmp, stateDir.resolve("endpoint.json"), StandardCopyOption.ATOMIC_MOVE,
          StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      throw new HsmException(io.hsmbridge.protocol.ErrorCode.CONFIG_INVALID,
          "cannot write endpoint.json in " + stateDir + ": " + e.getMessage());
    }
  }

  /** Opens the token (integrity scan, profile probe, handle cache), saying what the scan quarantined. */
  public static HsmToken openToken(io.hsmbridge.pkcs11.TokenConfig token) {
    HsmToken hsm = HsmToken.open(token);
    if (!hsm.integrity().clean()) {
      LOG.warning("integrity scan repaired " + hsm.integrity().broken().size() + " object(s); quarantined in "
          + hsm.integrity().quarantine());
    }
    return hsm;
  }

  /** Closes Vert.x (leaving the cluster in order), bounded; a slow close is logged, not thrown. */
  public static void closeVertx(Vertx vertx) {
    try {
      vertx.close().toCompletionStage().toCompletableFuture().get(20, TimeUnit.SECONDS);
    } catch (Exception e) {
      LOG.warning("vert.x did not close cleanly: " + e);
    }
  }

  public static void deleteEndpoint(Path stateDir) {
    try {
      Files.deleteIfExists(stateDir.resolve("endpoint.json"));
    } catch (IOException e) {
      LOG.warning("cannot delete stale endpoint.json: " + e.getMessage());
    }
  }
}
