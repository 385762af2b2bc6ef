package io.hsmbridge.bridge.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What {@code cluster check} says when the HSMs' users digests differ: the records, and each HSM's view of them. */
class DifferingRecordsTest {
  private static JsonObject digest(String hsmId, JsonObject records) {
    return new JsonObject().put("hsmId", hsmId).put("usersRecords", records);
  }

  @Test
  void namesOnlyTheRecordsThatDifferWithADashWhereAnHsmLacksOne() {
    JsonObject same = new JsonObject().put("user|alice", "00000000000000aa").put("setting|x", "00000000000000bb");
    List<JsonObject> compared = List.of(
        digest("hsm1", same.copy().put("acl|k1", "1111111111111111")),
        digest("hsm2", same.copy().put("acl|k1", "1111111111111111")),
        digest("hsm3", same.copy().put("user|alice", "00000000000000ff")));
    JsonArray differ = AntiEntropy.differingRecords(compared);
    assertEquals(2, differ.size(), differ.encodePrettily());
    assertEquals(new JsonObject().put("record", "acl|k1").put("on", new JsonObject()
        .put("hsm1", "1111111111111111").put("hsm2", "1111111111111111").put("hsm3", "-")), differ.getJsonObject(0));
    assertEquals(new JsonObject().put("record", "user|alice").put("on", new JsonObject()
        .put("hsm1", "00000000000000aa").put("hsm2", "00000000000000aa").put("hsm3", "00000000000000ff")), differ.getJsonObject(1));
  }

  @Test
  void namesAtMostTwentyAndSaysThereIsMore() {
    JsonObject many = new JsonObject();
    for (int i = 0; i < 50; i++) {
      many.put("acl|k" + i, "1111111111111111");
    }
    JsonArray differ = AntiEntropy.differingRecords(List.of(digest("hsm1", many), digest("hsm2", new JsonObject())));
    assertEquals(AntiEntropy.MAX_DIFFERING_NAMED + 1, differ.size());
    assertEquals(true, differ.getJsonObject(AntiEntropy.MAX_DIFFERING_NAMED).getBoolean("more"));
  }

  @Test
  void anAgentThatSendsNoRecordsIsComparedAsHoldingNone() {
    // An agent of before 2026-12-07 sends no usersRecords: its records all show as "-", none is invented.
    JsonArray differ = AntiEntropy.differingRecords(List.of(
        digest("hsm1", new JsonObject().put("user|a", "1")), new JsonObject().put("hsmId", "hsm2")));
    assertEquals("-", differ.getJsonObject(0).getJsonObject("on").getString("hsm2"));
  }
}
