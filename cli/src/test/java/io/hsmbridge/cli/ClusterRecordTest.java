package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class ClusterRecordTest {
  private static final Path FILE = Path.of("/h/cluster.properties");

  private static ClusterRecord sample() {
    return new ClusterRecord("hsmbridge-0a1b2c3d", 7701, 2, true, 5, 20001, List.of(
        new ClusterRecord.Member("hsm1", 20002, 20003, false, 20006),
        new ClusterRecord.Member("hsm4", 20004, 20005, true)));
  }

  @Test
  void formatsStablyAndReadsBack() {
    ClusterRecord r = sample();
    assertEquals(ClusterRecord.HEADER
        + "cluster.name=hsmbridge-0a1b2c3d\n"
        + "cluster.established=true\n"
        + "bridge.tcpPort=7701\n"
        + "bridge.durability=2\n"
        + "bridge.hazelcastPort=20001\n"
        + "hsm.next=5\n"
        + "hsm.members=hsm1,hsm4\n"
        + "hsm.hsm1.hazelcastPort=20002\n"
        + "hsm.hsm1.raftPort=20003\n"
        + "hsm.hsm1.clientPort=20006\n"
        + "hsm.hsm4.hazelcastPort=20004\n"
        + "hsm.hsm4.raftPort=20005\n"
        + "hsm.hsm4.joining=true\n", r.format());
    assertEquals(r, ClusterRecord.parse(r.format(), FILE));
  }

  @Test
  void changesAreNewRecords() {
    ClusterRecord r = sample();
    ClusterRecord added = r.withNewHsm(20007, 20008, 20009);
    assertEquals(List.of("hsm1", "hsm4", "hsm5"), added.hsmIds());
    assertTrue(added.member("hsm5").orElseThrow().joining());
    assertEquals("hsm6", added.nextHsmId());
    assertEquals(List.of("hsm1", "hsm5"), added.without("hsm4").hsmIds());
    assertEquals("hsm6", added.without("hsm5").nextHsmId(), "a removed id is not given again");
    assertTrue(!added.joined("hsm4").member("hsm4").orElseThrow().joining());
    assertEquals(java.util.Set.of(7701, 20001, 20002, 20003, 20004, 20005, 20006), r.ports());
    assertEquals(20009, added.member("hsm5").orElseThrow().clientPort());
    assertEquals(20009, added.joined("hsm5").member("hsm5").orElseThrow().clientPort(), "kept when it joined");
    assertEquals(0, ClusterRecord.parse(r.format().replace("hsm.hsm1.clientPort=20006\n", ""), FILE)
        .member("hsm1").orElseThrow().clientPort(), "a record of before: a free port at each start");
  }

  @Test
  void aDamagedRecordIsOneLineNamingTheKey() {
    String ok = sample().format();
    assertEquals("/h/cluster.properties: hsm.hsm4.raftPort is missing",
        assertThrows(CliException.class, () -> ClusterRecord.parse(ok.replace("hsm.hsm4.raftPort=20005\n", ""), FILE))
            .getMessage());
    assertEquals("/h/cluster.properties: bridge.durability must be 1..9, got 'x'",
        assertThrows(CliException.class, () -> ClusterRecord.parse(ok.replace("durability=2", "durability=x"), FILE))
            .getMessage());
    assertEquals("/h/cluster.properties: the ports of hsm4 are already used by another member",
        assertThrows(CliException.class, () -> ClusterRecord.parse(ok.replace("=20004", "=20002"), FILE))
            .getMessage());
    assertEquals("/h/cluster.properties: hsm.next must be above every HSM number (hsm4)",
        assertThrows(CliException.class, () -> ClusterRecord.parse(ok.replace("hsm.next=5", "hsm.next=4"), FILE))
            .getMessage());
    assertTrue(assertThrows(CliException.class,
        () -> ClusterRecord.parse(ok.replace("hsm.members=hsm1,hsm4", "hsm.members=hsm1,bridge"), FILE))
        .getMessage().contains("'bridge' is not an HSM id"));
  }
}
