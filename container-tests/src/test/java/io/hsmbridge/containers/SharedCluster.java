package io.hsmbridge.containers;

import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;
import org.testcontainers.DockerClientFactory;

/**
 * The one {@link ContainerCluster} of a test run, shared by every test class that extends with this
 * (started by the first, closed when the whole run ends: it lives in the root context's store), and the
 * rule for machines without a container engine.
 *
 * <p>No engine reachable (no {@code DOCKER_HOST}, no Docker socket): the classes are skipped with a message
 * that says how to run them, unless the environment has {@code CI=true}, where they run and fail: CI must
 * not pass without them. {@code -Dcontainers.skip=true} skips them on purpose (never in CI).
 */
final class SharedCluster implements ExecutionCondition, ParameterResolver {
  private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(SharedCluster.class);
  private static final AtomicBoolean TOLD = new AtomicBoolean();

  static boolean inCi() {
    return "true".equalsIgnoreCase(System.getenv("CI"));
  }

  @Override
  public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
    if (inCi()) {
      return ConditionEvaluationResult.enabled("CI=true: the container tests always run");
    }
    if (Boolean.getBoolean("containers.skip")) {
      return skipped("-Dcontainers.skip=true");
    }
    if (!DockerClientFactory.instance().isDockerAvailable()) {
      return skipped("no container engine reachable (DOCKER_HOST=" + System.getenv("DOCKER_HOST") + ")");
    }
    return ConditionEvaluationResult.enabled("a container engine is reachable");
  }

  private static ConditionEvaluationResult skipped(String why) {
    String message = "container tests skipped: " + why + ". To run them: .ci/run does everything; or start podman's"
        + " API socket (podman system service --time=0 unix:///tmp/podman.sock &) and export"
        + " DOCKER_HOST=unix:///tmp/podman.sock (README.md, 'Tests and CI'). With CI=true they fail instead.";
    if (TOLD.compareAndSet(false, true)) {
      System.out.println("[containers] " + message);
    }
    return ConditionEvaluationResult.disabled(message);
  }

  @Override
  public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
    return parameter.getParameter().getType() == ContainerCluster.class;
  }

  @Override
  public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
    // A failed start is kept too: the next class gets the same failure instead of a second 5-minute attempt.
    Holder h = context.getRoot().getStore(NAMESPACE).getOrComputeIfAbsent(Holder.class, k -> Holder.start(), Holder.class);
    if (h.failure != null) {
      throw new IllegalStateException("the container cluster did not start: " + h.failure.getMessage(), h.failure);
    }
    return h.cluster;
  }

  /** Closed by JUnit when the root context closes (the end of the run). */
  private record Holder(ContainerCluster cluster, RuntimeException failure) implements AutoCloseable {
    static Holder start() {
      try {
        return new Holder(ContainerCluster.start(), null);
      } catch (RuntimeException e) {
        Report.note("the cluster did not start: " + e);
        Report.write();
        return new Holder(null, e);
      }
    }

    @Override
    public void close() {
      if (cluster != null) {
        cluster.close();
      }
    }
  }
}
