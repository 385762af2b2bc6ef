package io.hsmbridge.cli;

import io.hsmbridge.client.Hsm;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import picocli.CommandLine.Command;

/**
 * {@code demo}: starts a throwaway node in a fresh temporary data directory (never the user's), runs
 * {@link DemoTour}, then stops the node and deletes the directory, whatever happened.
 */
@Command(name = "demo",
    description = "Self-check tour on a throwaway node in a fresh temp directory: every key spec, every"
        + " operation, signatures checked with the JDK. Exit 0 only when every check passes.")
final class DemoCommand extends CliCommand {

  @Override
  protected int execute() throws Exception {
    PrintStream out = out();
    Path library = NodeLayout.findLibrary(cli().env());
    Path dir = Files.createTempDirectory("hsmbridge-demo-");
    Home home = new Home(dir);
    LocalNode node = new LocalNode(home.hsm(Home.FIRST_HSM));
    // Ctrl-C skips 'finally' but runs shutdown hooks: the detached node must not outlive the demo.
    Thread hook = new Thread(() -> cleanUp(node, dir, out), "hsmbridge-demo-cleanup");
    Runtime.getRuntime().addShutdownHook(hook);
    DemoTour tour;
    try {
      out.println("starting a throwaway node in " + dir + " ...");
      out.flush();
      NodeLayout.prepareStandalone(home, 0, library);
      Endpoint ep = node.start();
      out.println("node up at " + ep.hostPort() + " (pid " + ep.pid() + ")");
      try (Hsm hsm = Hsm.connect(ep.host(), ep.port())) {
        tour = new DemoTour(hsm, out);
        tour.run();
      }
    } finally {
      cleanUp(node, dir, out);
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException shuttingDown) {
        // the hook runs anyway; cleanUp is idempotent
      }
    }
    int total = tour.passed() + tour.failed();
    if (tour.failed() == 0) {
      out.println("demo: all " + total + " checks passed");
      return ExitCodes.OK;
    }
    out.println("demo: " + tour.failed() + " of " + total + " checks FAILED");
    return ExitCodes.FAILURE;
  }

  /** Stops the node and deletes the directory; safe to call twice and from a shutdown hook. */
  private static synchronized void cleanUp(LocalNode node, Path dir, PrintStream out) {
    try {
      if (node.stop().isPresent()) {
        out.println("node stopped");
      }
    } catch (IOException | RuntimeException e) {
      out.println("FAIL stop the demo node: " + e.getMessage());
    }
    try {
      deleteTree(dir);
    } catch (IOException e) {
      out.println("warning: could not delete " + dir + ": " + e.getMessage());
    }
  }

  static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    Files.walkFileTree(dir, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
        Files.delete(file);
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
        Files.delete(d);
        return FileVisitResult.CONTINUE;
      }
    });
  }
}
