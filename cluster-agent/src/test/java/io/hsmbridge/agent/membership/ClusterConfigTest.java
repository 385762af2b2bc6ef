package io.hsmbridge.agent.membership;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Properties;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ClusterConfigTest {
  @TempDir Path tmp;
  private ClusterCa.MemberFiles member;

  @BeforeEach
  void issue() {
    member = ClusterCa.create(tmp.resolve("ca"), "test").issueMember("n1", ClusterCa.MemberKind.AGENT, List.of("127.0.0.1"), tmp.resolve("n1"));
  }

  @Test
  void disabledByDefaultAndReadsNothingElse() {
    Properties p = new Properties();
    p.setProperty("cluster.memberPort", "not-a-number");
    assertFalse(ClusterConfig.from(p).enabled());
  }

  @Test
  void defaults() {
    ClusterConfig c = ClusterConfig.from(valid());
    assertTrue(c.enabled());
    assertEquals("hsmbridge", c.name());
    assertEquals("127.0.0.1", c.host());
    assertEquals(5701, c.memberPort());
    assertEquals(0, c.eventBusPort());
    assertEquals(List.of("127.0.0.1:5701"), c.members());
  }

  @Test
  void membersAreNormalised() {
    Properties p = valid();
    p.setProperty("cluster.members", " 10.0.0.1:5701, hsm2.example.net:5702,[::1]:5703,10.0.0.1:5701,");
    assertEquals(List.of("10.0.0.1:5701", "hsm2.example.net:5702", "[::1]:5703"), ClusterConfig.from(p).members());
  }

  @Test
  void errorsNameTheKey() {
    assertNamesKey("cluster.enabled", "yes", "cluster.enabled");
    assertNamesKey("cluster.name", "bad name!", "cluster.name");
    assertNamesKey("cluster.host", "0.0.0.0", "cluster.host");
    assertNamesKey("cluster.host", "no-such-host.invalid", "cluster.host");
    assertNamesKey("cluster.memberPort", "0", "cluster.memberPort");
    assertNamesKey("cluster.memberPort", "x", "cluster.memberPort");
    assertNamesKey("cluster.eventBusPort", "70000", "cluster.eventBusPort");
    assertNamesKey("cluster.members", "10.0.0.1", "cluster.members");
    assertNamesKey("cluster.members", "10.0.0.1:http", "cluster.members");
    assertNamesKey("cluster.members", "10.0.0.1:0", "cluster.members");
    assertNamesKey("cluster.tls.cert", "", "cluster.tls.cert");
    assertNamesKey("cluster.tls.key", tmp.resolve("missing.pem").toString(), "cluster.tls.key");
    assertNamesKey("cluster.tls.ca", member.key().toString(), "cluster.tls.ca");
  }

  @Test
  void refusesAKeyOthersCanRead() throws Exception {
    Files.setPosixFilePermissions(member.key(), PosixFilePermissions.fromString("rw-r--r--"));
    HsmException e = assertThrows(HsmException.class, () -> ClusterConfig.from(valid()));
    assertTrue(e.getMessage().contains("cluster.tls.key") && e.getMessage().contains("chmod 600"), e.getMessage());
  }

  @Test
  void refusesACertificateFromAnotherCa() {
    ClusterCa other = ClusterCa.create(tmp.resolve("other"), "test");
    Properties p = valid();
    p.setProperty("cluster.tls.ca", other.certificateFile().toString());
    HsmException e = assertThrows(HsmException.class, () -> ClusterConfig.from(p));
    assertTrue(e.getMessage().startsWith("cluster.tls.cert") && e.getMessage().contains("not issued by"),
        e.getMessage());
  }

  @Test
  void refusesAKeyThatIsNotTheCertificates() {
    ClusterCa ca = ClusterCa.load(tmp.resolve("ca"));
    ClusterCa.MemberFiles second = ca.issueMember("n2", ClusterCa.MemberKind.AGENT, List.of("127.0.0.1"), tmp.resolve("n2"));
    Properties p = valid();
    p.setProperty("cluster.tls.key", second.key().toString());
    HsmException e = assertThrows(HsmException.class, () -> ClusterConfig.from(p));
    assertTrue(e.getMessage().startsWith("cluster.tls.key") && e.getMessage().contains("does not belong"),
        e.getMessage());
  }

  @Test
  void refusesAClientCertificateAsAMember() {
    ClusterCa ca = ClusterCa.load(tmp.resolve("ca"));
    ClusterCa.MemberFiles client = ca.issueMember("app", ClusterCa.MemberKind.CLIENT, List.of("127.0.0.1"), tmp.resolve("app"));
    Properties p = valid();
    p.setProperty("cluster.tls.cert", client.certificate().toString());
    p.setProperty("cluster.tls.key", client.key().toString());
    HsmException e = assertThrows(HsmException.class, () -> ClusterConfig.from(p));
    assertTrue(e.getMessage().startsWith("cluster.tls.cert") && e.getMessage().contains("kind client"), e.getMessage());
  }

  @Test
  void acceptsAFrontDoorCertificate() {
    ClusterCa ca = ClusterCa.load(tmp.resolve("ca"));
    ClusterCa.MemberFiles front = ca.issueMember("fd", ClusterCa.MemberKind.FRONT_DOOR, List.of("127.0.0.1"), tmp.resolve("fd"));
    Properties p = valid();
    p.setProperty("cluster.tls.cert", front.certificate().toString());
    p.setProperty("cluster.tls.key", front.key().toString());
    assertTrue(ClusterConfig.from(p).enabled());
  }

  @Test
  void readsTheMemberPortUnderItsFormerNameWhenTheNewOneIsAbsent() {
    Properties p = valid();
    p.setProperty("cluster.hazelcastPort", "20001");
    assertEquals(20001, ClusterConfig.from(p).memberPort());
    p.setProperty("cluster.memberPort", "20002");
    assertEquals(20002, ClusterConfig.from(p).memberPort());
    p.remove("cluster.memberPort");
    p.setProperty("cluster.hazelcastPort", "0");
    HsmException e = assertThrows(HsmException.class, () -> ClusterConfig.from(p));
    assertTrue(e.getMessage().contains("cluster.hazelcastPort"), e.getMessage());
  }

  private void assertNamesKey(String key, String value, String named) {
    Properties p = valid();
    p.setProperty(key, value);
    HsmException e = assertThrows(HsmException.class, () -> ClusterConfig.from(p), key + "=" + value);
    assertEquals(ErrorCode.CONFIG_INVALID, e.code());
    assertTrue(e.getMessage().contains(named), e.getMessage());
  }

  private Properties valid() {
    Properties p = new Properties();
    p.setProperty("cluster.enabled", "true");
    p.setProperty("cluster.tls.cert", member.certificate().toString());
    p.setProperty("cluster.tls.key", member.key().toString());
    p.setProperty("cluster.tls.ca", member.ca().toString());
    return p;
  }
}
