package io.hsmbridge.bridge.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.bridge.cluster.ClusterConfig;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import java.util.Properties;
import org.junit.jupiter.api.Test;

class EndpointSettingsTest {
  private static Properties props(String... kv) {
    Properties p = new Properties();
    for (int i = 0; i < kv.length; i += 2) {
      p.setProperty(kv[i], kv[i + 1]);
    }
    return p;
  }

  private static HsmException invalid(Properties p) {
    HsmException e = assertThrows(HsmException.class, () -> EndpointSettings.from(p, ClusterConfig.disabled()));
    assertEquals(ErrorCode.CONFIG_INVALID, e.code());
    return e;
  }

  @Test
  void plaintextIsRefusedOnAnyAddressButLoopback() {
    for (String host : new String[] {"0.0.0.0", "::", "192.0.2.10"}) {
      HsmException e = invalid(props("bridge.tcp.host", host, "bridge.tls", "false"));
      assertTrue(e.getMessage().contains("loopback"), e.getMessage());
    }
    EndpointSettings s = EndpointSettings.from(props("bridge.tcp.host", "127.0.0.1", "bridge.tls", "false"),
        ClusterConfig.disabled());
    assertNull(s.tls());
    assertFalse(s.tlsEnabled());
  }

  @Test
  void tlsIsTheDefaultAndNeedsACertificate() {
    HsmException e = invalid(props("bridge.tcp.host", "127.0.0.1"));
    assertTrue(e.getMessage().contains("bridge.tls.cert"), e.getMessage());
  }

  @Test
  void defaultsAndBoundsOfTheLimits() {
    EndpointSettings s = EndpointSettings.from(props("bridge.tls", "false"), ClusterConfig.disabled());
    assertEquals(256 * 1024, s.maxFrameBytes());
    assertEquals(512, s.maxConnections());
    assertEquals(64, s.maxConnectionsPerAddress());
    assertEquals(300_000, s.idleTimeoutMs());
    assertEquals(-1, s.loopbackPlaintextPort());
    invalid(props("bridge.tls", "false", "bridge.tcp.maxFrameBytes", "100"));
    invalid(props("bridge.tls", "false", "bridge.tcp.maxConnections", "10", "bridge.tcp.maxConnectionsPerAddress", "11"));
    invalid(props("bridge.tls", "false", "bridge.tcp.idleTimeoutSeconds", "1"));
    invalid(props("bridge.tls", "false", "bridge.tls.clientAuth", "optional"));
  }
}
