package io.hsmbridge.agent.membership;

import io.vertx.core.buffer.Buffer;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.util.logging.Level;
import java.util.logging.Logger;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLSocket;

/**
 * One other member's voice, as heard here: an accepted connection that must finish a mutual-TLS
 * handshake (a cluster-CA certificate of a member kind, checked by the trust manager) within
 * {@link CertifiedClusterManager#HANDSHAKE_MS}, then speaks for exactly one node id. Each state it sends
 * is applied and acknowledged; silence for {@link CertifiedClusterManager#SILENCE_MS}, a LEAVE, a closed
 * connection or a malformed frame ends the link, and the node it spoke for leaves the view.
 */
final class InboundLink implements Runnable {
  private static final Logger LOG = Logger.getLogger(InboundLink.class.getName());

  private final CertifiedClusterManager manager;
  private final SSLSocket socket;
  private final String remote;
  private volatile String subject;
  /** The member's name when its certificate is an HSM host's ({@code OU=agent}): its HSM id; else null. */
  private volatile String agentName;
  /** The kind of the member's certificate (null before the handshake). */
  private volatile ClusterCa.MemberKind kind;
  /** The node id this link speaks for, bound by its first state; only the event thread writes it. */
  private String nodeId;

  InboundLink(CertifiedClusterManager manager, SSLSocket socket) {
    this.manager = manager;
    this.socket = socket;
    this.remote = String.valueOf(socket.getRemoteSocketAddress());
  }

  /** The certificate subject the other member authenticated with (null before the handshake). */
  String subject() {
    return subject;
  }

  String agentName() {
    return agentName;
  }

  ClusterCa.MemberKind kind() {
    return kind;
  }

  String nodeId() {
    return nodeId;
  }

  void bind(String id) {
    this.nodeId = id;
  }

  @Override
  public void run() {
    try {
      socket.setSoTimeout(CertifiedClusterManager.HANDSHAKE_MS);
      socket.setEnabledProtocols(CertifiedClusterManager.TLS_PROTOCOLS);
      socket.setNeedClientAuth(true);
      socket.startHandshake();
      subject = socket.getSession().getPeerPrincipal().getName();
      java.security.cert.Certificate[] chain = socket.getSession().getPeerCertificates();
      if (chain.length > 0 && chain[0] instanceof java.security.cert.X509Certificate leaf) {
        kind = ClusterCa.MemberKind.of(leaf);
        if (kind == ClusterCa.MemberKind.AGENT) {
          agentName = ClusterCa.memberName(leaf);
        }
      }
      manager.handshakeDone(this);
      socket.setSoTimeout(CertifiedClusterManager.SILENCE_MS);
      DataInputStream in = new DataInputStream(new BufferedInputStream(socket.getInputStream()));
      DataOutputStream out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream()));
      while (true) {
        MemberFrames.Frame frame = MemberFrames.read(in);
        if (frame.type() == MemberFrames.LEAVE) {
          LOG.fine(() -> "membership: " + remote + " said goodbye");
          return;
        }
        if (frame.type() != MemberFrames.STATE) {
          throw new java.net.ProtocolException("a member sends states, not frame type " + frame.type());
        }
        MemberState state = MemberState.decode(Buffer.buffer(frame.body()));
        String refusal = manager.apply(this, state);
        if (refusal != null) {
          // Rate-limited: a member whose state is refused reconnects and sends it again at once.
          manager.reportRefusal(remote + " (" + subject + ")", "its state: " + refusal);
          return;
        }
        MemberFrames.writeAck(out, state.version());
      }
    } catch (SSLException e) {
      // The refusal of a rogue: a member would have the right certificate. Its subject is not logged
      // (it may be anything the rogue chose); the trust manager's reason is.
      manager.reportRefusal(remote, e.getMessage());
    } catch (SocketTimeoutException e) {
      LOG.info("membership: " + (subject == null ? remote + " did not finish its handshake" : "member at " + remote
          + " silent for " + CertifiedClusterManager.SILENCE_MS + " ms") + "; disconnected");
    } catch (EOFException e) {
      LOG.fine(() -> "membership: " + remote + " closed its link");
    } catch (IOException | IllegalArgumentException e) {
      LOG.log(subject == null || !manager.isActive() ? Level.FINE : Level.WARNING, "membership: link from " + remote + " ended: "
          + e.getMessage());
    } finally {
      manager.linkClosed(this); // first: closing a TLS socket can wait for the other side's close_notify
      close();
    }
  }

  void close() {
    try {
      socket.setSoTimeout(200); // bounds the wait for the other side's close_notify
      socket.close();
    } catch (IOException ignored) {
      // closing
    }
  }
}
