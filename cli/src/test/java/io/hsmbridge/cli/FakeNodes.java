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

  /** Writes endpoint.json like a ready node, then waits (at most a minute) to be stopped. */
  static final class Ready {
    public static void main(String[] args) throws Exception {
      Properties p = config(args);
      if (System.getenv("SOFTHSM2_CONF") == null) {
        System.err.println("hsmbridge: SOFTHSM2_CONF is not set");
        System.exit(1);
      }
      Path dir = Path.of(p.getProperty("state.dir"));
      Path tmp = dir.resolve("endpoint.json.tmp");
      Files.writeString(tmp, "{\"host\":\"127.0.0.1\",\"port\":7701,\"pid\":" + ProcessHandle.current().pid()
          + ",\"hsmId\":\"" + p.getProperty("hsm.id") + "\"}");
      Files.move(tmp, dir.resolve("endpoint.json"), StandardCopyOption.ATOMIC_MOVE);
      Thread.sleep(60_000);
    }
  }
}
