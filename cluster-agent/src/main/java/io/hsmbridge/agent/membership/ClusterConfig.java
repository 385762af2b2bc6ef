package io.hsmbridge.agent.membership;

import io.hsmbridge.agent.AgentConfig;
import io.hsmbridge.pkcs11.HsmException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermission;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;

/**
 * Cluster membership and event-bus transport settings, from the node's properties file ({@code cluster.*}
 * keys, see docs/cluster-transport.md). Immutable and validated; every error is CONFIG_INVALID and names
 * the key. When {@code cluster.enabled} is false (the default) nothing else is read or checked.
 *
 * @param enabled join a cluster (clustered event bus) instead of running a local Vert.x
 * @param name the cluster name; members with another name never join
 * @param host the IP address the membership and the event bus bind to and advertise to other members
 *     (a host name in the file is resolved once, here)
 * @param memberPort the membership port (mutual TLS; fixed: members list each other by it)
 * @param eventBusPort the event-bus TLS port; 0 = any free port (advertised through the membership)
 * @param members the members to contact when joining, as {@code host:port}; never empty (defaults to self)
 * @param tlsCert this member's certificate (PEM), issued by the cluster CA, of kind agent or front-door
 * @param tlsKey this member's private key (PEM, PKCS#8), readable by the owner only
 * @param tlsCa the cluster CA certificate (PEM): the only trust anchor for membership and event-bus links
 */
public record ClusterConfig(boolean enabled, String name, String host, int memberPort, int eventBusPort,
    List<String> members, Path tlsCert, Path tlsKey, Path tlsCa) {

  public static final String DEFAULT_NAME = "hsmbridge";
  public static final String DEFAULT_HOST = "127.0.0.1";
  public static final int DEFAULT_MEMBER_PORT = 5701;
  /** The membership port's key. */
  public static final String MEMBER_PORT_KEY = "cluster.memberPort";
  /**
   * Its name while Hazelcast carried the membership; still read (when {@link #MEMBER_PORT_KEY} is absent)
   * so that node.properties and cluster records written before keep working.
   */
  public static final String LEGACY_MEMBER_PORT_KEY = "cluster.hazelcastPort";

  public ClusterConfig {
    members = List.copyOf(members);
  }

  /** The disabled configuration: a local Vert.x, nothing clustered. */
  public static ClusterConfig disabled() {
    return new ClusterConfig(false, DEFAULT_NAME, DEFAULT_HOST, DEFAULT_MEMBER_PORT, 0, List.of(), null, null, null);
  }

  public static ClusterConfig from(Properties p) {
    if (!AgentConfig.bool(p, "cluster.enabled", false)) {
      return disabled();
    }
    String name = checkName(get(p, "cluster.name", DEFAULT_NAME));
    String host = address(get(p, "cluster.host", DEFAULT_HOST), "cluster.host");
    String portKey = p.getProperty(MEMBER_PORT_KEY) == null && p.getProperty(LEGACY_MEMBER_PORT_KEY) != null
        ? LEGACY_MEMBER_PORT_KEY : MEMBER_PORT_KEY;
    int memberPort = port(p, portKey, DEFAULT_MEMBER_PORT, false);
    int ebPort = port(p, "cluster.eventBusPort", 0, true);
    if (ebPort == memberPort) {
      throw invalid("cluster.eventBusPort must differ from " + portKey);
    }
    List<String> members = members(p.getProperty("cluster.members"), host + ":" + memberPort);
    Path cert = file(p, "cluster.tls.cert");
    Path key = file(p, "cluster.tls.key");
    Path ca = file(p, "cluster.tls.ca");
    checkKeyPermissions(key);
    checkTls(cert, key, ca);
    return new ClusterConfig(true, name, host, memberPort, ebPort, members, cert, key, ca);
  }

  /** {@code name} when it is a valid cluster name (cluster.name), else CONFIG_INVALID saying what one is. */
  public static String checkName(String name) {
    if (name == null || !name.matches("[A-Za-z0-9_.-]{1,64}")) {
      throw invalid("cluster.name must be 1..64 letters, digits, '.', '-' or '_'");
    }
    return name;
  }

  private static String get(Properties p, String key, String defaultValue) {
    String v = p.getProperty(key);
    return v == null || v.isBlank() ? defaultValue : v.trim();
  }

  private static int port(Properties p, String key, int defaultValue, boolean zeroAllowed) {
    int v = AgentConfig.integer(p, key, defaultValue);
    if (v < (zeroAllowed ? 0 : 1) || v > 65535) {
      throw invalid(key + " must be " + (zeroAllowed ? "0" : "1") + "..65535");
    }
    return v;
  }

  /** Resolves once: the membership binds to one IP, and a member must not change address. */
  private static String address(String host, String key) {
    try {
      InetAddress a = InetAddress.getByName(host);
      if (a.isAnyLocalAddress()) {
        throw invalid(key + " must be one address other members can reach, not a wildcard (" + host + ")");
      }
      return a.getHostAddress();
    } catch (UnknownHostException e) {
      throw invalid(key + " '" + host + "' is not an IP address or a resolvable host name");
    }
  }

  static List<String> members(String value, String self) {
    List<String> out = new ArrayList<>();
    if (value != null) {
      for (String raw : value.split(",")) {
        String m = raw.trim();
        if (m.isEmpty()) {
          continue;
        }
        int colon = m.lastIndexOf(':');
        if (colon <= 0 || colon == m.length() - 1 || (m.indexOf(':') != colon && !m.startsWith("["))) {
          throw invalid("cluster.members entry '" + m + "' must be host:port (IPv6 as [addr]:port)");
        }
        String host = m.substring(0, colon);
        int port;
        try {
          port = Integer.parseInt(m.substring(colon + 1));
        } catch (NumberFormatException e) {
          throw invalid("cluster.members entry '" + m + "' has a port that is not a number");
        }
        if (port < 1 || port > 65535) {
          throw invalid("cluster.members entry '" + m + "' has a port outside 1..65535");
        }
        if (host.startsWith("[") && host.endsWith("]")) {
          host = host.substring(1, host.length() - 1);
        }
        if (host.isEmpty() || !host.matches("[A-Za-z0-9.:_-]+")) {
          throw invalid("cluster.members entry '" + m + "' has an invalid host");
        }
        String member = hostPort(host, port);
        if (!out.contains(member)) {
          out.add(member);
        }
      }
    }
    if (out.isEmpty()) {
      out.add(self);
    }
    return out;
  }

  /** {@code host:port}, an IPv6 address in brackets: how members and endpoints are written. */
  public static String hostPort(String host, int port) {
    return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
  }

  private static Path file(Properties p, String key) {
    String v = p.getProperty(key);
    if (v == null || v.isBlank()) {
      throw invalid(key + " is required when cluster.enabled=true");
    }
    Path f = Paths.get(v.trim());
    if (!Files.isRegularFile(f) || !Files.isReadable(f)) {
      throw invalid(key + " " + f + " is not a readable file");
    }
    return f;
  }

  private static void checkKeyPermissions(Path key) {
    try {
      Set<PosixFilePermission> perms = Files.getPosixFilePermissions(key);
      if (perms.contains(PosixFilePermission.GROUP_READ) || perms.contains(PosixFilePermission.OTHERS_READ)
          || perms.contains(PosixFilePermission.GROUP_WRITE) || perms.contains(PosixFilePermission.OTHERS_WRITE)) {
        throw invalid("cluster.tls.key " + key + " must be readable by its owner only (chmod 600)");
      }
    } catch (UnsupportedOperationException | IOException e) {
      throw invalid("cluster.tls.key " + key + ": cannot check its permissions: " + e.getMessage());
    }
  }

  /**
   * Fails here, naming the key, rather than deep inside Vert.x's SSL set-up: the certificate must be
   * current and signed by the CA, and the key must be the certificate's.
   */
  private static void checkTls(Path certFile, Path keyFile, Path caFile) {
    X509Certificate ca = readCert(caFile, "cluster.tls.ca");
    X509Certificate cert = readCert(certFile, "cluster.tls.cert");
    try {
      cert.checkValidity();
    } catch (GeneralSecurityException e) {
      throw invalid("cluster.tls.cert " + certFile + " is expired or not yet valid");
    }
    try {
      cert.verify(ca.getPublicKey());
    } catch (GeneralSecurityException e) {
      throw invalid("cluster.tls.cert " + certFile + " is not issued by the CA in cluster.tls.ca " + caFile);
    }
    ClusterCa.MemberKind kind = ClusterCa.MemberKind.of(cert);
    if (!MembershipTls.MEMBER_KINDS.contains(kind)) {
      throw invalid("cluster.tls.cert " + certFile + " is of kind " + (kind == null ? "none" : kind.unit())
          + "; only agent, front-door and application certificates may be cluster members");
    }
    PrivateKey key;
    try {
      key = ClusterCa.readPrivateKey(keyFile, "member key");
    } catch (HsmException e) {
      throw invalid("cluster.tls.key: " + e.getMessage());
    }
    if (!matches(key, cert)) {
      throw invalid("cluster.tls.key " + keyFile + " does not belong to cluster.tls.cert " + certFile);
    }
  }

  private static X509Certificate readCert(Path file, String key) {
    try {
      return ClusterCa.readCertificate(file, "certificate");
    } catch (HsmException e) {
      throw invalid(key + ": " + e.getMessage());
    }
  }

  private static boolean matches(PrivateKey key, X509Certificate cert) {
    try {
      String alg = key.getAlgorithm().equals("EC") ? "SHA256withECDSA" : "SHA256with" + key.getAlgorithm();
      byte[] probe = "hsmbridge cluster key check".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
      Signature s = Signature.getInstance(alg);
      s.initSign(key);
      s.update(probe);
      byte[] sig = s.sign();
      Signature v = Signature.getInstance(alg);
      v.initVerify(cert.getPublicKey());
      v.update(probe);
      return v.verify(sig);
    } catch (GeneralSecurityException e) {
      return false;
    }
  }

  private static HsmException invalid(String message) {
    return AgentConfig.invalid(message);
  }
}
