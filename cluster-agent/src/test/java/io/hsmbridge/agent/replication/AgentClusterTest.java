package io.hsmbridge.agent.replication;

import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shared setup of the tests that run three real agents ({@link TestAgents}: tokens, a Raft group, the
 * agent handlers) in a temporary directory: {@link #start} makes them, and they are closed after each test.
 */
abstract class AgentClusterTest {
  @TempDir
  Path dir;
  TestAgents env;

  /** Three agents on tokens labelled {@code tokenPrefix}-1..3. */
  TestAgents start(String tokenPrefix) {
    env = TestAgents.start(dir, tokenPrefix);
    return env;
  }

  @AfterEach
  void closeAgents() {
    if (env != null) {
      env.close();
    }
  }
}
