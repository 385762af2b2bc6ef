package io.hsmbridge.cli;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Chooses the fixed loopback ports of a local cluster (Hazelcast and Raft ports are listed in every
 * member's configuration, so they are chosen once and kept). Ports come from 20000..29999: below
 * Linux's ephemeral range (32768..), so an outgoing connection of some other program does not take
 * one of them between two starts, and from a random starting point so that two clusters created at
 * the same time rarely race for the same ports.
 */
final class PortPicker {
  static final int FIRST = 20000;
  static final int LAST = 29999;
  private static final SecureRandom RANDOM = new SecureRandom();

  private PortPicker() {}

  /**
   * {@code count} distinct ports that are free on 127.0.0.1 now and not in {@code taken}.
   *
   * @throws CliException when the range has too few free ports
   */
  static List<Integer> pick(int count, Set<Integer> taken) {
    Set<Integer> avoid = new HashSet<>(taken);
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
    if (ports.size() < count) {
      throw new CliException("cannot find " + count + " free ports on 127.0.0.1 in " + FIRST + ".." + LAST);
    }
    return ports;
  }

  static boolean isFree(int port) {
    try (ServerSocket s = new ServerSocket()) {
      s.bind(new InetSocketAddress(InetAddress.getByName(NodeProperties.HOST), port), 1);
      return true;
    } catch (IOException e) {
      return false;
    }
  }
}
