package io.hsmbridge.cli;

import io.vertx.core.json.JsonObject;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * An attacker's connection to the client endpoint: TLS that trusts any server (an attacker has no reason
 * to check), or plain TCP, from a chosen local loopback address; writes whatever bytes it likes and reads
 * frames with a deadline. Test code only.
 */
final class RawEndpoint implements AutoCloseable {
  private final Socket socket;
  private final OutputStream out;
  private final DataInputStream in;

  private RawEndpoint(Socket socket) throws IOException {
    this.socket = socket;
    this.out = socket.getOutputStream();
    this.in = new DataInputStream(socket.getInputStream());
  }

  /** A TLS connection from {@code from} (e.g. 127.0.0.2), handshake done. */
  static RawEndpoint tls(String from, int port) throws Exception {
    Socket plain = plainSocket(from, port);
    SSLContext ctx = SSLContext.getInstance("TLSv1.3");
    ctx.init(null, new TrustManager[] {new TrustAnything()}, new SecureRandom());
    SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(plain, "127.0.0.1", port, true);
    s.setSoTimeout(10_000);
    s.startHandshake();
    return new RawEndpoint(s);
  }

  /** A plain TCP connection from {@code from}, no TLS. */
  static RawEndpoint plain(String from, int port) throws IOException {
    return new RawEndpoint(plainSocket(from, port));
  }

  static Socket plainSocket(String from, int port) throws IOException {
    Socket s = new Socket();
    s.bind(new InetSocketAddress(InetAddress.getByName(from), 0));
    s.connect(new InetSocketAddress("127.0.0.1", port), 5000);
    s.setSoTimeout(10_000);
    return s;
  }

  void write(byte[] bytes) throws IOException {
    out.write(bytes);
    out.flush();
  }

  /** A length header that says {@code length}. */
  void header(long length) throws IOException {
    write(new byte[] {(byte) (length >>> 24), (byte) (length >>> 16), (byte) (length >>> 8), (byte) length});
  }

  void frame(JsonObject frame) throws IOException {
    write(encode(frame));
  }

  static byte[] encode(JsonObject frame) {
    byte[] json = frame.encode().getBytes(StandardCharsets.UTF_8);
    byte[] b = new byte[4 + json.length];
    b[0] = (byte) (json.length >>> 24);
    b[1] = (byte) (json.length >>> 16);
    b[2] = (byte) (json.length >>> 8);
    b[3] = (byte) json.length;
    System.arraycopy(json, 0, b, 4, json.length);
    return b;
  }

  /** The next frame; null when the server closed the connection; throws SocketTimeoutException after {@code ms}. */
  JsonObject read(int ms) throws IOException {
    socket.setSoTimeout(ms);
    int b0 = in.read();
    if (b0 < 0) {
      return null;
    }
    int n = (b0 << 24) | (in.readUnsignedByte() << 16) | (in.readUnsignedByte() << 8) | in.readUnsignedByte();
    byte[] body = new byte[n];
    in.readFully(body);
    return new JsonObject(new String(body, StandardCharsets.UTF_8));
  }

  /**
   * Waits until the server closes the connection, skipping frames it sends first.
   *
   * @return true when it closed within {@code ms}
   */
  boolean closedWithin(long ms) throws IOException {
    long deadline = System.currentTimeMillis() + ms;
    while (true) {
      long left = deadline - System.currentTimeMillis();
      if (left <= 0) {
        return false;
      }
      try {
        if (read((int) left) == null) {
          return true;
        }
      } catch (SocketTimeoutException e) {
        return false;
      } catch (IOException e) {
        return true; // reset, or the TLS layer saw the close
      }
    }
  }

  InputStream input() {
    return in;
  }

  @Override
  public void close() {
    try {
      socket.close();
    } catch (IOException ignored) {
      // the server may have closed it already
    }
  }

  private static final class TrustAnything implements X509TrustManager {
    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) {}

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) {}

    @Override
    public X509Certificate[] getAcceptedIssuers() {
      return new X509Certificate[0];
    }
  }
}
