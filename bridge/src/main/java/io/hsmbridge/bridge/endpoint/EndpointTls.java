package io.hsmbridge.bridge.endpoint;

import io.hsmbridge.agent.AgentConfig;
import io.hsmbridge.agent.membership.ClusterCa;
import io.hsmbridge.agent.replication.MemberTrustManager;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.TrustOptions;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.security.GeneralSecurityException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.Set;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * TLS of the client endpoint: TLS 1.3 only, the server certificate from PEM files, and with mutual TLS
 * a trust manager that accepts client certificates issued by the cluster CA <em>and</em> of kind
 * {@link ClusterCa.MemberKind#CLIENT} only (an agent's or front door's certificate is no client's).
 */
public final class EndpointTls {
  /** Every client of this project runs on Java 11+ or a current TLS library: no older protocol is needed. */
  public static final Set<String> PROTOCOLS = Set.of("TLSv1.3");

  private EndpointTls() {}

  /** Applies TLS to the server options; the socket starts plain and is upgraded after it was counted. */
  static void configure(NetServerOptions options, EndpointSettings.Tls tls, long handshakeTimeoutMs) {
    options.setSsl(false) // upgraded per connection in ClientEndpoint, once the limits let it in
        .setEnabledSecureTransportProtocols(PROTOCOLS)
        .setSslHandshakeTimeout(handshakeTimeoutMs)
        .setSslHandshakeTimeoutUnit(java.util.concurrent.TimeUnit.MILLISECONDS)
        .setKeyCertOptions(new PemKeyCertOptions().setCertPath(tls.cert().toString()).setKeyPath(tls.key().toString()));
    if (tls.requireClientCert()) {
      options.setClientAuth(ClientAuth.REQUIRED).setTrustOptions(TrustOptions.wrap(clientTrust(tls.clientCa())));
    } else {
      options.setClientAuth(ClientAuth.NONE);
    }
  }

  /**
   * Fails at start, naming the key, rather than at the first handshake: the certificate must be current
   * and issued by the CA, the key readable by its owner only.
   */
  static void check(EndpointSettings.Tls tls) {
    X509Certificate ca = read(tls.ca(), "bridge.tls.ca");
    X509Certificate cert = read(tls.cert(), "bridge.tls.cert");
    try {
      cert.checkValidity();
    } catch (GeneralSecurityException e) {
      throw AgentConfig.invalid("bridge.tls.cert " + tls.cert() + " is expired or not yet valid");
    }
    try {
      cert.verify(ca.getPublicKey());
    } catch (GeneralSecurityException e) {
      throw AgentConfig.invalid("bridge.tls.cert " + tls.cert() + " is not issued by the CA in bridge.tls.ca " + tls.ca());
    }
    try {
      Set<PosixFilePermission> perms = Files.getPosixFilePermissions(tls.key());
      if (perms.contains(PosixFilePermission.GROUP_READ) || perms.contains(PosixFilePermission.OTHERS_READ)) {
        throw AgentConfig.invalid("bridge.tls.key " + tls.key() + " must be readable by its owner only (chmod 600)");
      }
    } catch (IOException | UnsupportedOperationException e) {
      throw AgentConfig.invalid("bridge.tls.key " + tls.key() + ": cannot check its permissions: " + e.getMessage());
    }
  }

  private static X509Certificate read(Path file, String key) {
    try (InputStream in = Files.newInputStream(file)) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    } catch (IOException | GeneralSecurityException | ClassCastException e) {
      throw AgentConfig.invalid(key + " " + file + " holds no readable PEM certificate: " + e.getMessage());
    }
  }

  /**
   * Refuses a client CA that is the cluster CA ({@code ca}): certificates of the cluster CA pass the event
   * bus's and the membership's chain check, so clients get theirs from a CA of their own ({@code up} makes
   * one: {@code HOME/cluster/ca/clients/}).
   */
  static void checkClientCa(Path clientCa, Path ca) {
    X509Certificate client = read(clientCa, "bridge.tls.clientCa");
    if (client.equals(read(ca, "bridge.tls.ca"))) {
      throw AgentConfig.invalid("bridge.tls.clientCa must not be the cluster CA (bridge.tls.ca): client certificates "
          + "come from a CA of their own, so that no client certificate is also good for the cluster's own links");
    }
  }

  /** The client CA as the only anchor, and only certificates of kind CLIENT. */
  static X509ExtendedTrustManager clientTrust(Path caFile) {
    X509Certificate clientCa = read(caFile, "bridge.tls.clientCa");
    try {
      return new MemberTrustManager(clientCa, c -> ClusterCa.MemberKind.of(c) == ClusterCa.MemberKind.CLIENT,
          "a client certificate (kind " + ClusterCa.MemberKind.CLIENT.unit() + ")");
    } catch (IllegalArgumentException e) {
      throw AgentConfig.invalid("bridge.tls.clientCa " + caFile + ": " + e.getMessage());
    }
  }

}
