package io.hsmbridge.agent.membership;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.util.logging.Level;
import java.util.logging.Logger;
import javax.net.ssl.SSLSocket;

/**
 * This member's voice towards one other member: a thread that dials the other's membership port (mutual
 * TLS), sends this member's whole state at once and then every heartbeat or change, and reads the
 * acknowledgements. A lost connection is dialled again (100 ms doubling to 2 s); on leave it says so.
 */
final class OutboundLink implements Runnable {
  private static final Logger LOG = Logger.getLogger(OutboundLink.class.getName());
  private static final long MAX_BACKOFF_MS = 2_000;

  private final CertifiedClusterManager manager;
  private final String address;
  private final Object wakeup = new Object();
  private volatile boolean running = true;
  private volatile SSLSocket socket;
  private volatile DataOutputStream out;
  /** The highest version the other member applied on the current connection; -1 before its first ack. */
  private volatile long acked = -1;
  private volatile boolean failedOnce;
  /** Set when the other member was heard from again: the next dial is now, not after the backoff. */
  private volatile boolean dialNow;
  private boolean warned;

  OutboundLink(CertifiedClusterManager manager, String address) {
    this.manager = manager;
    this.address = address;
  }

  /** Connected and handshaken: acknowledgements from it are awaited by writes. */
  boolean established() {
    SSLSocket s = socket;
    return s != null && !s.isClosed();
  }

  long acked() {
    return acked;
  }

  /** At least one attempt to reach the other member failed (it is not up, not reachable, or this member). */
  boolean failedOnce() {
    return failedOnce;
  }

  /**
   * The other member is back (its own link reached this member): dial it now instead of after the backoff,
   * which has grown to {@value #MAX_BACKOFF_MS} ms while it was away. Without this, a restarted member's
   * join waited for that backoff: it counts as joined once every member has dialled it back.
   */
  void dialNow() {
    if (!established()) {
      dialNow = true;
      wake();
    }
  }

  /** A new state to send now rather than at the next heartbeat. */
  void wake() {
    synchronized (wakeup) {
      wakeup.notifyAll();
    }
  }

  @Override
  public void run() {
    long backoff = 100;
    while (running && manager.isActive()) {
      InetSocketAddress target = resolve();
      if (target != null && manager.isOwnAddress(target)) {
        LOG.fine(() -> "membership: " + address + " is this member; not dialled");
        failedOnce = true; // nothing to wait for when joining
        return;
      }
      if (target != null && !manager.claimTarget(target, this)) {
        LOG.fine(() -> "membership: " + address + " is dialled under another name already; not dialled twice");
        failedOnce = true;
        return;
      }
      try {
        if (target == null) {
          throw new IOException("cannot resolve " + address);
        }
        connectAndTalk(target);
        backoff = 100;
      } catch (IOException | RuntimeException e) {
        failedOnce = true;
        if (running && !warned) {
          warned = true;
          LOG.info("membership: cannot reach member " + address + " (" + e.getMessage() + "); retrying");
        } else {
          LOG.log(Level.FINE, "membership link to " + address + " lost", e);
        }
      } finally {
        closeSocket();
        if (target != null) {
          manager.releaseTarget(target, this);
        }
      }
      sleep(backoff);
      backoff = dialNow ? 100 : Math.min(backoff * 2, MAX_BACKOFF_MS);
      dialNow = false;
    }
  }

  private void connectAndTalk(InetSocketAddress target) throws IOException {
    SSLSocket s = (SSLSocket) manager.tls().getSocketFactory().createSocket();
    s.connect(target, CertifiedClusterManager.CONNECT_MS);
    if (s.getLocalPort() == s.getPort() && s.getLocalAddress().equals(s.getInetAddress())) {
      // TCP "simultaneous open" with itself: dialling a port nobody listens on yet from the same port (the
      // kernel may pick it as the ephemeral port on loopback) connects the socket to itself, and holds the
      // port the member is about to bind (seen: ClusterTransportTest, "Address already in use").
      s.close();
      throw new IOException("connected to itself on port " + target.getPort() + " (nobody listens there yet)");
    }
    s.setSoTimeout(CertifiedClusterManager.SILENCE_MS);
    s.setTcpNoDelay(true);
    s.setEnabledProtocols(CertifiedClusterManager.TLS_PROTOCOLS);
    s.startHandshake();
    DataOutputStream o = new DataOutputStream(new BufferedOutputStream(s.getOutputStream()));
    DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream()));
    acked = -1;
    out = o;
    socket = s;
    if (warned) {
      warned = false;
      LOG.info("membership: reached member " + address);
    }
    Thread acks = new Thread(() -> readAcks(s, in), "membership-acks-" + address);
    acks.setDaemon(true);
    acks.start();
    while (running && !s.isClosed()) {
      MemberState state = manager.published();
      MemberFrames.write(o, MemberFrames.STATE, state.encode().getBytes());
      synchronized (wakeup) {
        if (manager.published().version() == state.version() && running) {
          try {
            wakeup.wait(CertifiedClusterManager.HEARTBEAT_MS);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
          }
        }
      }
    }
  }

  private void readAcks(SSLSocket s, DataInputStream in) {
    try {
      while (!s.isClosed()) {
        acked = MemberFrames.ackVersion(MemberFrames.read(in));
        manager.acknowledged();
      }
    } catch (SocketTimeoutException e) {
      LOG.fine(() -> "membership: member " + address + " stopped acknowledging");
    } catch (IOException e) {
      LOG.log(Level.FINE, "membership: acknowledgements from " + address + " ended", e);
    } finally {
      closeQuietly(s);
      wake();
    }
  }

  /** Says goodbye (best effort) and stops dialling. */
  void leave() {
    running = false;
    DataOutputStream o = out;
    if (o != null && established()) {
      try {
        MemberFrames.write(o, MemberFrames.LEAVE, new byte[0]);
      } catch (IOException ignored) {
        // the other side is gone already
      }
    }
    closeSocket();
    wake();
  }

  private void closeSocket() {
    SSLSocket s = socket;
    socket = null;
    acked = -1;
    if (s != null) {
      closeQuietly(s);
    }
  }

  private static void closeQuietly(SSLSocket s) {
    try {
      s.setSoTimeout(200); // bounds the wait for the other side's close_notify
      s.close();
    } catch (IOException ignored) {
      // closing
    }
  }

  private InetSocketAddress resolve() {
    int colon = address.lastIndexOf(':');
    String host = address.substring(0, colon);
    if (host.startsWith("[")) {
      host = host.substring(1, host.length() - 1);
    }
    InetSocketAddress a = new InetSocketAddress(host, Integer.parseInt(address.substring(colon + 1)));
    return a.isUnresolved() ? null : a;
  }

  private void sleep(long ms) {
    synchronized (wakeup) {
      try {
        if (running && !dialNow) {
          wakeup.wait(ms);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        running = false;
      }
    }
  }
}
