package io.hsmbridge.cli;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Properties;

/**
 * Stand-ins for NodeMain, started as real processes by {@link LocalNodeTest} to exercise spawning,
 * readiness, failure reporting and stopping without a token or network.
 */
final class FakeNodes {
  private FakeNodes() {}

  private static Properties config(String[] args) throws IOException {
    if (args.length != 2 || !args[0].equals("--config")) {
      throw new IllegalArgumentException("usage: --config FILE");
    }
    Properties p = new Properties();
    try (InputStream in = new FileInputStream(args[1])) {
      p.load(in);
    }
    return p;
  }

  /** Fails like the node does: one "hsmbridge:" line, exit 1. */
  static final class Failing {
    public static void main(String[] args) throws IOException {
      config(args);
      System.out.println("some startup noise");
      System.err.println("hsmbridge: token not found: no token labelled hsmbridge-hsm1");
      System.exit(1);
    }
  }

  /** Dies without the node's error line. */
  static final class Crashing {
    public static void main(String[] args) {
      System.err.println("Exception in thread main: boom");
      System.exit(3);
    }
  }

  /**
   * A member of a local cluster, by its {@code node.role}: writes the agent's or the bridge's
   * endpoint.json, then waits (at most a minute) to be stopped. A file {@code fail} in its state
   * directory makes it fail like the node; a file {@code slow} makes it never ready.
   */
  static final class Member {
    public static void main(String[] args) throws Exception {
      Properties p = config(args);
      Path dir = Path.of(p.getProperty("state.dir"));
      String role = p.getProperty("node.role");
      if (Files.exists(dir.resolve("fail"))) {
        System.out.println("starting " + role);
        System.err.println("hsmbridge: TOKEN_LOGIN_FAILED: login to token failed (CKR_PIN_INCORRECT)");
        System.exit(2);
      }
      if ("agent".equals(role) != (System.getenv("SOFTHSM2_CONF") != null)) {
        System.err.println("hsmbridge: SOFTHSM2_CONF must be set for agents only");
        System.exit(2);
      }
      if (!Files.exists(dir.resolve("slow"))) {
        long pid = ProcessHandle.current().pid();
        write(dir, "agent".equals(role)
            ? "{\"role\":\"agent\",\"hsmId\":\"" + p.getProperty("hsm.id") + "\",\"pid\":" + pid + "}"
            : "{\"role\":\"bridge\",\"host\":\"127.0.0.1\",\"port\":" + p.getProperty("bridge.tcp.port")
                + ",\"pid\":" + pid + "}");
      }
      Thread.sleep(60_000);
    }
  }

  private static void write(Path dir, String endpoint) throws IOException {
    Path tmp = dir.resolve("endpoint.json.tmp");
    Files.writeString(tmp, endpoint);
    Files.move(tmp, dir.resolve("endpoint.json"), StandardCopyOption.ATOMIC_MOVE);
  }

  /** Writes endpoint.json like a ready node, then waits (at most a minute) to be stopped. */
  static final class Ready {
    public static void main(String[] args) throws Exception {
      Properties p = config(args);
      if (System.getenv("SOFTHSM2_CONF") == null) {
        System.err.println("hsmbridge: SOFTHSM2_CONF is not set");
        System.exit(1);
      }
      write(Path.of(p.getProperty("state.dir")), "{\"host\":\"127.0.0.1\",\"port\":7701,\"pid\":"
          + ProcessHandle.current().pid() + ",\"hsmId\":\"" + p.getProperty("hsm.id") + "\"}");
      Thread.sleep(60_000);
    }
  }
}
