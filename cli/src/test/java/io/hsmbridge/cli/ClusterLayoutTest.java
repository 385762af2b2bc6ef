package io.hsmbridge.cli;

import static io.hsmbridge.cli.NodeLayoutTest.mode;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The files of a new cluster, of an added HSM and after a removal: exactly what the node side reads. */
class ClusterLayoutTest {
  private static final Path LIB = Path.of("/usr/lib/softhsm/libsofthsm2.so");

  @TempDir
  Path tmp;

  @Test
  void newRecordHasDistinctFreePortsAndItsOwnName() {
    ClusterRecord rec = ClusterLayout.newRecord(3, 7701, 2);
    assertEquals(List.of("hsm1", "hsm2", "hsm3"), rec.hsmIds());
    assertEquals("hsm4", rec.nextHsmId());
    assertFalse(rec.established());
    assertTrue(rec.hsms().stream().noneMatch(ClusterRecord.Member::joining));
    List<Integer> ports = new ArrayList<>(List.of(rec.bridgeHazelcastPort()));
    rec.hsms().forEach(m -> ports.addAll(List.of(m.hazelcastPort(), m.raftPort(), m.clientPort())));
    assertEquals(10, new HashSet<>(ports).size(), "every port distinct: " + ports);
    assertTrue(ports.stream().allMatch(p -> p >= PortPicker.FIRST && p <= PortPicker.LAST), ports::toString);
    assertTrue(rec.name().matches("hsmbridge-[0-9a-f]{8}"), rec.name());
    assertFalse(rec.name().equals(ClusterLayout.newRecord(1, 0, 1).name()), "each cluster its own name");
  }

  @Test
  void portPickerAvoidsTakenPorts() {
    Set<Integer> taken = new HashSet<>();
    for (int p = PortPicker.FIRST; p <= PortPicker.LAST - 5; p++) {
      taken.add(p);
    }
    List<Integer> ports = PortPicker.pick(3, taken);
    assertEquals(3, new HashSet<>(ports).size());
    assertTrue(ports.stream().allMatch(p -> p > PortPicker.LAST - 5), ports::toString);
  }

  @Test
  void writesEveryMembersFilesExactlyAsTheNodeReadsThem() throws Exception {
    Home h = new Home(tmp.resolve("home"));
    ClusterRecord rec = ClusterLayout.newRecord(3, 7701, 2);
    ClusterLayout.write(h, rec, LIB);
    String d = h.dir().toString();

    assertEquals(rec, ClusterRecord.load(h.clusterProperties()));
    String members = "127.0.0.1:" + rec.hsms().get(0).hazelcastPort() + ",127.0.0.1:" + rec.hsms().get(1).hazelcastPort()
        + ",127.0.0.1:" + rec.hsms().get(2).hazelcastPort() + ",127.0.0.1:" + rec.bridgeHazelcastPort();
    String peers = "hsm1@127.0.0.1:" + rec.hsms().get(0).raftPort() + ",hsm2@127.0.0.1:" + rec.hsms().get(1).raftPort()
        + ",hsm3@127.0.0.1:" + rec.hsms().get(2).raftPort();
    for (ClusterRecord.Member m : rec.hsms()) {
      String id = m.id();
      assertEquals("node.role=agent\n"
          + "hsm.id=" + id + "\n"
          + "pkcs11.library=" + LIB + "\n"
          + "token.label=hsmbridge-" + id + "\n"
          + "token.initialize=true\n"
          + "pin.user.file=" + d + "/" + id + "/user.pin\n"
          + "pin.so.file=" + d + "/" + id + "/so.pin\n"
          + "state.dir=" + d + "/" + id + "\n"
          + "cluster.enabled=true\n"
          + "cluster.name=" + rec.name() + "\n"
          + "cluster.host=127.0.0.1\n"
          + "cluster.memberPort=" + m.hazelcastPort() + "\n"
          + "cluster.members=" + members + "\n"
          + "cluster.tls.cert=" + d + "/" + id + "/tls/" + id + ".pem\n"
          + "cluster.tls.key=" + d + "/" + id + "/tls/" + id + "-key.pem\n"
          + "cluster.tls.ca=" + d + "/" + id + "/tls/ca.pem\n"
          + "raft.port=" + m.raftPort() + "\n"
          + "raft.dir=" + d + "/" + id + "/raft\n"
          + "raft.peers=" + peers + "\n"
          + "raft.join=false\n"
          + "backup.dir=" + d + "/backups\n"
          + "frontDoor.enabled=true\n"
          + "bridge.tcp.host=127.0.0.1\n"
          + "bridge.tcp.port=" + m.clientPort() + "\n"
          + "bridge.tls=true\n"
          + "bridge.tls.clientCa=" + d + "/cluster/ca/clients/ca.pem\n"
          + "cluster.durability=" + rec.durability() + "\n"
          + (id.equals("hsm1") ? "cluster.createKey=true\n" : ""),
          Files.readString(h.hsm(id).nodeProperties()), id);
      NodeDir n = h.hsm(id);
      assertEquals("directories.tokendir = " + d + "/" + id + "/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
          Files.readString(n.softhsmConf()));
      for (Path dir : List.of(n.dir(), n.tokensDir(), n.raftDir(), n.tlsDir())) {
        assertEquals("rwx------", mode(dir), dir.toString());
      }
      for (Path secret : List.of(n.soPin(), n.userPin(), n.tlsKey())) {
        assertEquals("rw-------", mode(secret), secret.toString());
      }
      assertSignedByTheClusterCa(h, n);
    }
    assertEquals("node.role=bridge\n"
        + "bridge.tcp.host=127.0.0.1\n"
        + "bridge.tcp.port=7701\n"
        + "bridge.tls=true\n"
        + "bridge.tls.clientCa=" + d + "/cluster/ca/clients/ca.pem\n"
        + "state.dir=" + d + "/bridge\n"
        + "cluster.enabled=true\n"
        + "cluster.name=" + rec.name() + "\n"
        + "cluster.host=127.0.0.1\n"
        + "cluster.memberPort=" + rec.bridgeHazelcastPort() + "\n"
        + "cluster.members=" + members + "\n"
        + "cluster.tls.cert=" + d + "/bridge/tls/bridge.pem\n"
        + "cluster.tls.key=" + d + "/bridge/tls/bridge-key.pem\n"
        + "cluster.tls.ca=" + d + "/bridge/tls/ca.pem\n"
        + "cluster.durability=2\n", Files.readString(h.bridge().nodeProperties()));
    assertFalse(Files.exists(h.bridge().softhsmConf()), "the bridge holds no token");
    assertFalse(Files.exists(h.bridge().userPin()));
    assertEquals("rw-------", mode(h.bridge().tlsKey()));
    assertEquals("rw-------", mode(h.caDir().resolve("ca-key.pem")));
    assertEquals("rwx------", mode(h.caDir()));
    assertSignedByTheClusterCa(h, h.bridge());
  }

  @Test
  void rewritingKeepsPinsAndCertificatesAndOnlyTheFirstHsmOfANewClusterCreatesTheKey() throws IOException {
    Home h = new Home(tmp);
    ClusterRecord rec = ClusterLayout.newRecord(2, 0, 1);
    ClusterLayout.write(h, rec, LIB);
    String pin = Files.readString(h.hsm("hsm2").userPin());
    String cert = Files.readString(h.hsm("hsm2").tlsCert());

    Files.move(h.caDir().resolve("ca-key.pem"), tmp.resolve("offline-ca-key.pem"));
    ClusterLayout.write(h, rec.asEstablished(), Path.of("/other/lib.so")); // the CA key is not needed
    assertEquals(pin, Files.readString(h.hsm("hsm2").userPin()));
    assertEquals(cert, Files.readString(h.hsm("hsm2").tlsCert()));
    String hsm1 = Files.readString(h.hsm("hsm1").nodeProperties());
    assertFalse(hsm1.contains("cluster.createKey"), "an established cluster has its key: " + hsm1);
    assertTrue(hsm1.contains("\npkcs11.library=/other/lib.so\n"), "the library follows each start");
    assertTrue(Files.readString(h.clusterProperties()).contains("\ncluster.established=true\n"));
  }

  @Test
  void aCertificateIssuedBeforeKindsExistedIsIssuedAgainWithItsKind() throws Exception {
    Home h = new Home(tmp);
    ClusterRecord rec = ClusterLayout.newRecord(2, 0, 1);
    ClusterLayout.write(h, rec, LIB);
    NodeDir hsm2 = h.hsm("hsm2");
    String hsm1Cert = Files.readString(h.hsm("hsm1").tlsCert());
    // What an old home holds: a certificate of the same CA whose subject has no OU.
    Files.delete(hsm2.tlsCert());
    Files.delete(hsm2.tlsKey());
    writeKindlessCertificate(h.caDir(), hsm2);
    assertEquals(null, io.hsmbridge.agent.membership.ClusterCa.MemberKind.of(read(hsm2.tlsCert())));

    ClusterLayout.write(h, rec.asEstablished(), LIB);
    assertEquals(io.hsmbridge.agent.membership.ClusterCa.MemberKind.AGENT,
        io.hsmbridge.agent.membership.ClusterCa.MemberKind.of(read(hsm2.tlsCert())));
    assertEquals(io.hsmbridge.agent.membership.ClusterCa.MemberKind.FRONT_DOOR,
        io.hsmbridge.agent.membership.ClusterCa.MemberKind.of(read(h.bridge().tlsCert())));
    assertSignedByTheClusterCa(h, hsm2);
    assertEquals("rw-------", mode(hsm2.tlsKey()));
    assertEquals(hsm1Cert, Files.readString(h.hsm("hsm1").tlsCert()), "a certificate with its kind is kept");
  }

  /** A member certificate as ClusterCa issued them before kinds: O and CN only. */
  private static void writeKindlessCertificate(Path caDir, NodeDir n) throws Exception {
    X509Certificate ca = read(caDir.resolve("ca.pem"));
    java.security.PrivateKey caKey;
    try (var r = Files.newBufferedReader(caDir.resolve("ca-key.pem"));
        var parser = new org.bouncycastle.openssl.PEMParser(r)) {
      caKey = new org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter()
          .getPrivateKey((org.bouncycastle.asn1.pkcs.PrivateKeyInfo) parser.readObject());
    }
    var gen = java.security.KeyPairGenerator.getInstance("EC");
    gen.initialize(new java.security.spec.ECGenParameterSpec("secp256r1"));
    var pair = gen.generateKeyPair();
    var now = java.time.Instant.now();
    var builder = new org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder(ca, java.math.BigInteger.valueOf(now.toEpochMilli()),
        java.util.Date.from(now.minusSeconds(60)), java.util.Date.from(now.plusSeconds(86_400)),
        new javax.security.auth.x500.X500Principal("O=hsmbridge, CN=" + n.name()), pair.getPublic());
    X509Certificate cert = new org.bouncycastle.cert.jcajce.JcaX509CertificateConverter().getCertificate(
        builder.build(new org.bouncycastle.operator.jcajce.JcaContentSignerBuilder("SHA256withECDSA").build(caKey)));
    var out = new java.io.StringWriter();
    try (var w = new org.bouncycastle.openssl.jcajce.JcaPEMWriter(out)) {
      w.writeObject(cert);
    }
    Files.writeString(n.tlsCert(), out.toString());
    var key = new java.io.StringWriter();
    try (var w = new org.bouncycastle.openssl.jcajce.JcaPEMWriter(key)) {
      w.writeObject(new org.bouncycastle.openssl.jcajce.JcaPKCS8Generator(pair.getPrivate(), null));
    }
    Files.writeString(n.tlsKey(), key.toString());
  }

  @Test
  void anAddedHsmJoinsTheRunningGroupAndTheOthersListItForTheirNextStart() throws IOException {
    Home h = new Home(tmp);
    ClusterRecord rec = ClusterLayout.newRecord(2, 7701, 2).asEstablished();
    ClusterLayout.write(h, rec, LIB);
    ClusterRecord added = rec.withNewHsm(29998, 29999, 29997);
    ClusterLayout.write(h, added, LIB);

    String peers = "raft.peers=hsm1@127.0.0.1:" + rec.hsms().get(0).raftPort() + ",hsm2@127.0.0.1:"
        + rec.hsms().get(1).raftPort() + ",hsm3@127.0.0.1:29999\n";
    String hsm3 = Files.readString(h.hsm("hsm3").nodeProperties());
    assertTrue(hsm3.contains("\nraft.port=29999\n" + "raft.dir=" + h.hsm("hsm3").raftDir() + "\n" + peers
        + "raft.join=true\n"), hsm3);
    assertTrue(hsm3.contains("raft.join=true\n") && !hsm3.contains("cluster.createKey"), "no cluster.createKey: it fetches the key from a member");
    assertTrue(hsm3.contains("cluster.memberPort=29998\n"));
    assertTrue(hsm3.contains("bridge.tcp.port=29997\n"), "its own client port");
    String hsm1 = Files.readString(h.hsm("hsm1").nodeProperties());
    assertTrue(hsm1.contains("\n" + peers + "raft.join=false\n"), hsm1);
    assertTrue(Files.readString(h.bridge().nodeProperties()).contains(",127.0.0.1:29998,127.0.0.1:"
        + rec.bridgeHazelcastPort() + "\n"));
    assertSignedByTheClusterCa(h, h.hsm("hsm3"));

    ClusterLayout.write(h, added.joined("hsm3"), LIB);
    assertTrue(Files.readString(h.hsm("hsm3").nodeProperties()).contains(peers + "raft.join=false\n"),
        "once serving, a restart no longer asks to join");
  }

  @Test
  void afterARemovalTheOthersNoLongerListIt() throws IOException {
    Home h = new Home(tmp);
    ClusterRecord rec = ClusterLayout.newRecord(3, 7701, 2).asEstablished();
    ClusterLayout.write(h, rec, LIB);
    ClusterRecord.Member gone = rec.member("hsm2").orElseThrow();
    ClusterRecord left = rec.without("hsm2");
    ClusterLayout.write(h, left, LIB);
    for (NodeDir n : List.of(h.hsm("hsm1"), h.hsm("hsm3"), h.bridge())) {
      String props = Files.readString(n.nodeProperties());
      assertFalse(props.contains(":" + gone.hazelcastPort()) || props.contains("hsm2@"), props);
    }
    assertEquals("hsm4", left.nextHsmId(), "ids are never given twice");
  }

  private static void assertSignedByTheClusterCa(Home h, NodeDir n) throws IOException {
    try {
      X509Certificate ca = read(h.caDir().resolve("ca.pem"));
      X509Certificate cert = read(n.tlsCert());
      cert.verify(ca.getPublicKey());
      assertEquals(ca, read(n.tlsCa()));
      assertTrue(cert.getSubjectX500Principal().getName().contains("CN=" + n.name()), cert.getSubjectX500Principal()::getName);
    } catch (java.security.GeneralSecurityException e) {
      throw new AssertionError(n.name() + "'s certificate is not from the cluster CA", e);
    }
  }

  private static X509Certificate read(Path pem) throws IOException, java.security.GeneralSecurityException {
    try (InputStream in = Files.newInputStream(pem)) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
  }
}
