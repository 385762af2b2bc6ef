package io.hsmbridge.agent.membership;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.PublicKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPublicKey;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ClusterCaTest {
  @TempDir Path tmp;

  @Test
  void caFilesArePrivateAndSelfSigned() throws Exception {
    Path dir = tmp.resolve("ca");
    ClusterCa ca = ClusterCa.create(dir, "test");
    assertEquals("rwx------", perms(dir));
    assertEquals("rw-------", perms(dir.resolve("ca-key.pem")));
    assertTrue(Files.readString(dir.resolve("ca-key.pem")).startsWith("-----BEGIN PRIVATE KEY-----"));

    X509Certificate cert = readPem(dir.resolve("ca.pem"));
    cert.verify(cert.getPublicKey());
    assertTrue(cert.getBasicConstraints() >= 0, "CA certificate must be a CA");
    assertEquals(256, ((ECPublicKey) cert.getPublicKey()).getParams().getOrder().bitLength());
    long days = Duration.between(cert.getNotBefore().toInstant(), cert.getNotAfter().toInstant()).toDays();
    assertTrue(days >= 3650 && days <= 3653, "10 years, was " + days + " days");
    assertEquals(cert, ca.certificate());
    assertFalse(ca.toString().contains("PRIVATE"), ca.toString());
  }

  @Test
  void memberCertificateChainsToTheCaAndNamesItsHosts() throws Exception {
    ClusterCa ca = ClusterCa.create(tmp.resolve("ca"), "test");
    ClusterCa.MemberFiles files = ca.issueMember("node1", ClusterCa.MemberKind.AGENT, List.of("127.0.0.1", "localhost"), tmp.resolve("node1"));
    assertEquals("rw-------", perms(files.key()));
    assertTrue(Files.readString(files.key()).startsWith("-----BEGIN PRIVATE KEY-----"));

    X509Certificate caCert = readPem(files.ca());
    X509Certificate member = readPem(files.certificate());
    member.verify(caCert.getPublicKey());
    assertEquals(caCert.getSubjectX500Principal(), member.getIssuerX500Principal());
    assertEquals(-1, member.getBasicConstraints(), "a member certificate must not be a CA");
    assertEquals(ClusterCa.MemberKind.AGENT, ClusterCa.MemberKind.of(member));
    assertEquals(null, ClusterCa.MemberKind.of(caCert), "the CA itself is of no member kind");
    ClusterCa.MemberFiles client = ca.issueMember("app1", ClusterCa.MemberKind.CLIENT, List.of("localhost"), tmp.resolve("app1"));
    assertEquals(ClusterCa.MemberKind.CLIENT, ClusterCa.MemberKind.of(readPem(client.certificate())));
    assertTrue(member.getExtendedKeyUsage().containsAll(List.of("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2")));
    Set<String> sans = new HashSet<>();
    for (List<?> san : member.getSubjectAlternativeNames()) {
      sans.add(san.get(0) + "=" + san.get(1));
    }
    assertEquals(Set.of("7=127.0.0.1", "2=localhost"), sans);
    long days = Duration.between(member.getNotBefore().toInstant(), member.getNotAfter().toInstant()).toDays();
    assertTrue(days >= 729 && days <= 731, "2 years, was " + days + " days");

    // A certificate from another CA does not chain.
    ClusterCa other = ClusterCa.create(tmp.resolve("other"), "test");
    PublicKey otherKey = other.certificate().getPublicKey();
    assertThrows(java.security.SignatureException.class, () -> member.verify(otherKey));
  }

  @Test
  void reloadedCaIssuesCertificatesThatChain() throws Exception {
    ClusterCa.create(tmp.resolve("ca"), "test");
    ClusterCa again = ClusterCa.load(tmp.resolve("ca"));
    ClusterCa.MemberFiles files = again.issueMember("n2", ClusterCa.MemberKind.AGENT, List.of("10.0.0.2"), tmp.resolve("n2"));
    readPem(files.certificate()).verify(readPem(tmp.resolve("ca").resolve("ca.pem")).getPublicKey());
  }

  @Test
  void refusesToOverwriteAnExistingCaOrMember() {
    ClusterCa ca = ClusterCa.create(tmp.resolve("ca"), "test");
    HsmException e = assertThrows(HsmException.class, () -> ClusterCa.create(tmp.resolve("ca"), "test"));
    assertEquals(ErrorCode.CONFIG_INVALID, e.code());
    assertTrue(e.getMessage().contains("already exists"), e.getMessage());
    ca.issueMember("n1", ClusterCa.MemberKind.AGENT, List.of("127.0.0.1"), tmp.resolve("n1"));
    HsmException again = assertThrows(HsmException.class,
        () -> ca.issueMember("n1", ClusterCa.MemberKind.AGENT, List.of("127.0.0.1"), tmp.resolve("n1")));
    assertTrue(again.getMessage().contains("refusing to overwrite"), again.getMessage());
  }

  @Test
  void rejectsBadMemberRequests() {
    ClusterCa ca = ClusterCa.create(tmp.resolve("ca"), "test");
    assertThrows(HsmException.class, () -> ca.issueMember("../evil", ClusterCa.MemberKind.AGENT, List.of("127.0.0.1"), tmp));
    assertThrows(HsmException.class, () -> ca.issueMember("n1", ClusterCa.MemberKind.AGENT, List.of(), tmp));
  }

  static X509Certificate readPem(Path file) throws Exception {
    try (InputStream in = Files.newInputStream(file)) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
  }

  private static String perms(Path p) throws Exception {
    return PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
  }
}
