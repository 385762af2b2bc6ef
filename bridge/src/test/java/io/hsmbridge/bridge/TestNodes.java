package io.hsmbridge.bridge;

import io.hsmbridge.pkcs11.IntegrityScan;

import io.hsmbridge.pkcs11.SoftHsmFixture;
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
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/** Shared helpers of the bridge tests: node properties files, SoftHSM2 token files, raw TCP frames. */
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

  /** The properties of a node serving {@code label}, TCP port 0, endpoint.json in {@code stateDir}. */
  static Map<String, String> nodeProperties(String hsmId, String label, Path userPin, Path soPin, Path stateDir) {
    Map<String, String> p = new LinkedHashMap<>();
    p.put("hsm.id", hsmId);
    p.put("pkcs11.library", SoftHsmFixture.library().toString());
    p.put("token.label", label);
    p.put("pin.user.file", userPin.toString());
    p.put("pin.so.file", soPin.toString());
    p.put("token.initialize", "true");
    p.put("bridge.tcp.host", "127.0.0.1");
    p.put("bridge.tcp.port", "0");
    p.put("bridge.tls", "false"); // a standalone node on loopback: plaintext, explicitly
    p.put("state.dir", stateDir.toString());
    return p;
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

  /** A bare TCP connection to the event-bus bridge speaking raw frames: nothing of the client SDK. */
  static final class RawConnection implements AutoCloseable {
    private final Socket socket;
    private final OutputStream out;
    private final DataInputStream in;

    RawConnection(int port) throws IOException {
      socket = new Socket();
      socket.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
      socket.setSoTimeout(15_000);
      out = socket.getOutputStream();
      in = new DataInputStream(socket.getInputStream());
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
