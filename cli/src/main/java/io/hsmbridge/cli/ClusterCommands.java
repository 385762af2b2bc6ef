package io.hsmbridge.cli;

import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.HsmBridgeException;
import io.vertx.core.json.JsonObject;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Optional;
import java.util.OptionalLong;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code up}, {@code down} and {@code status} of the local one-node cluster. */
final class ClusterCommands {
  static final int DEFAULT_PORT = 7701;

  private ClusterCommands() {}

  @Command(name = "up", description = "Start the local cluster (initialises the SoftHSM2 token on first use).")
  static final class Up extends CliCommand {
    @Option(names = "--port", paramLabel = "N", defaultValue = "" + DEFAULT_PORT,
        description = "TCP bridge port on 127.0.0.1 (default: ${DEFAULT-VALUE}; 0 = any free port).")
    int port;

    @Override
    protected int execute() throws Exception {
      if (port < 0 || port > 65535) {
        throw usage("--port must be 0..65535, got " + port);
      }
      Home home = home();
      LocalNode node = new LocalNode(home);
      OptionalLong pid = node.runningPid();
      if (pid.isPresent()) {
        Optional<Endpoint> ep = node.runningEndpoint();
        out().println("hsmbridge is already running (pid " + pid.getAsLong() + ")"
            + ep.map(e -> " at " + e.hostPort()).orElse(", not ready yet") + "; data dir " + home.dir());
        return ExitCodes.OK;
      }
      Path library = NodeLayout.findLibrary(cli().env());
      out().println("starting hsmbridge (data dir " + home.dir() + ") ...");
      out().flush();
      Endpoint ep = node.start(port, library);
      JsonObject health;
      try (Hsm hsm = Hsm.connect(ep.host(), ep.port())) {
        health = hsm.health();
      } catch (HsmBridgeException e) {
        throw new CliException("the node started (pid " + ep.pid() + ") but does not answer: " + e.getMessage());
      }
      printUp(out(), ep, health, home, root().home != null);
      return ExitCodes.OK;
    }

    private static void printUp(PrintStream out, Endpoint ep, JsonObject health, Home home, boolean explicitHome) {
      String h = explicitHome ? " --home " + home.dir() : "";
      out.println("hsmbridge is up (pid " + ep.pid() + ")");
      out.println("  endpoint   " + ep.hostPort());
      out.println("  hsm        " + health.getValue("hsmId"));
      out.println("  token      " + health.getValue("token"));
      out.println("  data dir   " + home.dir());
      out.println("  node log   " + home.nodeLog());
      out.println();
      out.println("Try next:");
      out.println("  ./hsmbridge" + h + " key generate --spec AES_256 --label my-key");
      out.println("  ./hsmbridge" + h + " encrypt --key <keyId> --text 'hello'");
      out.println("  ./hsmbridge" + h + " key list");
      out.println("  ./hsmbridge" + h + " status");
      out.println("  ./hsmbridge demo          (a self-check on a throwaway node)");
      out.println("  ./hsmbridge" + h + " down");
    }
  }

  @Command(name = "down", description = "Stop the local cluster (SIGTERM, then SIGKILL after 20 s).")
  static final class Down extends CliCommand {
    @Override
    protected int execute() throws Exception {
      OptionalLong stopped = new LocalNode(home()).stop();
      out().println(stopped.isPresent()
          ? "stopped hsmbridge (pid " + stopped.getAsLong() + ")"
          : "hsmbridge is not running (data dir " + home().dir() + ")");
      return ExitCodes.OK;
    }
  }

  @Command(name = "status", description = "Whether the local cluster runs, and its health. Exit code 3 when not running.")
  static final class Status extends CliCommand {
    @Override
    protected int execute() {
      Home home = home();
      LocalNode node = new LocalNode(home);
      OptionalLong pid = node.runningPid();
      Optional<Endpoint> ep = node.runningEndpoint();
      if (pid.isEmpty()) {
        out().println("hsmbridge is not running (data dir " + home.dir() + ")");
        return ExitCodes.NOT_RUNNING;
      }
      if (ep.isEmpty()) {
        out().println("hsmbridge is starting (pid " + pid.getAsLong() + "), not ready yet");
        return ExitCodes.OK;
      }
      JsonObject h;
      try (Hsm hsm = Hsm.connect(ep.get().host(), ep.get().port())) {
        h = hsm.health();
      } catch (HsmBridgeException e) {
        throw new CliException("hsmbridge runs (pid " + pid.getAsLong() + ") but does not answer: " + e.getMessage());
      }
      PrintStream out = out();
      out.println("hsmbridge is running (pid " + pid.getAsLong() + ")");
      out.println("  endpoint   " + ep.get().hostPort());
      out.println("  hsm        " + h.getValue("hsmId") + " (" + h.getValue("status") + ")");
      out.println("  token      " + h.getValue("token") + ", serial " + h.getValue("serial")
          + (h.getValue("manufacturer") == null ? "" : ", " + h.getValue("manufacturer")));
      out.println("  objects    " + h.getValue("objects"));
      out.println("  sessions   " + h.getValue("sessionsInUse") + " in use / " + h.getValue("sessionsMax") + " max");
      out.println("  data dir   " + home.dir());
      return ExitCodes.OK;
    }
  }
}
