package io.hsmbridge.agent.users;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;

/** The quorum fingerprint of an operation: field order and transport fields do not matter, any value does. */
class RequestHashTest {
  private static final byte[] K = new byte[32];

  @Test
  void sameOperationSameHashAnyOtherValueAnotherHash() {
    JsonObject a = new JsonObject().put("op", "user.create").put("name", "dave").put("role", "CU")
        .put("nested", new JsonObject().put("b", 1).put("a", new JsonArray().add("x").add(2)));
    JsonObject reordered = new JsonObject().put("nested", new JsonObject().put("a", new JsonArray().add("x").add(2)).put("b", 1))
        .put("role", "CU").put("name", "dave").put("op", "user.create")
        .put("session", "s").put("requestId", "r").put("onHsm", "hsm1").put("quorum", new JsonObject().put("tokenId", "t"))
        .put("principal", new JsonObject().put("user", "admin")).put("quorumDocument", "{}").put("quorumNonce", "x");
    assertEquals(RequestHash.of(a, K), RequestHash.of(reordered, K));
    assertNotEquals(RequestHash.of(a, K), RequestHash.of(a.copy().put("name", "eve"), K));
    assertNotEquals(RequestHash.of(a, K), RequestHash.of(a.copy().put("role", "CO"), K));
    assertNotEquals(RequestHash.of(a, K), RequestHash.of(a.copy().put("extra", true), K));
    assertNotEquals(RequestHash.of(a, K), RequestHash.of(a.copy().put("op", "user.delete"), K));
    assertNotEquals(RequestHash.of(new JsonObject().put("k", "1"), K), RequestHash.of(new JsonObject().put("k", 1), K));
    assertNotEquals(RequestHash.of(a, K), RequestHash.of(a, new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}),
        "another key, another fingerprint");
    assertEquals("(hidden)", RequestHash.forApprovers(a.copy().put("password", "secret")).getString("password"));
    assertNotEquals(RequestHash.of(new JsonObject().put("a\",\"b", "c"), K), RequestHash.of(new JsonObject().put("a", "\",\"b\":\"c"), K));
  }
}
