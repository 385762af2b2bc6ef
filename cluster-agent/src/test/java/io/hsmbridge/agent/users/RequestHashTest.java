package io.hsmbridge.agent.users;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;

/** The quorum fingerprint of an operation: field order and transport fields do not matter, any value does. */
class RequestHashTest {
  @Test
  void sameOperationSameHashAnyOtherValueAnotherHash() {
    JsonObject a = new JsonObject().put("op", "user.create").put("name", "dave").put("role", "CU")
        .put("nested", new JsonObject().put("b", 1).put("a", new JsonArray().add("x").add(2)));
    JsonObject reordered = new JsonObject().put("nested", new JsonObject().put("a", new JsonArray().add("x").add(2)).put("b", 1))
        .put("role", "CU").put("name", "dave").put("op", "user.create")
        .put("session", "s").put("requestId", "r").put("onHsm", "hsm1").put("quorum", new JsonObject().put("tokenId", "t"))
        .put("principal", new JsonObject().put("user", "admin")).put("quorumDocument", "{}");
    assertEquals(RequestHash.of(a), RequestHash.of(reordered));
    assertNotEquals(RequestHash.of(a), RequestHash.of(a.copy().put("name", "eve")));
    assertNotEquals(RequestHash.of(a), RequestHash.of(a.copy().put("role", "CO")));
    assertNotEquals(RequestHash.of(a), RequestHash.of(a.copy().put("extra", true)));
    assertNotEquals(RequestHash.of(a), RequestHash.of(a.copy().put("op", "user.delete")));
    assertNotEquals(RequestHash.of(new JsonObject().put("k", "1")), RequestHash.of(new JsonObject().put("k", 1)));
    assertNotEquals(RequestHash.of(new JsonObject().put("a\",\"b", "c")), RequestHash.of(new JsonObject().put("a", "\",\"b\":\"c")));
  }
}
