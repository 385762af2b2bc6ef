package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.agent.membership.ClusterCa;
import io.hsmbridge.agent.membership.TransportCertificates;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Certificates of a cluster CA given by directory: {@code cluster transport-cert} (the step by hand that {@code up}
 * and {@code hsm add} do for their own joiners) and {@code cluster member-cert --ca-dir}.
 */
class CaDirCommandsTest {
  private static final String CHECK = "00112233445566778899aabbccddeeff";
  @TempDir Path tmp;

  /** {@code cluster member-cert --ca-dir}: an application certificate of another cluster's CA (a container kit's). */
  @Test
  void issuesAnApplicationCertificateOfAnotherClustersCa() throws Exception {
    ClusterCa ca = ClusterCa.create(tmp.resolve("kit-ca"), "kit");
    Path out = tmp.resolve("app");
    CliRun run = CliRun.run(tmp.resolve("home"), "cluster", "member-cert", "app1", "--out", out.toString(), "--ca-dir",
        tmp.resolve("kit-ca").toString(), "--cluster-name", "kit", "--members", "127.0.0.1:5701,[::1]:5701",
        "--member-port", "25999");
    assertEquals(0, run.code, run.err);
    java.security.cert.X509Certificate cert = (java.security.cert.X509Certificate) java.security.cert.CertificateFactory
        .getInstance("X.509").generateCertificate(Files.newInputStream(out.resolve("app1.pem")));
    cert.verify(ca.certificate().getPublicKey());
    assertEquals(ClusterCa.MemberKind.APPLICATION, ClusterCa.MemberKind.of(cert));
    String props = Files.readString(out.resolve("app1.properties"));
    assertTrue(props.contains("cluster.name=kit\n") && props.contains("cluster.members=127.0.0.1:5701,[::1]:5701\n"), props);

    for (String[] bad : new String[][] {{"--members", "127.0.0.1"}, {"--cluster-name", "a b"}}) {
      java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of("cluster", "member-cert", "app2", "--out",
          tmp.resolve("app2").toString(), "--ca-dir", tmp.resolve("kit-ca").toString(), "--cluster-name", "kit",
          "--members", "127.0.0.1:5701"));
      args.set(args.indexOf(bad[0]) + 1, bad[1]);
      CliRun refused = CliRun.run(tmp.resolve("home"), args.toArray(String[]::new));
      assertNotEquals(0, refused.code, String.join(" ", bad));
      assertTrue(refused.err.contains(bad[0]), refused.err);
      assertFalse(Files.exists(tmp.resolve("app2").resolve("app2.pem")));
    }
    CliRun noMembers = CliRun.run(tmp.resolve("home"), "cluster", "member-cert", "app3", "--out", tmp.resolve("app3").toString(),
        "--ca-dir", tmp.resolve("kit-ca").toString());
    assertNotEquals(0, noMembers.code);
    assertTrue(noMembers.err.contains("--cluster-name and --members"), noMembers.err);
  }

  @Test
  void certifiesARequestWithTheGivenCaAndRefusesWithoutTheCaKey() throws Exception {
    ClusterCa ca = ClusterCa.create(tmp.resolve("ca"), "t");
    KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
    g.initialize(2048);
    byte[] key = g.generateKeyPair().getPublic().getEncoded();
    Path request = tmp.resolve("transport-request.pem");
    Path out = tmp.resolve("transport-certificate.pem");
    TransportCertificates.writeRequest(request, key);

    CliRun run = CliRun.run(tmp.resolve("home"), "cluster", "transport-cert", "--hsm-id", "hsm4", "--request",
        request.toString(), "--out", out.toString(), "--cluster-key-check", CHECK, "--ca-dir", tmp.resolve("ca").toString());
    assertEquals(0, run.code, run.err);
    assertTrue(run.out.contains("certified the transport key of hsm4"), run.out);
    X509Certificate cert = TransportCertificates.certificateFor(out, key);
    TransportCertificates.Certified certified = TransportCertificates.verify(ca.certificate(), cert.getEncoded(), "hsm4");
    assertArrayEquals(key, certified.spki());
    assertArrayEquals(java.util.HexFormat.of().parseHex(CHECK), certified.clusterKeyCheck());

    // A check value that is not one: nothing is signed.
    Path out3 = tmp.resolve("third.pem");
    CliRun noCheck = CliRun.run(tmp.resolve("home"), "cluster", "transport-cert", "--hsm-id", "hsm4", "--request",
        request.toString(), "--out", out3.toString(), "--cluster-key-check", "abc", "--ca-dir", tmp.resolve("ca").toString());
    assertNotEquals(0, noCheck.code);
    assertTrue(noCheck.err.contains("32 hex digits"), noCheck.err);
    assertFalse(Files.exists(out3));

    // Only the CA's certificate (no key) in the directory: nothing is signed, the error says where to sign.
    Path certOnly = Files.createDirectories(tmp.resolve("ca-cert-only"));
    Files.copy(tmp.resolve("ca").resolve(ClusterCa.CA_CERT_FILE), certOnly.resolve(ClusterCa.CA_CERT_FILE));
    Path out2 = tmp.resolve("second.pem");
    CliRun refused = CliRun.run(tmp.resolve("home"), "cluster", "transport-cert", "--hsm-id", "hsm4", "--request",
        request.toString(), "--out", out2.toString(), "--cluster-key-check", CHECK, "--ca-dir", certOnly.toString());
    assertNotEquals(0, refused.code);
    assertTrue(refused.err.contains("no cluster CA key"), refused.err);
    assertFalse(Files.exists(out2));

    // A request that is no public key: a clear error, no certificate.
    Files.writeString(request, "not a request\n");
    CliRun bad = CliRun.run(tmp.resolve("home"), "cluster", "transport-cert", "--hsm-id", "hsm4", "--request",
        request.toString(), "--out", out2.toString(), "--cluster-key-check", CHECK, "--ca-dir", tmp.resolve("ca").toString());
    assertNotEquals(0, bad.code);
    assertTrue(bad.err.contains("PUBLIC KEY"), bad.err);
    assertFalse(Files.exists(out2));
  }
}
