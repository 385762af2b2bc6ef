package io.hsmbridge.bridge.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.agent.membership.ClusterConfig;
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

  /**
   * Mutual TLS needs a client CA of its own: a client certificate of the cluster CA would also pass the
   * event bus's chain check (it trusts every certificate of the cluster CA).
   */
  @Test
  void mutualTlsTakesClientCertificatesOfAClientCaThatIsNotTheClusterCa(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) {
    io.hsmbridge.agent.membership.ClusterCa ca = io.hsmbridge.agent.membership.ClusterCa.create(tmp.resolve("ca"), "t");
    io.hsmbridge.agent.membership.ClusterCa.MemberFiles server = ca.issueMember("bridge",
        io.hsmbridge.agent.membership.ClusterCa.MemberKind.FRONT_DOOR, java.util.List.of("127.0.0.1"), tmp.resolve("bridge"));
    io.hsmbridge.agent.membership.ClusterCa clients = io.hsmbridge.agent.membership.ClusterCa.create(tmp.resolve("clients"), "t clients");
    String[] base = {"bridge.tls.cert", server.certificate().toString(), "bridge.tls.key", server.key().toString(),
        "bridge.tls.ca", server.ca().toString(), "bridge.tls.clientAuth", "required"};
    HsmException missing = invalid(props(base));
    assertTrue(missing.getMessage().contains("bridge.tls.clientCa"), missing.getMessage());
    String[] same = java.util.Arrays.copyOf(base, base.length + 2);
    same[base.length] = "bridge.tls.clientCa";
    same[base.length + 1] = server.ca().toString();
    HsmException clusterCa = invalid(props(same));
    assertTrue(clusterCa.getMessage().contains("must not be the cluster CA"), clusterCa.getMessage());
    String[] own = same.clone();
    own[base.length + 1] = clients.certificateFile().toString();
    EndpointSettings s = EndpointSettings.from(props(own), ClusterConfig.disabled());
    assertTrue(s.tls().requireClientCert());
    assertEquals(clients.certificateFile(), s.tls().clientCa());
  }
}
