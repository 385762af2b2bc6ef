package io.hsmbridge.client;

import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/**
 * Base of the transport tests: a loopback server socket standing in for the TCP event-bus bridge, and a
 * {@link BridgeClient} connected to it. Tests read the client's frames from {@code peerIn} and answer on
 * {@code peerOut}.
 */
abstract class LoopbackPeerTest {
  static final long WAIT_S = 10;

  ServerSocket server;
  Socket peer;
  DataInputStream peerIn;
  OutputStream peerOut;
  BridgeClient client;

  @BeforeEach
  void openServer() throws IOException {
    server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
  }

  @AfterEach
  void closeAll() throws IOException {
    if (client != null) {
      client.close();
    }
    if (peer != null) {
      peer.close();
    }
    server.close();
  }

  void connect(Duration timeout) throws IOException {
    client = BridgeClient.connect("127.0.0.1", server.getLocalPort(), timeout);
    peer = server.accept();
    peer.setSoTimeout((int) TimeUnit.SECONDS.toMillis(WAIT_S * 3));
    peerIn = new DataInputStream(new BufferedInputStream(peer.getInputStream()));
    peerOut = peer.getOutputStream();
  }
}
