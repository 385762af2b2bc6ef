package io.hsmbridge.cli;

import static io.hsmbridge.cli.NodeLayoutTest.mode;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.agent.membership.ClusterConfig;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code containers kit}: the files of a container cluster, their permissions, and what it refuses. */
class ContainerKitCommandTest {
  @TempDir
  Path tmp;

  private CliRun kit(String... args) {
    String[] all = new String[args.length + 2];
    all[0] = "containers";
    all[1] = "kit";
    System.arraycopy(args, 0, all, 2, args.length);
    return CliRun.run(tmp.resolve("home"), all);
  }

  @Test
  void writesEveryNodesTlsFilesAndEveryHsmsPinsPrivately() throws Exception {
    Path dir = tmp.resolve("kit");
    CliRun r = kit("--hsms", "3", "--dir", dir.toString(), "--name", "prod-1");
    assertEquals(0, r.code, r::toString);

    assertEquals("rwx------", mode(dir));
    assertEquals("rwx------", mode(dir.resolve("ca")));
    assertEquals("rw-------", mode(dir.resolve("ca/ca-key.pem")));
    Set<String> pins = new HashSet<>();
    for (String node : List.of("hsm1", "hsm2", "hsm3", "bridge")) {
      Path tls = dir.resolve(node).resolve("tls");
      assertEquals("rwx------", mode(dir.resolve(node)), node);
      assertEquals("rwx------", mode(tls), node);
      assertEquals("rw-------", mode(tls.resolve("key.pem")), node);
      try (Stream<Path> files = Files.list(tls)) {
        assertEquals(Set.of("cert.pem", "key.pem", "ca.pem"),
            new HashSet<>(files.map(p -> p.getFileName().toString()).toList()), node);
      }
      X509Certificate cert = certificate(tls.resolve("cert.pem"));
      assertTrue(cert.getSubjectX500Principal().getName().contains("CN=" + node), cert.getSubjectX500Principal()::getName);
      List<String> sans = cert.getSubjectAlternativeNames().stream().map(l -> l.get(1).toString()).toList();
      // Every node's certificate also serves its client endpoint (the bridge's, each HSM host's front door),
      // dialled at 127.0.0.1 on the host.
      assertEquals(List.of(node, "localhost", "127.0.0.1"), sans, node);
      // Exactly what a node checks at start-up: key 0600, certificate current, issued by ca.pem, key matches.
      Properties p = new Properties();
      p.setProperty("cluster.enabled", "true");
      p.setProperty("cluster.host", "127.0.0.1");
      p.setProperty("cluster.tls.cert", tls.resolve("cert.pem").toString());
      p.setProperty("cluster.tls.key", tls.resolve("key.pem").toString());
      p.setProperty("cluster.tls.ca", tls.resolve("ca.pem").toString());
      assertTrue(ClusterConfig.from(p).enabled());
      // The Raft group takes agent certificates only: an HSM's TLS files must give it one, the bridge's must not.
      assertEquals(!node.equals("bridge"), io.hsmbridge.agent.membership.RaftTrust.isAgent(cert), node);
      if (!node.equals("bridge")) {
        assertNotNull(io.hsmbridge.agent.membership.RaftTrust.forAgent(ClusterConfig.from(p)), node);
      }
      assertEquals(Files.readString(dir.resolve("ca/ca.pem")), Files.readString(tls.resolve("ca.pem")));

      Path secrets = dir.resolve(node).resolve("secrets");
      if (node.equals("bridge")) {
        assertFalse(Files.exists(secrets), "the bridge holds no token, so no PINs");
        continue;
      }
      assertEquals("rwx------", mode(secrets));
      for (String pin : List.of("user-pin", "so-pin")) {
        Path f = secrets.resolve(pin);
        assertEquals("rw-------", mode(f), f::toString);
        String value = Files.readString(f, StandardCharsets.US_ASCII);
        assertTrue(value.matches("[A-Za-z0-9]{24}"), "24 random characters in " + f);
        assertFalse(r.out.contains(value) || r.err.contains(value), "a PIN was printed");
        pins.add(value);
      }
    }
    assertEquals(6, pins.size(), "every PIN distinct");

    String env = Files.readString(dir.resolve("cluster.env"));
    assertTrue(env.contains("HSMBRIDGE_CLUSTER_NAME=prod-1\n"), env);
    assertTrue(env.contains("HSMBRIDGE_MEMBERS=hsm1:5701,hsm2:5701,hsm3:5701,bridge:5701\n"), env);
    assertTrue(env.contains("HSMBRIDGE_RAFT_PEERS=hsm1@hsm1:7800,hsm2@hsm2:7800,hsm3@hsm3:7800\n"), env);
    assertTrue(r.out.contains("--endpoint 127.0.0.1:7701"), r.out);
  }

  @Test
  void composeFileHasEveryServiceItsSecretsAndItsFrontDoorsOnLoopbackOnly() throws Exception {
    Path dir = tmp.resolve("kit");
    CliRun r = kit("--hsms", "4", "--dir", dir.toString(), "--name", "c4", "--durability", "3", "--port", "17701");
    assertEquals(0, r.code, r::toString);
    String yaml = Files.readString(dir.resolve("compose.yaml"));
    assertTrue(yaml.contains("\nname: c4\n"), yaml);

    Map<String, String> services = sections(between(yaml, "services:\n", "\nnetworks:"));
    assertEquals(List.of("hsm1", "hsm2", "hsm3", "hsm4", "bridge"), List.copyOf(services.keySet()));
    for (Map.Entry<String, String> s : services.entrySet()) {
      String name = s.getKey();
      String body = s.getValue();
      assertTrue(body.contains("    image: localhost/hsmbridge:dev\n"), body);
      assertTrue(body.contains("    hostname: " + name + "\n"), body);
      assertTrue(body.contains("      HSMBRIDGE_HOST: " + name + "\n"), body);
      assertTrue(body.contains("    env_file: cluster.env\n"), body);
      assertTrue(body.contains("      - " + name + "-data:/var/lib/hsmbridge\n"), body);
      assertTrue(body.contains("      - ./" + name + "/tls:/etc/hsmbridge/tls:ro\n"), body);
      assertFalse(body.contains("PIN:"), "no PIN in the environment: " + body);
      // One backup store shared by the HSMs (docs/backups.md); the bridge holds no token and makes no backup.
      assertEquals(!name.equals("bridge"), body.contains("      - backups:/var/lib/hsmbridge-backups\n"), body);
      if (name.equals("bridge")) {
        assertTrue(body.contains("      HSMBRIDGE_ROLE: bridge\n"), body);
        assertTrue(body.contains("      HSMBRIDGE_DURABILITY: \"3\"\n"), body);
        assertTrue(body.contains("      - \"127.0.0.1:17701:7701\"\n"), body);
        assertFalse(body.contains("secrets:"), body);
      } else {
        assertTrue(body.contains("      HSMBRIDGE_ROLE: agent\n"), body);
        assertTrue(body.contains("      HSMBRIDGE_HSM_ID: " + name + "\n"), body);
        assertTrue(body.contains("      - source: " + name + "-user-pin\n        target: hsmbridge-user-pin\n"), body);
        assertTrue(body.contains("      - source: " + name + "-so-pin\n        target: hsmbridge-so-pin\n"), body);
        assertEquals(name.equals("hsm1"), body.contains("HSMBRIDGE_CREATE_KEY: \"true\""), name + ": " + body);
        int n = Integer.parseInt(name.substring(3));
        assertTrue(body.contains("      - \"127.0.0.1:" + (17701 + n) + ":7701\"\n"), "its own front door: " + body);
        assertTrue(body.contains("      HSMBRIDGE_DURABILITY: \"3\"\n"), body);
      }
    }
    // Only loopback is ever published.
    Matcher published = Pattern.compile("- \"([^\"]*):\\d+:\\d+\"").matcher(yaml);
    int count = 0;
    while (published.find()) {
      assertEquals("127.0.0.1", published.group(1));
      count++;
    }
    assertEquals(5, count, "the bridge and each HSM host's front door");

    String volumes = between(yaml, "\nvolumes:\n", "\nsecrets:");
    for (String n : services.keySet()) {
      assertTrue(volumes.contains("  " + n + "-data: {}"), volumes);
    }
    assertTrue(volumes.contains("  backups: {}"), volumes);
    String secrets = yaml.substring(yaml.indexOf("\nsecrets:\n"));
    for (int i = 1; i <= 4; i++) {
      for (String kind : List.of("user", "so")) {
        String decl = "  hsm" + i + "-" + kind + "-pin:\n    file: ./hsm" + i + "/secrets/" + kind + "-pin\n";
        assertTrue(secrets.contains(decl), secrets);
        assertTrue(Files.exists(dir.resolve("hsm" + i + "/secrets/" + kind + "-pin")));
      }
    }
  }

  @Test
  void refusesANonEmptyDirectoryUnlessForcedAndForceKeepsForeignFiles() throws Exception {
    Path dir = tmp.resolve("kit");
    assertEquals(0, kit("--hsms", "1", "--dir", dir.toString(), "--name", "one").code);
    String pinBefore = Files.readString(dir.resolve("hsm1/secrets/user-pin"));
    String caBefore = Files.readString(dir.resolve("ca/ca.pem"));

    CliRun again = kit("--hsms", "2", "--dir", dir.toString());
    assertNotEquals(0, again.code, again::toString);
    assertTrue(again.err.contains("is not empty"), again::toString);
    assertEquals(pinBefore, Files.readString(dir.resolve("hsm1/secrets/user-pin")), "nothing changed");
    assertFalse(Files.exists(dir.resolve("hsm2")));

    Files.writeString(dir.resolve("notes.txt"), "mine");
    CliRun forced = kit("--hsms", "2", "--dir", dir.toString(), "--name", "two", "--force");
    assertEquals(0, forced.code, forced::toString);
    assertEquals("mine", Files.readString(dir.resolve("notes.txt")), "--force deletes only the kit's own files");
    assertNotEquals(pinBefore, Files.readString(dir.resolve("hsm1/secrets/user-pin")));
    assertNotEquals(caBefore, Files.readString(dir.resolve("ca/ca.pem")));
    assertTrue(Files.exists(dir.resolve("hsm2/secrets/so-pin")));
    assertTrue(Files.readString(dir.resolve("cluster.env")).contains("HSMBRIDGE_CLUSTER_NAME=two\n"));

    Path file = tmp.resolve("a-file");
    Files.writeString(file, "x");
    CliRun notDir = kit("--dir", file.toString());
    assertNotEquals(0, notDir.code);
    assertTrue(notDir.err.contains("not a directory"), notDir::toString);
  }

  @Test
  void emptyExistingDirectoryIsUsedAndDefaultsApply() throws Exception {
    Path dir = Files.createDirectory(tmp.resolve("empty"));
    CliRun r = kit("--dir", dir.toString());
    assertEquals(0, r.code, r::toString);
    assertEquals("rwx------", mode(dir));
    String env = Files.readString(dir.resolve("cluster.env"));
    assertTrue(env.matches("(?s).*HSMBRIDGE_CLUSTER_NAME=hsmbridge-[0-9a-f]{8}\n.*"), env);
    assertTrue(env.contains("HSMBRIDGE_MEMBERS=hsm1:5701,hsm2:5701,hsm3:5701,bridge:5701\n"), "3 HSMs by default");
    String yaml = Files.readString(dir.resolve("compose.yaml"));
    assertTrue(yaml.contains("HSMBRIDGE_DURABILITY: \"2\""), yaml);
    assertTrue(yaml.contains("\"127.0.0.1:7701:7701\""), yaml);
  }

  @Test
  void badOptionsAreUsageErrors() {
    String d = tmp.resolve("x").toString();
    for (String[] args : List.of(
        new String[] {"--hsms", "0", "--dir", d},
        new String[] {"--hsms", "17", "--dir", d},
        new String[] {"--hsms", "2", "--durability", "0", "--dir", d},
        new String[] {"--name", "Upper", "--dir", d},
        new String[] {"--name", "a b", "--dir", d},
        new String[] {"--port", "0", "--dir", d},
        new String[] {"--hsms", "3"})) {
      CliRun r = kit(args);
      assertEquals(ExitCodes.USAGE, r.code, () -> String.join(" ", args) + "\n" + r);
    }
    assertFalse(Files.exists(tmp.resolve("x")), "nothing written on a usage error");
  }

  @Test
  void statusWithoutABridgeSaysSoWithExitCode3() {
    Path ca = io.hsmbridge.agent.membership.ClusterCa.create(tmp.resolve("ca"), "status-test").certificateFile();
    CliRun r = CliRun.run(tmp.resolve("home"), "containers", "status", "--endpoint", "127.0.0.1:1", "--ca", ca.toString());
    assertEquals(ExitCodes.NOT_RUNNING, r.code, r::toString);
    assertTrue(r.err.contains("no bridge answers at 127.0.0.1:1"), r::toString);
  }

  private static X509Certificate certificate(Path pem) throws Exception {
    try (InputStream in = Files.newInputStream(pem)) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
  }

  /** A kit restored from a backup starts hsm1 as a group of one, and each later HSM joins the ones before it. */
  @Test
  void aRestoredKitsComposeFileStartsHsm1AloneAndTheOthersJoin() throws Exception {
    Path dir = tmp.resolve("restored-kit");
    assertEquals(0, kit("--hsms", "3", "--dir", dir.toString(), "--name", "r3").code);
    String yaml = ContainerKitCommand.Restore.restoredLayout(Files.readString(dir.resolve("compose.yaml")));
    Map<String, String> services = sections(between(yaml, "services:\n", "\nnetworks:"));
    assertFalse(yaml.contains("HSMBRIDGE_CREATE_KEY"), "the restored token holds the cluster key: " + yaml);
    assertTrue(services.get("hsm1").contains("      HSMBRIDGE_RAFT_PEERS: hsm1@hsm1:7800\n"), services.get("hsm1"));
    assertFalse(services.get("hsm1").contains("HSMBRIDGE_RAFT_JOIN"), services.get("hsm1"));
    assertTrue(services.get("hsm2").contains("      HSMBRIDGE_RAFT_PEERS: hsm1@hsm1:7800,hsm2@hsm2:7800\n"
        + "      HSMBRIDGE_RAFT_JOIN: \"true\"\n"), services.get("hsm2"));
    assertTrue(services.get("hsm3").contains("      HSMBRIDGE_RAFT_PEERS: hsm1@hsm1:7800,hsm2@hsm2:7800,hsm3@hsm3:7800\n"
        + "      HSMBRIDGE_RAFT_JOIN: \"true\"\n"), services.get("hsm3"));
    assertFalse(services.get("bridge").contains("HSMBRIDGE_RAFT"), services.get("bridge"));
  }

  private static String between(String text, String start, String end) {
    int a = text.indexOf(start);
    int b = text.indexOf(end, a + start.length());
    assertTrue(a >= 0 && b > a, "no section " + start.strip() + " in:\n" + text);
    return text.substring(a + start.length(), b + 1);
  }

  /** Top-level entries (two-space indented keys) of a YAML mapping, in order, with their bodies. */
  private static Map<String, String> sections(String mapping) {
    Map<String, String> out = new java.util.LinkedHashMap<>();
    String current = null;
    StringBuilder body = new StringBuilder();
    for (String line : mapping.split("\n", -1)) {
      if (line.matches("  [a-z0-9-]+:")) {
        if (current != null) {
          out.put(current, body.toString());
        }
        current = line.strip().replace(":", "");
        body.setLength(0);
      } else if (current != null) {
        body.append(line).append('\n');
      }
    }
    if (current != null) {
      out.put(current, body.toString());
    }
    return out;
  }
}
