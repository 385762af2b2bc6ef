package io.hsmbridge.agent.membership;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The transport key certificate decides who may receive the cluster key: {@link TransportCertificates#verify}
 * must accept exactly what the cluster CA issued as one, for the HSM that asks. (The attack over the event
 * bus, with real tokens: AgentAddressesAttackTest.)
 */
class TransportCertificatesTest {
  private static final byte[] CHECK = java.util.HexFormat.of().parseHex("00112233445566778899aabbccddeeff");
  @TempDir Path tmp;

  @Test
  void acceptsTheCertifiedKeyForItsHsmOnly() throws Exception {
    ClusterCa ca = ClusterCa.create(tmp.resolve("ca"), "t");
    byte[] key = rsa(3072);
    X509Certificate cert = ca.issueTransportCertificate("hsm2", key, CHECK);
    TransportCertificates.Certified certified = TransportCertificates.verify(ca.certificate(), cert.getEncoded(), "hsm2");
    assertArrayEquals(key, certified.spki());
    assertArrayEquals(CHECK, certified.clusterKeyCheck());
    assertArrayEquals(CHECK, TransportCertificates.clusterKeyCheck(cert));
    assertEquals(ClusterCa.MemberKind.TRANSPORT_KEY, ClusterCa.MemberKind.of(cert));
    assertFalse(MembershipTls.isMember(cert), "no TLS port accepts a transport key certificate");
    assertFalse(RaftTrust.isAgent(cert));
    assertTrue(cert.getKeyUsage()[2] && !cert.getKeyUsage()[0], "keyEncipherment only, no digitalSignature");
    assertNull(cert.getExtendedKeyUsage(), "no TLS purpose");

    denied(ca.certificate(), cert.getEncoded(), "hsm3", "not for the HSM that asks");
    denied(ClusterCa.create(tmp.resolve("other"), "t").certificate(), cert.getEncoded(), "hsm2", "not issued by this cluster's CA");
  }

  @Test
  void refusesWhatIsNoTransportKeyCertificate() throws Exception {
    ClusterCa ca = ClusterCa.create(tmp.resolve("ca"), "t");
    for (ClusterCa.MemberKind kind : List.of(ClusterCa.MemberKind.AGENT, ClusterCa.MemberKind.FRONT_DOOR,
        ClusterCa.MemberKind.APPLICATION, ClusterCa.MemberKind.CLIENT)) {
      Path pem = ca.issueMember("hsm2", kind, List.of("127.0.0.1"), tmp.resolve(kind.unit())).certificate();
      denied(ca.certificate(), ClusterCa.readCertificate(pem, "test").getEncoded(), "hsm2", "is no transport key certificate");
    }
    denied(ca.certificate(), ca.certificate().getEncoded(), "hsm2", "is no transport key certificate"); // the CA's own
    denied(ca.certificate(), new byte[] {0x30, 0x03, 0x02, 0x01, 0x01}, "hsm2", "not an X.509 certificate");
    denied(ca.certificate(), new byte[0], "hsm2", "must present");
    denied(ca.certificate(), new byte[TransportCertificates.MAX_CERTIFICATE_BYTES + 1], "hsm2", "must present");
  }

  @Test
  void theCaCertifiesOnlyRsaKeysOfAtLeast2048Bits() throws Exception {
    ClusterCa ca = ClusterCa.create(tmp.resolve("ca"), "t");
    HsmException small = assertThrows(HsmException.class, () -> ca.issueTransportCertificate("hsm2", rsa(1024), CHECK));
    assertTrue(small.getMessage().contains("1024 bits"), small.getMessage());
    KeyPairGenerator ec = KeyPairGenerator.getInstance("EC");
    byte[] ecKey = ec.generateKeyPair().getPublic().getEncoded();
    assertThrows(HsmException.class, () -> ca.issueTransportCertificate("hsm2", ecKey, CHECK));
    byte[] key = rsa(2048);
    assertThrows(HsmException.class, () -> ca.issueTransportCertificate("../hsm2", key, CHECK));
    assertThrows(HsmException.class, () -> ca.issueTransportCertificate("hsm2", key, null), "no check value");
    assertThrows(HsmException.class, () -> ca.issueTransportCertificate("hsm2", key, new byte[15]));
  }

  @Test
  void requestAndCertificateFilesRoundTrip() throws Exception {
    ClusterCa ca = ClusterCa.create(tmp.resolve("ca"), "t");
    byte[] key = rsa(2048);
    Path request = tmp.resolve(TransportCertificates.REQUEST_FILE);
    Path out = tmp.resolve(TransportCertificates.CERTIFICATE_FILE);
    TransportCertificates.writeRequest(request, key);
    assertTrue(Files.readString(request).startsWith("-----BEGIN PUBLIC KEY-----"));
    assertNull(TransportCertificates.certificateFor(out, key), "no certificate yet");
    TransportCertificates.sign(ca, "hsm2", request, CHECK, out);
    X509Certificate cert = TransportCertificates.certificateFor(out, key);
    assertArrayEquals(key, TransportCertificates.verify(ca.certificate(), cert.getEncoded(), "hsm2").spki());

    Path checkFile = tmp.resolve(TransportCertificates.CHECK_VALUE_FILE);
    TransportCertificates.writeCheckValue(checkFile, CHECK);
    assertArrayEquals(CHECK, TransportCertificates.parseCheckValue(Files.readString(checkFile)));
    for (String bad : new String[] {"", "00", "zz".repeat(16), "00".repeat(17)}) {
      assertEquals(ErrorCode.INVALID_PARAMETER,
          assertThrows(HsmException.class, () -> TransportCertificates.parseCheckValue(bad)).code(), bad);
    }
    assertNull(TransportCertificates.certificateFor(out, rsa(2048)), "a certificate of another key (a token made anew)");

    Files.writeString(request, "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n");
    HsmException e = assertThrows(HsmException.class, () -> TransportCertificates.readRequest(request));
    assertEquals(ErrorCode.INVALID_PARAMETER, e.code());
  }

  private static void denied(X509Certificate ca, byte[] der, String hsmId, String why) {
    HsmException e = assertThrows(HsmException.class, () -> TransportCertificates.verify(ca, der, hsmId));
    assertEquals(ErrorCode.ACCESS_DENIED, e.code(), e.getMessage());
    assertTrue(e.getMessage().contains(why), e.getMessage());
  }

  private static byte[] rsa(int bits) throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
    g.initialize(bits);
    return g.generateKeyPair().getPublic().getEncoded();
  }
}
