package io.hsmbridge.cli.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The floor measurement runs end to end: a child JVM echoes over loopback, plain and over pinned TLS 1.3. */
class LinkFloorTest {
  @Test
  @Timeout(120)
  void measuresRoundTripsToAnEchoServerInAnotherJvmPlainAndOverTls() throws Exception {
    for (boolean tls : new boolean[] {false, true}) {
      LinkFloor.Result r = LinkFloor.measure(tls, 10, 200);
      assertEquals(tls, r.tls());
      assertEquals(200, r.count());
      assertTrue(r.p50Micros() > 0 && r.p50Micros() <= r.p99Micros(), r.toString());
    }
  }
}
