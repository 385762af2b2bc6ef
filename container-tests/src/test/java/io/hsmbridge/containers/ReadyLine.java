package io.hsmbridge.containers;

import com.github.dockerjava.api.command.InspectContainerResponse;
import java.time.Duration;
import java.util.List;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.ContainerLaunchException;
import org.testcontainers.containers.wait.strategy.AbstractWaitStrategy;

/**
 * Waits for the entrypoint's ready line ({@code hsmbridge-container: ready <role> <id>}), and gives up at
 * once when the container exits first, with the end of its log in the message (Testcontainers' own
 * log-message strategy waits out its whole timeout for a container that died, and removes the container,
 * log included, afterwards).
 */
final class ReadyLine extends AbstractWaitStrategy {
  private final String line;

  ReadyLine(String role, String id, Duration timeout) {
    this.line = ContainerCluster.READY + role + " " + id;
    withStartupTimeout(timeout);
  }

  @Override
  protected void waitUntilReady() {
    String id = waitStrategyTarget.getContainerId();
    long deadline = System.nanoTime() + startupTimeout.toNanos();
    while (true) {
      String logs = waitStrategyTarget.getLogs();
      if (logs.lines().anyMatch(l -> l.strip().equals(line))) {
        return;
      }
      InspectContainerResponse.ContainerState state =
          DockerClientFactory.instance().client().inspectContainerCmd(id).exec().getState();
      if (!Boolean.TRUE.equals(state.getRunning())) {
        throw new ContainerLaunchException("the container exited (code " + state.getExitCodeLong() + ") before '" + line
            + "'; its log ends:\n" + tail(logs));
      }
      if (System.nanoTime() > deadline) {
        throw new ContainerLaunchException("no '" + line + "' within " + startupTimeout + "; the log ends:\n" + tail(logs));
      }
      ContainerCluster.sleep(500);
    }
  }

  private static String tail(String logs) {
    List<String> lines = logs.lines().toList();
    return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
  }
}
