package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.agent.membership.ApplicationMember;
import io.hsmbridge.client.HsmClient;
import io.hsmbridge.client.KeyHandle;
import io.hsmbridge.client.Signer;
import io.hsmbridge.protocol.Addresses;
import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Signature;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue #13 item 2, the event-bus variant: a Vert.x application that joins the cluster as a member (a
 * application certificate from {@code cluster member-cert}, {@link ApplicationMember#join}) uses the same typed
 * client over the cluster's event bus. On a real one-HSM cluster (two front doors: hsm1's host and the bridge):
 * key creation and signatures that the JDK verifies; asynchronous calls complete on the application's context;
 * a blocking call on an event loop is refused; a request without a session is refused like one over TCP; and a
 * signing loop keeps going with 0 errors while the bridge, one of the two front doors, is SIGKILLed.
 */
@Timeout(value = 600, unit = TimeUnit.SECONDS)
class EventBusClientTest {

  @Test
  void aVertxMemberUsesTheTypedClientOverTheEventBus() throws Exception {
    TestLogins logins = JceClusters.upOneHsm("eventbus");
    Path home = logins.home();
    Vertx app = null;
    HsmClient client = null;
    try {
      Path certDir = Files.createTempDirectory("hsmbridge-eventbus-app").resolve("app1");
      CliRun cert = CliRun.run(home, "cluster", "member-cert", "app1", "--out", certDir.toString());
      assertEquals(0, cert.code, cert.toString());
      CliRun again = CliRun.run(home, "cluster", "member-cert", "app1", "--out", certDir.toString());
      assertTrue(again.code != 0 && again.toString().contains("never overwritten"), "files are never overwritten: " + again);

      app = ApplicationMember.join(certDir.resolve("app1.properties"), new VertxOptions())
          .toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
      Vertx member = app;
      AtomicLong frontDoorsLeft = new AtomicLong();
      client = HsmClient.connect(HsmClient.options().eventBus(app)
          .memberLeft(action -> ApplicationMember.onMemberLeft(member, () -> {
            frontDoorsLeft.incrementAndGet();
            action.run();
          }))
          .user(TestLogins.CRYPTO_USER)
          .password(() -> logins.password(TestLogins.CRYPTO_USER)));
      assertTrue(client.toString().contains("event bus") && !client.toString().contains(new String(logins.password(TestLogins.CRYPTO_USER))),
          client.toString());

      // Creation and signatures over the event bus; the JDK verifies.
      KeyHandle key = client.keys().generate(KeySpec.EC_P256, "eventbus-signer");
      Signer signer = key.signer(Algorithm.ECDSA_SHA256);
      byte[] message = "signed over the cluster's event bus".getBytes(StandardCharsets.UTF_8);
      java.security.PublicKey publicKey = key.publicKey(); // fetched once: not from the event loop below
      assertTrue(verifies(publicKey, message, signer.sign(message)));

      // Asynchronous: completes on the application's own context.
      Context context = app.getOrCreateContext();
      CompletableFuture<Boolean> onContext = new CompletableFuture<>();
      context.runOnContext(v -> signer.signAsync(message).whenComplete((sig, failure) ->
          onContext.complete(failure == null && Vertx.currentContext() == context && verifies(publicKey, message, sig))));
      assertTrue(onContext.get(30, TimeUnit.SECONDS), "signAsync completed on the caller's context with a good signature");

      // A blocking call on the event loop would block it: refused at once, with what to use.
      CompletableFuture<Throwable> onLoop = new CompletableFuture<>();
      context.runOnContext(v -> {
        try {
          signer.sign(message);
          onLoop.complete(null);
        } catch (Throwable t) {
          onLoop.complete(t);
        }
      });
      Throwable refused = onLoop.get(30, TimeUnit.SECONDS);
      assertTrue(refused instanceof IllegalStateException && refused.getMessage().contains("signAsync"), String.valueOf(refused));

      // A member is not a user: a request without a session is refused as over TCP.
      ReplyException noSession = (ReplyException) assertThrows(java.util.concurrent.ExecutionException.class,
          () -> member.eventBus().request(Addresses.CLIENT_REQUEST, new JsonObject().put("op", "key.list"))
              .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS)).getCause();
      assertEquals(ErrorCode.NOT_AUTHENTICATED.code(), noSession.failureCode(), noSession.getMessage());
      // Malformed requests from a member get the typed error an endpoint client gets, and nothing else happens.
      for (Object bad : new Object[] {"not json", new io.vertx.core.json.JsonArray().add(1),
          new JsonObject().put("op", "no.such.op"), new JsonObject().put("op", 42),
          new JsonObject().put("op", "sign").put("keyId", "x".repeat(10_000)).put("session", "forged")}) {
        ReplyException r = (ReplyException) assertThrows(java.util.concurrent.ExecutionException.class,
            () -> member.eventBus().request(Addresses.CLIENT_REQUEST, bad)
                .toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS)).getCause();
        ErrorCode code = ErrorCode.fromCode(r.failureCode());
        assertTrue(java.util.Set.of(ErrorCode.BAD_REQUEST, ErrorCode.UNKNOWN_OPERATION, ErrorCode.INVALID_PARAMETER,
            ErrorCode.NOT_AUTHENTICATED).contains(code), "refused as malformed or unauthenticated: " + r.getMessage());
      }
      assertTrue(verifies(publicKey, message, signer.sign(message)), "the front doors still serve");

      // Resilience: a signing loop while the bridge (one of the two front doors) is SIGKILLed.
      AtomicLong signatures = new AtomicLong();
      AtomicLong errors = new AtomicLong();
      AtomicLong longestMs = new AtomicLong();
      AtomicReference<Throwable> firstError = new AtomicReference<>();
      long stopAt = System.nanoTime() + TimeUnit.SECONDS.toNanos(12); // the bridge is killed after 5 s
      Thread loop = new Thread(() -> {
        long last = System.nanoTime();
        while (System.nanoTime() < stopAt) {
          try {
            if (!verifies(publicKey, message, signer.sign(message))) {
              throw new IllegalStateException("a signature that does not verify");
            }
            signatures.incrementAndGet();
          } catch (RuntimeException e) {
            errors.incrementAndGet();
            firstError.compareAndSet(null, e);
          }
          long now = System.nanoTime();
          longestMs.accumulateAndGet(TimeUnit.NANOSECONDS.toMillis(now - last), Math::max);
          last = now;
        }
      }, "eventbus-signing-loop");
      loop.start();
      Thread.sleep(5_000);
      long beforeKill = signatures.get();
      long bridgePid = new JsonObject(Files.readString(home.resolve("bridge").resolve("endpoint.json"))).getLong("pid");
      ProcessHandle.of(bridgePid).orElseThrow().destroyForcibly();
      loop.join(60_000);
      long afterKill = signatures.get() - beforeKill;
      System.out.printf("event bus: %d signatures (%d after the bridge's SIGKILL), %d errors, longest stall %d ms,"
          + " %d login(s)%n", signatures.get(), afterKill, errors.get(), longestMs.get(), client.logins());
      assertEquals(0, errors.get(), "errors surfaced to the application: " + firstError.get());
      assertTrue(beforeKill > 0 && afterKill > 0, "signatures before and after the kill: " + beforeKill + " / " + afterKill);
      assertEquals(1, client.logins(), "the session outlived the front door it was made at");
      assertTrue(frontDoorsLeft.get() >= 1, "the client heard that a front door (the bridge) left");
    } finally {
      if (client != null) {
        client.close();
      }
      if (app != null) {
        app.close().toCompletionStage().toCompletableFuture().get(30, TimeUnit.SECONDS);
      }
      logins.down("EventBusClientTest", "", null);
    }
  }

  private static boolean verifies(java.security.PublicKey publicKey, byte[] message, byte[] signature) {
    try {
      Signature jdk = Signature.getInstance("SHA256withECDSA");
      jdk.initVerify(publicKey);
      jdk.update(message);
      return jdk.verify(signature);
    } catch (java.security.GeneralSecurityException e) {
      return false;
    }
  }
}
