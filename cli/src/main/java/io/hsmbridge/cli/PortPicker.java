package io.hsmbridge.cli;

import io.hsmbridge.agent.node.LoopbackPorts;
import java.util.List;
import java.util.Set;

/** The fixed loopback ports of a local cluster: {@link LoopbackPorts}, with the CLI's error. */
final class PortPicker {
  static final int FIRST = LoopbackPorts.FIRST;
  static final int LAST = LoopbackPorts.LAST;

  private PortPicker() {}

  /**
   * {@code count} distinct ports that are free on 127.0.0.1 now and not in {@code taken}.
   *
   * @throws CliException when the range has too few free ports
   */
  static List<Integer> pick(int count, Set<Integer> taken) {
    try {
      return LoopbackPorts.pick(count, taken);
    } catch (IllegalStateException e) {
      throw new CliException(e.getMessage());
    }
  }
}
