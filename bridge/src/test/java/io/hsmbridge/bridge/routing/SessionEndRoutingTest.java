package io.hsmbridge.bridge.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.protocol.Op;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * Issue #11 item 2, "a logout, deletion, new password or lock takes effect cluster-wide within one second":
 * the agents refuse an ended session once they applied its end, but one HSM may lag behind the majority that
 * acknowledged it. Every request of a session is routed to an HSM that applied the latest known session end
 * (front doors report it to each other every second), so the lagging HSM gets none until it catches up.
 */
class SessionEndRoutingTest {
  @Test
  void aSessionsRequestsNeedTheLatestSessionEndAppliedPublicOnesDoNot() {
    assertEquals(12, ClusterBridgeVerticle.minSeq(Op.SIGN, 5, 12, 3), "crypto of a session");
    assertEquals(30, ClusterBridgeVerticle.minSeq(Op.SIGN, 5, 12, 30), "the key's own creation, when later");
    assertEquals(12, ClusterBridgeVerticle.minSeq(Op.AUTH_WHOAMI, 5, 12, 0));
    assertEquals(12, ClusterBridgeVerticle.minSeq(Op.USER_LIST, 5, 12, 0), "user model: the later of the two");
    assertEquals(20, ClusterBridgeVerticle.minSeq(Op.AUTH_LOGIN, 20, 12, 0));
    assertEquals(0, ClusterBridgeVerticle.minSeq(Op.HEALTH, 5, 12, 0), "a public request carries no session");
    assertTrue(ClusterBridgeVerticle.endsSessions(Op.AUTH_LOGOUT));
    assertTrue(ClusterBridgeVerticle.endsSessions(Op.USER_DELETE));
    assertTrue(ClusterBridgeVerticle.endsSessions(Op.USER_CHANGE_PASSWORD));
    assertFalse(ClusterBridgeVerticle.endsSessions(Op.USER_CREATE));
  }

  @Test
  void anHsmBehindTheLatestSessionEndIsPassedOverEvenWhenItIsTheLocalOne() {
    HsmRegistry registry = new HsmRegistry(Duration.ofSeconds(2));
    long now = 1_000_000_000L;
    registry.onHeartbeat(heartbeat("hsm1", 41), now); // this host's HSM, one entry behind
    registry.onHeartbeat(heartbeat("hsm2", 42), now);
    long minSeq = ClusterBridgeVerticle.minSeq(Op.SIGN, 0, 42, 0);
    assertEquals("hsm2", registry.chooseFor(false, v -> v.applied >= minSeq, "hsm1", now + 1).hsmId);
    registry.onHeartbeat(new JsonObject().put("hsmId", "hsm1").put("applied", 42L), now + 2); // it caught up
    assertEquals("hsm1", registry.chooseFor(false, v -> v.applied >= minSeq, "hsm1", now + 3).hsmId);
  }

  private static JsonObject heartbeat(String hsmId, long applied) {
    return new JsonObject().put("hsmId", hsmId).put("state", "SERVING").put("applied", applied)
        .put("address", io.hsmbridge.protocol.Addresses.agent(hsmId) + ".run1").put("capacity", 2);
  }
}
