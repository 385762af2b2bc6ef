package io.hsmbridge.bridge.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

class ConnectionLimitsTest {
  @Test
  void capsPerAddressAndInAllAndReleases() {
    ConnectionLimits l = new ConnectionLimits(3, 2);
    assertNull(l.admit("a"));
    assertNull(l.admit("a"));
    assertEquals(ConnectionLimits.Refusal.ADDRESS_FULL, l.admit("a"));
    assertNull(l.admit("b"));
    assertEquals(ConnectionLimits.Refusal.ENDPOINT_FULL, l.admit("c"));
    l.release("a");
    assertNull(l.admit("c"));
    assertEquals(3, l.open());
    l.release("nobody");
    assertEquals(3, l.open());
  }
}
