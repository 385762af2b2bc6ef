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

/** {@code cluster transport-cert}: the step by hand that {@code up} and {@code hsm add} do for their own joiners. */
class TransportCertCommandTest {
  private static final String CHECK = "00112233445566778899aabbccddeeff";
  @TempDir Path tmp;

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
