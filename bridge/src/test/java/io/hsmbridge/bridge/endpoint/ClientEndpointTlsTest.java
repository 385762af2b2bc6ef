package io.hsmbridge.bridge.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.hsmbridge.agent.membership.ClusterCa;
import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.ClientTls;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.Vertx;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The endpoint over TLS in-process, with an echo consumer on the request address: many threads
 * pipelining on one TLS {@link BridgeClient} (whose reads time out every 20 ms, inside TLS records too)
 * get every reply, matched to its request.
 */
class ClientEndpointTlsTest {
  @TempDir
  Path dir;
  private Vertx vertx;
  private ClientEndpoint endpoint;
  private ClientTls tls;

  @BeforeEach
  void start() throws Exception {
    ClusterCa ca = ClusterCa.create(dir.resolve("ca"), "tls-test");
    ClusterCa.MemberFiles server = ca.issueMember("bridge", ClusterCa.MemberKind.FRONT_DOOR, List.of("127.0.0.1"),
        dir.resolve("bridge"));
    vertx = Vertx.vertx();
    vertx.eventBus().<JsonObject>consumer(Addresses.BRIDGE_REQUEST, m -> m.reply(new JsonObject()
        .put("echo", m.body().getValue("n")).put("pad", m.body().getString("pad"))));
    EndpointSettings settings = EndpointSettings.plaintext("127.0.0.1", 0)
        .withTls(new EndpointSettings.Tls(server.certificate(), server.key(), server.ca()));
    endpoint = ClientEndpoint.start(vertx, settings).toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
    tls = ClientTls.pinning(ca.certificateFile());
  }

  @AfterEach
  void stop() throws Exception {
    vertx.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
  }

  @Test
  void pipelinedRequestsFromManyThreadsOnOneTlsConnection() throws Exception {
    String pad = "p".repeat(20_000); // replies span several TLS records
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try (BridgeClient client = BridgeClient.connect("127.0.0.1", endpoint.port(), Duration.ofSeconds(30), tls)) {
      List<Future<Integer>> results = new ArrayList<>();
      for (int t = 0; t < 8; t++) {
        int thread = t;
        results.add(pool.submit(() -> {
          int ok = 0;
          for (int i = 0; i < 300; i++) {
            long n = thread * 1_000_000L + i;
            JsonObject r = i % 3 == 0
                ? client.requestAsync(new JsonObject().put("n", n).put("pad", pad)).get(30, TimeUnit.SECONDS)
                : client.request(new JsonObject().put("n", n).put("pad", i % 2 == 0 ? pad : "")) ;
            assertEquals(n, r.getLong("echo"));
            ok++;
          }
          return ok;
        }));
      }
      int total = 0;
      for (Future<Integer> f : results) {
        total += f.get(120, TimeUnit.SECONDS);
      }
      assertEquals(2400, total);
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void aRequestOverTheFrameCapIsRefusedByTheClientAndTheConnectionStays() {
    try (BridgeClient client = BridgeClient.connect("127.0.0.1", endpoint.port(), Duration.ofSeconds(30), tls)) {
      HsmBridgeException e = assertThrows(HsmBridgeException.class,
          () -> client.request(new JsonObject().put("n", 1).put("pad", "x".repeat(300 * 1024))));
      assertEquals(ErrorCode.INPUT_TOO_LARGE, e.code());
      assertEquals(2L, client.request(new JsonObject().put("n", 2).put("pad", "")).getLong("echo"));
    }
  }
}
