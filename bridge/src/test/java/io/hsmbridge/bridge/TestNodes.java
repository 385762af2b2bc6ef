package io.hsmbridge.bridge;

import io.hsmbridge.agent.membership.ClusterCa;
import io.hsmbridge.agent.node.LoopbackPorts;
import io.hsmbridge.client.ClientTls;
import io.hsmbridge.client.Hsm;
import io.hsmbridge.pkcs11.IntegrityScan;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonObject;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.Base64;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

/**
 * Shared helpers of the bridge tests: a one-HSM cluster's node properties and PKI, its activation,
 * SoftHSM2 token files, raw frames over the client endpoint's TLS.
 */
final class TestNodes {
  private TestNodes() {}

  /** A token in this JVM's SoftHSM2 store (see SoftHsmFixture), not yet initialised. */
  record Token(String label, Path userPin, Path soPin) {
    static Token fresh(String prefix) {
      String label = SoftHsmFixture.newToken(prefix).tokenLabel();
      Path pins = SoftHsmFixture.root().resolve("pins");
      return new Token(label, pins.resolve(label + ".user"), pins.resolve(label + ".so"));
    }
  }

  /**
   * The properties of an HSM host serving {@code label} as a one-HSM cluster, as {@code ./hsmbridge up
   * --hsms 1} writes them: cluster membership and the Raft group of this one HSM (mutual TLS under a
   * cluster CA in {@code pki}, made once), the cluster key created here, and its front door (client endpoint
   * on a free port, TLS with its cluster certificate). {@code node.role} and {@code frontDoor.enabled} are
   * left to their defaults: an HSM host with its front door. endpoint.json, the audit log and the Raft log
   * go to {@code stateDir} (created here).
   * Call it once per node and reuse the map across restarts: the Raft log records this HSM's port.
   */
  static Map<String, String> nodeProperties(String hsmId, String label, Path userPin, Path soPin, Path stateDir,
      Pki pki) {
    ClusterCa.MemberFiles tls = pki.member(hsmId);
    try {
      Files.createDirectories(stateDir); // as up does: the audit log and the Raft log live there
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    Map<String, String> p = new LinkedHashMap<>();
    p.put("hsm.id", hsmId);
    p.put("pkcs11.library", SoftHsmFixture.library().toString());
    p.put("token.label", label);
    p.put("pin.user.file", userPin.toString());
    p.put("pin.so.file", soPin.toString());
    p.put("token.initialize", "true");
    p.put("state.dir", stateDir.toString());
    p.put("cluster.enabled", "true");
    p.put("cluster.name", pki.clusterName());
    p.put("cluster.host", "127.0.0.1");
    int memberPort = LoopbackPorts.one();
    p.put("cluster.memberPort", String.valueOf(memberPort));
    p.put("cluster.members", "127.0.0.1:" + memberPort);
    p.put("cluster.tls.cert", tls.certificate().toString());
    p.put("cluster.tls.key", tls.key().toString());
    p.put("cluster.tls.ca", tls.ca().toString());
    p.put("raft.port", String.valueOf(LoopbackPorts.one()));
    p.put("cluster.createKey", "true"); // the first (and only) HSM; a token that holds the key keeps it
    p.put("bridge.tcp.host", "127.0.0.1");
    p.put("bridge.tcp.port", "0");
    p.put("cluster.antiEntropySeconds", "0");
    return p;
  }

  /** A cluster CA and its members' certificates, in one directory of a test. */
  record Pki(Path dir, String clusterName) {
    static Pki in(Path dir) {
      String name = "test-" + Long.toHexString(System.nanoTime());
      ClusterCa.create(dir.resolve("ca"), name);
      return new Pki(dir, name);
    }

    /** The certificate (kind agent, SANs 127.0.0.1 and localhost) of {@code hsmId}, issued on first use. */
    ClusterCa.MemberFiles member(String hsmId) {
      Path out = dir.resolve("members").resolve(hsmId);
      Path cert = out.resolve(hsmId + ".pem");
      if (Files.exists(cert)) {
        return new ClusterCa.MemberFiles(cert, out.resolve(hsmId + "-key.pem"), out.resolve(ClusterCa.CA_CERT_FILE));
      }
      return ClusterCa.load(dir.resolve("ca")).issueMember(hsmId, ClusterCa.MemberKind.AGENT,
          List.of("127.0.0.1", "localhost"), out);
    }

    /** What a client pins: the cluster CA. */
    ClientTls clientTls() {
      return ClientTls.pinning(dir.resolve("ca").resolve(ClusterCa.CA_CERT_FILE));
    }
  }

  /** The endpoint.json a serving node wrote to {@code stateDir}. */
  static JsonObject endpoint(Path stateDir) throws IOException {
    return new JsonObject(Files.readString(stateDir.resolve("endpoint.json"), StandardCharsets.UTF_8));
  }

  /** A crypto user's name and password (the test's own: it logs in again after a restart). */
  record CryptoUser(String name, char[] password) {
    @Override
    public String toString() {
      return "CryptoUser[" + name + "]"; // never the password
    }
  }

  /**
   * Activates the new cluster behind {@code hsm} as an operator does (PRECO login with the default
   * password, {@code cluster.activate}, a CU created by the admin) and leaves {@code hsm} logged in as
   * that crypto user, who runs the keys and the crypto of the tests.
   */
  static CryptoUser activate(Hsm hsm) {
    char[] admin = password();
    hsm.login("admin", "password".toCharArray());
    hsm.activate(admin);
    hsm.login("admin", admin);
    CryptoUser cu = new CryptoUser("tester", password());
    hsm.createUser(cu.name(), Role.CU, cu.password());
    hsm.login(cu.name(), cu.password());
    return cu;
  }

  private static char[] password() {
    byte[] b = new byte[24];
    new SecureRandom().nextBytes(b);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(b).toCharArray();
  }

  static Path writeProperties(Path file, Map<String, String> properties) {
    StringBuilder b = new StringBuilder("# written by a test\n");
    properties.forEach((k, v) -> b.append(k).append(" = ").append(v.replace("\\", "\\\\")).append('\n'));
    try {
      Files.createDirectories(file.getParent());
      Files.writeString(file, b.toString(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return file;
  }

  static NodeConfig config(Path dir, Map<String, String> properties) {
    return NodeConfig.load(writeProperties(dir.resolve("node-" + System.nanoTime() + ".properties"), properties));
  }

  /**
   * The SoftHSM2 directory under {@code tokensDir} whose token.object holds {@code label} (blank-padded
   * to 32 bytes, as SoftHSM2 stores it).
   */
  static Path tokenDirectory(Path tokensDir, String label) {
    List<Path> found = IntegrityScan.softHsmTokenDirectories(tokensDir, label);
    if (found.size() != 1) {
      throw new IllegalStateException("expected one token directory for '" + label + "' in " + tokensDir + ", found " + found);
    }
    return found.get(0);
  }

  /** Object files of a token (its keys), excluding token.object itself. */
  static long objectFiles(Path tokenDir) {
    try (Stream<Path> files = Files.list(tokenDir)) {
      return files.map(f -> f.getFileName().toString())
          .filter(n -> n.endsWith(".object") && !n.equals("token.object")).count();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * {@link #objectFiles} once it stopped changing (the same count for 3 samples 100 ms apart; at most 15 s):
   * an agent of a cluster replaces bookkeeping records in its token after it answered (the audit anchor,
   * every 200 ms at most: create, then destroy), so an instant's count can be one more than at rest. A
   * replacement takes milliseconds, so it cannot hold three samples; one not yet made changes no count at
   * rest. (The samples were 250 ms apart: ~1 s per rejected request, 34 s of BridgeNodeTest.malformedRequests.)
   */
  static long objectFilesAtRest(Path tokenDir) {
    long deadline = System.nanoTime() + 15_000_000_000L;
    long last = objectFiles(tokenDir);
    int same = 1;
    while (same < 3 && System.nanoTime() - deadline < 0) {
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted");
      }
      long now = objectFiles(tokenDir);
      same = now == last ? same + 1 : 1;
      last = now;
    }
    return last;
  }

  /**
   * A bare connection to the client endpoint speaking raw frames over TLS 1.3 (pinning the cluster CA):
   * nothing of the client SDK.
   */
  static final class RawConnection implements AutoCloseable {
    private final Socket socket;
    private final OutputStream out;
    private final DataInputStream in;

    RawConnection(int port, Path caPem) throws IOException {
      SSLSocket tls = (SSLSocket) sslContext(caPem).getSocketFactory().createSocket();
      tls.setEnabledProtocols(new String[] {"TLSv1.3"});
      tls.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
      tls.setSoTimeout(15_000);
      tls.startHandshake();
      socket = tls;
      out = socket.getOutputStream();
      in = new DataInputStream(socket.getInputStream());
    }

    private static SSLContext sslContext(Path caPem) throws IOException {
      try (var pem = Files.newInputStream(caPem)) {
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        trust.setCertificateEntry("ca", (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(pem));
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext ctx = SSLContext.getInstance("TLSv1.3");
        ctx.init(null, tmf.getTrustManagers(), new SecureRandom());
        return ctx;
      } catch (java.security.GeneralSecurityException e) {
        throw new IOException("cannot trust " + caPem + ": " + e.getMessage(), e);
      }
    }

    void send(JsonObject frame) throws IOException {
      sendBytes(frame.encode().getBytes(StandardCharsets.UTF_8));
    }

    /** Writes one frame: 4-byte big-endian length, then the bytes as given. */
    void sendBytes(byte[] payload) throws IOException {
      out.write(ByteBuffer.allocate(4).putInt(payload.length).array());
      out.write(payload);
      out.flush();
    }

    /** The next frame, or null when the bridge closed the connection. */
    JsonObject read() throws IOException {
      int n;
      try {
        n = in.readInt();
      } catch (EOFException e) {
        return null;
      }
      byte[] b = new byte[n];
      in.readFully(b);
      return new JsonObject(new String(b, StandardCharsets.UTF_8));
    }

    /** The next frame, or null when none arrives within {@code millis} (or the connection closed). */
    JsonObject readWithin(int millis) throws IOException {
      int old = socket.getSoTimeout();
      socket.setSoTimeout(millis);
      try {
        return read();
      } catch (SocketTimeoutException e) {
        return null;
      } finally {
        if (!socket.isClosed()) {
          socket.setSoTimeout(old);
        }
      }
    }

    static JsonObject sendFrame(String address, String replyAddress, Object body) {
      JsonObject f = new JsonObject().put("type", "send").put("address", address).put("headers", new JsonObject());
      if (replyAddress != null) {
        f.put("replyAddress", replyAddress);
      }
      return f.put("body", body);
    }

    @Override
    public void close() throws IOException {
      socket.close();
    }
  }
}
