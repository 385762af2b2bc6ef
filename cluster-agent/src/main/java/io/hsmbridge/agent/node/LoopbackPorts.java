package io.hsmbridge.agent.node;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Free ports on 127.0.0.1 for listeners that start later: a local cluster's Hazelcast and Raft ports
 * (written into every member's configuration, so chosen once), and the peers of tests.
 *
 * <p>From {@value #FIRST}..{@value #LAST}, below Linux's ephemeral range (32768..): the kernel gives every
 * outgoing connection a local port from that range, so a port found free by binding port 0 can be taken
 * by some connection before its listener binds it. Seen in CI: a Raft peer's port, picked that way, was
 * taken by then, and Ratis ended the test JVM ("Failed to bind", exit status 1). From a random starting
 * point, so that two clusters created at the same time rarely race for the same ports; and a port handed
 * out once is not handed out again by this JVM (a test picks every peer's port before it starts any).
 */
public final class LoopbackPorts {
  public static final int FIRST = 20000;
  public static final int LAST = 29999;
  private static final String HOST = "127.0.0.1";
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Set<Integer> HANDED_OUT = ConcurrentHashMap.newKeySet();

  private LoopbackPorts() {}

  /** One free port (see {@link #pick}). */
  public static int one() {
    return pick(1, Set.of()).get(0);
  }

  /**
   * {@code count} distinct ports that are free on 127.0.0.1 now, not in {@code taken} and not handed out
   * before by this JVM.
   *
   * @throws IllegalStateException when the range has too few free ports
   */
  public static synchronized List<Integer> pick(int count, Set<Integer> taken) {
    Set<Integer> avoid = new HashSet<>(taken);
    avoid.addAll(HANDED_OUT);
    List<Integer> ports = new ArrayList<>(count);
    int span = LAST - FIRST + 1;
    int start = RANDOM.nextInt(span);
    for (int i = 0; i < span && ports.size() < count; i++) {
      int port = FIRST + (start + i) % span;
      if (!avoid.contains(port) && isFree(port)) {
        ports.add(port);
        avoid.add(port);
      }
    }
    if (ports.size() < count && !HANDED_OUT.isEmpty()) {
      HANDED_OUT.clear(); // a long-lived JVM went round the range: those listeners bound long ago
      return pick(count, taken);
    }
    if (ports.size() < count) {
      throw new IllegalStateException("cannot find " + count + " free ports on " + HOST + " in " + FIRST + ".." + LAST);
    }
    HANDED_OUT.addAll(ports);
    return ports;
  }

  /** Whether a listener could bind {@code port} on 127.0.0.1 now. */
  public static boolean isFree(int port) {
    try (ServerSocket s = new ServerSocket()) {
      s.bind(new InetSocketAddress(InetAddress.getByName(HOST), port), 1);
      return true;
    } catch (IOException e) {
      return false;
    }
  }
}
