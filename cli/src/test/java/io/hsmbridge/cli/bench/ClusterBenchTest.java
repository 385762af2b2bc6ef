package io.hsmbridge.cli.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.protocol.KeySpec;
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
    List<String> lines = List.of("token,one raw call on token 'x' (SoftHSM 2.6)", "INFO: noise",
        ClusterBench.directLine(BenchOp.RSA2048_SIGN, 1, r),
        ClusterBench.directLine(BenchOp.RSA2048_SIGN, 8, new Measurement.Result(3900, 11700, 2000, 4100)),
        ClusterBench.directLine(BenchOp.HMAC_SHA256_1K, 1, new Measurement.Result(20000, 60000, 45, 90)),
        ClusterBench.generateLine(new ClusterBench.DirectGeneration(KeySpec.AES_256, 50, 8123.4, 8400)));
    ClusterBench.Baseline b = ClusterBench.Baseline.parse(lines);
    assertEquals(new ClusterBench.Direct(BenchOp.RSA2048_SIGN, 1, 2019.4, 491.5, 1508.3), b.direct(BenchOp.RSA2048_SIGN, 1));
    assertEquals(3900, b.direct(BenchOp.RSA2048_SIGN, 8).opsPerSecond());
    assertEquals(45, b.direct(BenchOp.HMAC_SHA256_1K, 1).p50Micros());
    assertNull(b.direct(BenchOp.ECDSA_P256_SIGN, 1));
    assertEquals(new ClusterBench.DirectGeneration(KeySpec.AES_256, 50, 8123.4, 8400), b.generation().get(KeySpec.AES_256));
    assertTrue(b.description().startsWith("one raw call on token 'x'"));

    ClusterBench.Settings covered = new ClusterBench.Settings(List.of(1), List.of(BenchOp.RSA2048_SIGN),
        List.of(ClusterBench.Link.HOST), Map.of(KeySpec.AES_256, 3), List.of(1, 8), 0, 1, true);
    assertTrue(b.covers(covered));
    // A thread count, an op or a creation spec the child did not measure: the bench refuses to run without it.
    assertFalse(b.covers(new ClusterBench.Settings(List.of(1), List.of(BenchOp.RSA2048_SIGN),
        List.of(ClusterBench.Link.HOST), Map.of(), List.of(1, 2), 0, 1, true)));
    assertFalse(b.covers(new ClusterBench.Settings(List.of(1), List.of(BenchOp.ECDSA_P256_SIGN),
        List.of(ClusterBench.Link.HOST), Map.of(), List.of(1), 0, 1, true)));
    assertFalse(b.covers(new ClusterBench.Settings(List.of(1), List.of(BenchOp.RSA2048_SIGN),
        List.of(ClusterBench.Link.HOST), Map.of(KeySpec.EC_P256, 3), List.of(1), 0, 1, true)));
  }

  /** One parser for bench --creations and the baseline child's --generate: the same specs, in order. */
  @Test
  void creationsParseInOrderAndRefuseWhatCannotBeMeasured() {
    assertEquals(List.of(KeySpec.EC_P256, KeySpec.AES_256),
        List.copyOf(ClusterBench.parseCreations("EC_P256:3, AES_256:50").keySet()));
    assertEquals(50, ClusterBench.parseCreations("AES_256:50").get(KeySpec.AES_256));
    assertTrue(ClusterBench.parseCreations("none").isEmpty());
    for (String bad : List.of("AES_256", "AES_256:x", "AES_256:0", "AES_256:10001", "AES_256:1,AES_256:2", "ED25519:5",
        "NOPE:3", "")) {
      assertThrows(IllegalArgumentException.class, () -> ClusterBench.parseCreations(bad), bad);
    }
  }

  @Test
  void opsAndLinksParseByIdAndRefuseUnknownOrRepeatedOnes() {
    assertEquals(List.of(BenchOp.HMAC_SHA256_1K, BenchOp.RSA2048_SIGN), BenchOp.parseList("hmac_sha256_1k, RSA2048_SIGN"));
    assertThrows(IllegalArgumentException.class, () -> BenchOp.parseList("rsa"));
    assertThrows(IllegalArgumentException.class, () -> BenchOp.parseList("hmac_sha256_1k,hmac_sha256_1k"));
    assertEquals(List.of(ClusterBench.Link.BRIDGE, ClusterBench.Link.HOST), ClusterBench.Link.parseList("bridge,host"));
    assertEquals(List.of(ClusterBench.Link.HOST_SHARED), ClusterBench.Link.parseList("host_shared"));
    assertThrows(IllegalArgumentException.class, () -> ClusterBench.Link.parseList("host,host"));
    assertThrows(IllegalArgumentException.class, () -> ClusterBench.Link.parseList("tcp"));
  }
}
