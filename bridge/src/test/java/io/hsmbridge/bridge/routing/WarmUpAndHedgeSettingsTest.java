package io.hsmbridge.bridge.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.bridge.RoutingSettings;
import io.hsmbridge.pkcs11.HsmException;
import io.vertx.core.json.JsonObject;
import java.time.Duration;
import java.util.Properties;
import org.junit.jupiter.api.Test;

/**
 * The routing inputs of issue #11's stall work: an HSM that has just started serving is "warming up" for
 * {@link HsmView#WARM_UP_NANOS} from its first SERVING heartbeat (again after a restart, whose heartbeat
 * announces a new address), and {@code cluster.hedgeAfterMs} parses with its bounds. The end-to-end effect
 * (creations no longer routed to an HSM seconds after its restart) is FrontDoorsTest's.
 */
class WarmUpAndHedgeSettingsTest {
  private static JsonObject heartbeat(String state, String address) {
    return new JsonObject().put("hsmId", "hsm2").put("state", state).put("applied", 5L).put("address", address);
  }

  @Test
  void anHsmWarmsUpFromItsFirstServingHeartbeatAndAgainAfterARestart() {
    HsmView v = new HsmView("hsm2");
    long t0 = 1_000_000_000L;
    v.heartbeat(heartbeat("CATCHING_UP", "hsmbridge.v1.agent.hsm2.run1"), t0);
    assertFalse(v.warmingUp(t0), "not serving: not warming up either (it gets nothing)");
    v.heartbeat(heartbeat("SERVING", "hsmbridge.v1.agent.hsm2.run1"), t0 + 1);
    assertTrue(v.warmingUp(t0 + 2));
    v.heartbeat(heartbeat("SERVING", "hsmbridge.v1.agent.hsm2.run1"), t0 + 5_000_000_000L);
    assertTrue(v.warmingUp(t0 + 5_000_000_000L), "later heartbeats do not restart the warm-up");
    assertFalse(v.warmingUp(t0 + 1 + HsmView.WARM_UP_NANOS), "warm after " + HsmView.WARM_UP_NANOS + " ns");
    long restart = t0 + 60_000_000_000L;
    v.heartbeat(heartbeat("SERVING", "hsmbridge.v1.agent.hsm2.run2"), restart);
    assertTrue(v.warmingUp(restart + 1), "a new run of the agent (new address) warms up again");
  }

  @Test
  void aRegistryChoosesAWarmHsmForMutationsWhenThereIsOne() {
    HsmRegistry registry = new HsmRegistry(Duration.ofSeconds(2));
    long now = System.nanoTime();
    registry.onHeartbeat(heartbeat("SERVING", "hsmbridge.v1.agent.hsm2.run1"), now - HsmView.WARM_UP_NANOS - 1);
    registry.onHeartbeat(new JsonObject().put("hsmId", "hsm3").put("state", "SERVING").put("applied", 5L)
        .put("address", "hsmbridge.v1.agent.hsm3.run1"), now);
    HsmView warm = registry.chooseLeastQueued(v -> !v.warmingUp(now), "hsm3");
    assertEquals("hsm2", warm.hsmId, "hsm3, local but just started, is left out");
    assertEquals("hsm3", registry.chooseLeastQueued(v -> true, "hsm3").hsmId, "without the warm-up rule: local");
  }

  @Test
  void anHsmMakingABackupGetsNothingWhileAnotherCanServeAndEverythingWhenAlone() {
    HsmRegistry registry = new HsmRegistry(Duration.ofSeconds(2));
    long now = System.nanoTime();
    long warm = now - HsmView.WARM_UP_NANOS - 1;
    registry.onHeartbeat(heartbeat("SERVING", "hsmbridge.v1.agent.hsm2.run1").put("backingUp", true), warm);
    registry.onHeartbeat(new JsonObject().put("hsmId", "hsm3").put("state", "SERVING").put("applied", 5L)
        .put("address", "hsmbridge.v1.agent.hsm3.run1"), warm);
    for (int i = 0; i < 10; i++) {
      assertEquals("hsm3", registry.chooseFor(false, v -> true, "hsm2", now).hsmId, "crypto goes around the backup");
      assertEquals("hsm3", registry.chooseFor(true, v -> true, "hsm2", now).hsmId, "mutations too");
    }
    assertEquals("hsm2", registry.chooseFor(false, v -> v.hsmId.equals("hsm2"), null, now).hsmId,
        "alone, the HSM making a backup still serves");
    registry.onHeartbeat(heartbeat("SERVING", "hsmbridge.v1.agent.hsm2.run1"), warm + 1);
    assertEquals("hsm2", registry.chooseFor(false, v -> true, "hsm2", now).hsmId, "its backup done, local again");
  }

  @Test
  void hedgeAfterDefaultsTo1500MsZeroTurnsItOffAndTinyValuesAreRefused() {
    assertEquals(Duration.ofMillis(1500), RoutingSettings.from(new Properties()).hedgeAfter());
    Properties off = new Properties();
    off.setProperty("cluster.hedgeAfterMs", "0");
    assertTrue(RoutingSettings.from(off).hedgeAfter().isZero());
    Properties tiny = new Properties();
    tiny.setProperty("cluster.hedgeAfterMs", "20");
    HsmException e = assertThrows(HsmException.class, () -> RoutingSettings.from(tiny));
    assertTrue(e.getMessage().contains("cluster.hedgeAfterMs"), e.getMessage());
  }

  /**
   * An HSM whose member left the cluster is dead at once; a heartbeat of the same run right after is a late
   * one; the same run heard again later is back (ContainerFaultsTest: a container paused for 15 s left the
   * membership, joined it again when unpaused, and stayed UNHEALTHY for good while its heartbeats were
   * ignored); a restart is heard at once.
   */
  @Test
  void anHsmThatLeftIsDeadAtOnceAndHeardAgainWhenItComesBack() {
    HsmRegistry registry = new HsmRegistry(Duration.ofSeconds(2));
    long t0 = 1_000_000_000L;
    registry.onHeartbeat(heartbeat("SERVING", "hsmbridge.v1.agent.hsm2.run1"), t0);
    assertTrue(registry.get("hsm2").serving());
    assertEquals(1, registry.left(java.util.Set.of("hsmbridge.v1.agent.hsm2.run1"), t0 + 10).size());
    assertFalse(registry.get("hsm2").serving(), "dead the moment its member left");
    registry.onHeartbeat(heartbeat("SERVING", "hsmbridge.v1.agent.hsm2.run1"), t0 + 20_000_000L);
    registry.onHeartbeat(new JsonObject().put("hsmId", "hsm2").put("applied", 6L), t0 + 30_000_000L);
    assertFalse(registry.get("hsm2").serving(), "a late heartbeat of the run that left");
    registry.onHeartbeat(heartbeat("SERVING", "hsmbridge.v1.agent.hsm2.run1"), t0 + 10 + HsmView.LATE_HEARTBEAT_NANOS);
    assertTrue(registry.get("hsm2").serving(), "the same run back (paused, or cut off, then joined again)");
    registry.left(java.util.Set.of("hsmbridge.v1.agent.hsm2.run1"), t0 + 5_000_000_000L);
    registry.onHeartbeat(heartbeat("SERVING", "hsmbridge.v1.agent.hsm2.run2"), t0 + 5_100_000_000L);
    assertTrue(registry.get("hsm2").serving(), "a restarted run (a new address) is heard at once");
  }
}
