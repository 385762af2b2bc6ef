package io.hsmbridge.bridge.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Future;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * A lying or broken agent's digest reply: skipped with a reason, never a failed {@code cluster check}, never
 * counted as another HSM's answer.
 */
class DigestRepliesTest {
  /** A reply as ClusterOperations.digest makes it (after an event-bus round trip: numbers may be Integers). */
  private static JsonObject reply() {
    return new JsonObject().put("hsmId", "hsm2").put("applied", 73).put("appliedAfter", 73L)
        .put("driftUnconfirmed", false).put("digest", "aa").put("usersDigest", "bb")
        .put("keys", new JsonArray().add(new JsonObject().put("keyId", "k1").put("spec", "AES_256")
            .put("usage", "ENCRYPT_DECRYPT").put("label", null).put("exportable", false).put("extractable", true)))
        .put("usersRecords", new JsonObject().put("acl|k1", "1111111111111111"));
  }

  private static String problemAfter(Consumer<JsonObject> change) {
    JsonObject r = reply();
    change.accept(r);
    return DigestReplies.problem(r, "hsm2");
  }

  @Test
  void aReplyAsAgentsMakeItPasses() {
    assertNull(DigestReplies.problem(reply(), "hsm2"));
    assertNull(problemAfter(r -> r.remove("usersRecords")), "agents before per-record digests");
    assertNull(problemAfter(r -> r.remove("driftUnconfirmed")));
    assertNull(problemAfter(r -> r.put("keys", new JsonArray())));
  }

  @Test
  void eachMalformedFieldIsNamed() {
    assertEquals("it answers as 'hsm3', not hsm2", problemAfter(r -> r.put("hsmId", "hsm3")));
    assertEquals("it answers as missing, not hsm2", problemAfter(r -> r.remove("hsmId")));
    assertEquals("applied is 'seventy', not a number", problemAfter(r -> r.put("applied", "seventy")));
    assertEquals("appliedAfter is missing, not a number", problemAfter(r -> r.remove("appliedAfter")));
    assertEquals("digest is '7', not a string", problemAfter(r -> r.put("digest", 7)));
    assertEquals("usersDigest is missing, not a string", problemAfter(r -> r.remove("usersDigest")));
    assertEquals("driftUnconfirmed is 'yes', not true or false", problemAfter(r -> r.put("driftUnconfirmed", "yes")));
    assertEquals("keys is '{}', not a list", problemAfter(r -> r.put("keys", new JsonObject())));
    assertEquals("a key is '5', not an object", problemAfter(r -> r.put("keys", new JsonArray().add(5))));
    assertEquals("a key has keyId missing, not a string",
        problemAfter(r -> r.getJsonArray("keys").getJsonObject(0).remove("keyId")));
    assertEquals("a key has label '[]', not a string",
        problemAfter(r -> r.getJsonArray("keys").getJsonObject(0).put("label", new JsonArray())));
    assertEquals("a key has exportable 'no', not true or false",
        problemAfter(r -> r.getJsonArray("keys").getJsonObject(0).put("exportable", "no")));
    assertEquals("usersRecords is '[]', not an object", problemAfter(r -> r.put("usersRecords", new JsonArray())));
    assertEquals("the users record 'acl|k1' has '1', not a string",
        problemAfter(r -> r.getJsonObject("usersRecords").put("acl|k1", 1)));
  }

  @Test
  void aLongValueIsQuotedShort() {
    String problem = problemAfter(r -> r.put("hsmId", "x".repeat(100_000)));
    assertTrue(problem.length() < 100, problem);
  }

  @Test
  void aMalformedReplyBecomesThatHsmsFailedAnswerAndTheOthersStand() {
    List<HsmView> hsms = List.of(new HsmView("hsm1"), new HsmView("hsm2"));
    JsonObject good = reply().put("hsmId", "hsm1");
    List<Future<JsonObject>> checked = DigestReplies.checked(hsms,
        List.of(Future.succeededFuture(good), Future.succeededFuture(reply().put("hsmId", "hsm1"))));
    assertTrue(checked.get(0).succeeded());
    assertTrue(checked.get(1).failed());
    assertEquals("malformed digest reply: it answers as 'hsm1', not hsm2", checked.get(1).cause().getMessage());
  }
}
