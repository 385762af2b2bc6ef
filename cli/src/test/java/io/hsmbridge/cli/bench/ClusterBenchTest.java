package io.hsmbridge.cli.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The cluster bench's formatting and the parent/child baseline protocol, without processes. */
class ClusterBenchTest {
  @Test
  void sharesListEveryHsmInNumericOrderWithZeroForIdleOnes() {
    Map<String, Long> served = Map.of("hsm10", 1L, "hsm2", 3L);
    assertEquals("hsm1 0% hsm2 75% hsm10 25%", ClusterBench.shares(served, List.of("hsm1", "hsm2", "hsm10"), false));
    assertEquals("hsm1=0.00;hsm2=0.75;hsm10=0.25", ClusterBench.shares(served, List.of("hsm1", "hsm2", "hsm10"), true));
    assertEquals("hsm1 0%", ClusterBench.shares(Map.of(), List.of("hsm1"), false));
  }

  @Test
  void directBaselineLinesRoundTrip() {
    Measurement.Result r = new Measurement.Result(2019.4, 6058, 491.5, 1508.25);
    List<String> lines = List.of("token,rsa: on token 'x' (SoftHSM 2.6)", "INFO: noise",
        ClusterBench.directLine(1, r), ClusterBench.directLine(8, new Measurement.Result(3900, 11700, 2000, 4100)));
    Map<Integer, ClusterBench.Direct> d = ClusterBench.parseDirect(lines);
    assertEquals(List.of(1, 8), List.copyOf(d.keySet()));
    assertEquals(new ClusterBench.Direct(1, 2019.4, 491.5, 1508.3), d.get(1));
    assertEquals(3900, d.get(8).opsPerSecond());
    assertTrue(ClusterBench.parseDirectDescription(lines).startsWith("rsa: on token 'x'"));
  }
}
