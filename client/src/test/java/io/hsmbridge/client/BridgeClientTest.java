package io.hsmbridge.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The transport only: framing, reply matching and failure mapping, against a loopback peer that
 * speaks the TCP-bridge frames. It knows nothing of the operations; end-to-end tests use a real node.
 */
class BridgeClientTest extends LoopbackPeerTest {
  private JsonObject received() throws IOException {
    return FrameCodec.read(peerIn);
  }

  private void reply(JsonObject frame) throws IOException {
    FrameCodec.write(peerOut, frame);
  }

  private static HsmBridgeException failure(CompletableFuture<JsonObject> f) throws Exception {
    ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(WAIT_S, TimeUnit.SECONDS));
    return (HsmBridgeException) e.getCause();
  }

  @Test
  void sendsTheBridgeSendFrame() throws Exception {
    connect(Duration.ofSeconds(WAIT_S));
    client.requestAsync(new JsonObject().put("op", "health"));
    JsonObject f = received();
    assertEquals("send", f.getString("type"));
    assertEquals(Addresses.BRIDGE_REQUEST, f.getString("address"));
    assertEquals(new JsonObject(), f.getJsonObject("headers"));
    assertEquals(new JsonObject().put("op", "health"), f.getJsonObject("body"));
    assertTrue(f.getString("replyAddress").length() > 10);
  }

  @Test
  void matchesRepliesByAddressInAnyOrder() throws Exception {
    connect(Duration.ofSeconds(WAIT_S));
    List<CompletableFuture<JsonObject>> futures = new ArrayList<>();
    List<String> addresses = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      futures.add(client.requestAsync(new JsonObject().put("n", i)));
    }
    List<Integer> ns = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      JsonObject f = received();
      addresses.add(f.getString("replyAddress"));
      ns.add(f.getJsonObject("body").getInteger("n"));
    }
    assertEquals(20, addresses.stream().distinct().count(), "reply addresses are unique");
    for (int i = 19; i >= 0; i--) {
      reply(new JsonObject().put("type", "message").put("address", addresses.get(i))
          .put("body", new JsonObject().put("echo", ns.get(i))));
    }
    for (int i = 0; i < 20; i++) {
      assertEquals(i, futures.get(i).get(WAIT_S, TimeUnit.SECONDS).getInteger("echo"));
    }
  }

  @Test
  void manyThreadsShareOneConnection() throws Exception {
    connect(Duration.ofSeconds(WAIT_S));
    Thread echo = new Thread(() -> {
      try {
        for (int i = 0; i < 200; i++) {
          JsonObject f = received();
          reply(new JsonObject().put("type", "message").put("address", f.getString("replyAddress"))
              .put("body", f.getJsonObject("body")));
        }
      } catch (IOException e) {
        // the test's assertions report the failure
      }
    });
    echo.start();
    BlockingQueue<Throwable> errors = new LinkedBlockingQueue<>();
    List<Thread> threads = new ArrayList<>();
    for (int t = 0; t < 8; t++) {
      int id = t;
      Thread th = new Thread(() -> {
        for (int i = 0; i < 25; i++) {
          try {
            JsonObject body = new JsonObject().put("t", id).put("i", i).put("pad", "p".repeat(i * 100));
            assertEquals(body, client.request(body));
          } catch (Throwable e) {
            errors.add(e);
          }
        }
      });
      threads.add(th);
      th.start();
    }
    for (Thread th : threads) {
      th.join(TimeUnit.SECONDS.toMillis(WAIT_S * 3));
    }
    echo.join(TimeUnit.SECONDS.toMillis(WAIT_S));
    assertTrue(errors.isEmpty(), () -> "errors: " + errors);
  }

  @Test
  void errFrameBecomesTypedException() throws Exception {
    connect(Duration.ofSeconds(WAIT_S));
    CompletableFuture<JsonObject> f = client.requestAsync(new JsonObject().put("op", "key.describe"));
    String addr = received().getString("replyAddress");
    reply(new JsonObject().put("type", "err").put("address", addr).put("failureCode", 404)
        .put("failureType", "RECIPIENT_FAILURE").put("message", "UNKNOWN_KEY: no key with that id"));
    HsmBridgeException e = failure(f);
    assertEquals(ErrorCode.UNKNOWN_KEY, e.code());
    assertEquals("UNKNOWN_KEY: no key with that id", e.getMessage());
  }

  @Test
  void blockingRequestThrowsTheServerCode() throws Exception {
    connect(Duration.ofSeconds(WAIT_S));
    Thread server = new Thread(() -> {
      try {
        String addr = received().getString("replyAddress");
        reply(new JsonObject().put("type", "err").put("address", addr).put("failureCode", 460)
            .put("failureType", "RECIPIENT_FAILURE").put("message", "CRYPTO_FAILURE: decryption failed"));
      } catch (IOException ignored) {
        // reported by the assertion below timing out
      }
    });
    server.start();
    HsmBridgeException e = assertThrows(HsmBridgeException.class,
        () -> client.request(new JsonObject().put("op", "decrypt")));
    assertEquals(ErrorCode.CRYPTO_FAILURE, e.code());
    server.join();
  }

  @Test
  void vertxNoHandlersAndTimeoutFailureTypesAreMapped() {
    assertEquals(ErrorCode.NO_HSM_AVAILABLE,
        HsmBridgeException.fromFailure(-1, "NO_HANDLERS", "No handlers for address x").code());
    assertEquals(ErrorCode.TIMEOUT, HsmBridgeException.fromFailure(-1, "TIMEOUT", "Timed out").code());
    assertEquals(ErrorCode.INTERNAL, HsmBridgeException.fromFailure(999, "RECIPIENT_FAILURE", "x").code());
    assertEquals(ErrorCode.INTERNAL, HsmBridgeException.fromFailure(null, null, null).code());
  }

  @Test
  void messagesAreOneLine() {
    HsmBridgeException e = new HsmBridgeException(ErrorCode.INTERNAL, "line1\nline2\r\tx");
    assertFalse(e.getMessage().contains("\n"));
    assertEquals("INTERNAL: line1 line2  x", e.getMessage());
    assertEquals("BAD_REQUEST: malformed request", new HsmBridgeException(ErrorCode.BAD_REQUEST, null).getMessage());
  }

  @Test
  void unaddressedErrFailsTheOldestPendingRequest() throws Exception {
    connect(Duration.ofSeconds(WAIT_S));
    CompletableFuture<JsonObject> first = client.requestAsync(new JsonObject().put("n", 1));
    CompletableFuture<JsonObject> second = client.requestAsync(new JsonObject().put("n", 2));
    received();
    String secondAddr = received().getString("replyAddress");
    reply(new JsonObject().put("type", "err").put("message", "access_denied"));
    HsmBridgeException e = failure(first);
    assertEquals(ErrorCode.BAD_REQUEST, e.code());
    assertTrue(e.getMessage().contains("access_denied"));
    assertFalse(second.isDone());
    reply(new JsonObject().put("type", "message").put("address", secondAddr).put("body", new JsonObject()));
    assertEquals(new JsonObject(), second.get(WAIT_S, TimeUnit.SECONDS));
  }

  @Test
  void connectionLossFailsAllPendingAndLaterRequests() throws Exception {
    connect(Duration.ofSeconds(WAIT_S));
    CompletableFuture<JsonObject> a = client.requestAsync(new JsonObject());
    CompletableFuture<JsonObject> b = client.requestAsync(new JsonObject());
    received();
    received();
    peer.close();
    assertEquals(ErrorCode.NO_HSM_AVAILABLE, failure(a).code());
    assertEquals(ErrorCode.NO_HSM_AVAILABLE, failure(b).code());
    assertFalse(client.isOpen());
    assertEquals(ErrorCode.NO_HSM_AVAILABLE, failure(client.requestAsync(new JsonObject())).code());
  }

  @Test
  void garbageFromThePeerClosesTheConnection() throws Exception {
    connect(Duration.ofSeconds(WAIT_S));
    CompletableFuture<JsonObject> a = client.requestAsync(new JsonObject());
    received();
    peerOut.write(new byte[] {0x7f, 0x7f, 0x7f, 0x7f});
    peerOut.flush();
    assertEquals(ErrorCode.NO_HSM_AVAILABLE, failure(a).code());
  }

  @Test
  void requestWithoutReplyTimesOutAndALateReplyIsIgnored() throws Exception {
    connect(Duration.ofMillis(200));
    CompletableFuture<JsonObject> a = client.requestAsync(new JsonObject());
    String addr = received().getString("replyAddress");
    HsmBridgeException e = failure(a);
    assertEquals(ErrorCode.TIMEOUT, e.code());
    reply(new JsonObject().put("type", "message").put("address", addr).put("body", new JsonObject()));
    reply(new JsonObject().put("type", "pong"));
    // The connection is still usable after a timeout.
    CompletableFuture<JsonObject> b = client.requestAsync(new JsonObject());
    String addrB = received().getString("replyAddress");
    reply(new JsonObject().put("type", "message").put("address", addrB).put("body", new JsonObject().put("ok", true)));
    assertTrue(b.get(WAIT_S, TimeUnit.SECONDS).getBoolean("ok"));
  }

  @Test
  void closeFailsPendingRequests() throws Exception {
    connect(Duration.ofSeconds(WAIT_S));
    CompletableFuture<JsonObject> a = client.requestAsync(new JsonObject());
    client.close();
    assertEquals(ErrorCode.NO_HSM_AVAILABLE, failure(a).code());
    client.close();
  }

  @Test
  void connectToAClosedPortIsNoHsmAvailable() throws IOException {
    int port = server.getLocalPort();
    server.close();
    HsmBridgeException e = assertThrows(HsmBridgeException.class, () -> BridgeClient.connect("127.0.0.1", port));
    assertEquals(ErrorCode.NO_HSM_AVAILABLE, e.code());
    assertTrue(e.getMessage().startsWith("NO_HSM_AVAILABLE: cannot connect to hsmbridge at 127.0.0.1:" + port));
  }
}
