package io.hsmbridge.cli;

import io.hsmbridge.client.BridgeClient;
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
 * {@code demo}: runs {@link DemoTour} on a throwaway one-HSM cluster ({@link ThrowawayCluster}: a fresh
 * temporary data directory, never the user's), through the path a deployment uses: TLS to the front door
 * in the HSM's agent process, as a logged-in crypto user. The cluster is stopped and its directory deleted
 * whatever happened.
 */
@Command(name = "demo",
    description = "Self-check tour on a throwaway one-HSM cluster in a fresh temp directory, through its front"
        + " door over TLS as a crypto user: every key spec, every operation, signatures checked with the JDK."
        + " Exit 0 only when every check passes.")
final class DemoCommand extends CliCommand {

  @Override
  protected int execute() throws Exception {
    PrintStream out = out();
    Path library = NodeLayout.findLibrary(cli().env());
    out.println("starting a throwaway one-HSM cluster in a temporary directory ...");
    out.flush();
    DemoTour tour;
    try (ThrowawayCluster cluster = ThrowawayCluster.start(1, library, out, false)) {
      Endpoint ep = cluster.frontDoor(cluster.hsmIds().get(0));
      out.printf(java.util.Locale.ROOT, "cluster up in %.1f s in %s; front door of %s at %s (TLS); logged in as"
          + " crypto user '%s'%n", cluster.startSeconds(), cluster.dir(), ep.hsmId(), ep.hostPort(),
          ThrowawayUsers.CRYPTO_USER);
      out.flush();
      try (Hsm hsm = Hsm.owning(ep.connect(BridgeClient.DEFAULT_TIMEOUT))) {
        hsm.useSession(cluster.logins().cryptoUser().token());
        tour = new DemoTour(hsm, out);
        tour.run();
      }
      out.println("stopping the cluster and deleting its directory");
    }
    int total = tour.passed() + tour.failed();
    if (tour.failed() == 0) {
      out.println("demo: all " + total + " checks passed");
      return ExitCodes.OK;
    }
    out.println("demo: " + tour.failed() + " of " + total + " checks FAILED");
    return ExitCodes.FAILURE;
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
