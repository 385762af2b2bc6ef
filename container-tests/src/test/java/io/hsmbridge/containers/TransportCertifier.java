package io.hsmbridge.containers;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.testcontainers.containers.Container;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.utility.MountableFile;

/**
 * While HSM containers start, certifies each joining HSM's transport key with the kit's CA, as an operator
 * would (and as {@code softhsm-docker/cluster up} does): a joiner's agent writes its request into its state
 * directory and waits for the certificate beside it (ClusterKeyJoin). The request is read out of the container,
 * signed with {@code hsmbridge cluster transport-cert} on the host, and the certificate copied in.
 */
final class TransportCertifier implements AutoCloseable {
  static final String STATE_DIR = "/var/lib/hsmbridge/state";

  private final Path jar;
  private final Path kit;
  private final Map<String, GenericContainer<?>> hsms;
  private final Set<String> certified = ConcurrentHashMap.newKeySet();
  private final Thread thread;
  private volatile boolean stopped;

  /** Starts watching {@code hsms} (by HSM id) until {@link #close()}. */
  TransportCertifier(Path jar, Path kit, Map<String, GenericContainer<?>> hsms) {
    this.jar = jar;
    this.kit = kit;
    this.hsms = hsms;
    this.thread = new Thread(this::run, "transport-certifier");
    thread.setDaemon(true);
    thread.start();
  }

  private void run() {
    while (!stopped) {
      for (Map.Entry<String, GenericContainer<?>> h : hsms.entrySet()) {
        if (!certified.contains(h.getKey())) {
          try {
            certify(h.getKey(), h.getValue());
          } catch (RuntimeException e) {
            // not running yet, or between runs: try again
          }
        }
      }
      try {
        Thread.sleep(500);
      } catch (InterruptedException e) {
        return;
      }
    }
  }

  private void certify(String hsm, GenericContainer<?> c) {
    if (c.getContainerId() == null) {
      return;
    }
    Container.ExecResult request;
    try {
      request = c.execInContainer("cat", STATE_DIR + "/transport-request.pem");
    } catch (IOException e) {
      return;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return;
    }
    String check = clusterKeyCheck();
    if (request.getExitCode() != 0 || request.getStdout().isBlank() || check == null) {
      return; // no request yet, or no HSM holds the cluster key yet (hsm1 makes it as it starts)
    }
    try {
      Path dir = Files.createDirectories(kit.resolve(hsm).resolve("transport"));
      Path requestFile = dir.resolve("transport-request.pem");
      Path certificate = dir.resolve("transport-certificate.pem");
      Files.writeString(requestFile, request.getStdout(), StandardCharsets.US_ASCII);
      ContainerCluster.runCli(jar, "cluster", "transport-cert", "--hsm-id", hsm, "--request", requestFile.toString(),
          "--out", certificate.toString(), "--cluster-key-check", check, "--ca-dir", kit.resolve("ca").toString());
      c.copyFileToContainer(MountableFile.forHostPath(certificate, 0644), STATE_DIR + "/transport-certificate.pem");
      certified.add(hsm);
      Report.note(hsm + ": transport key certified by the kit's CA (" + List.of(requestFile.getFileName(),
          certificate.getFileName()) + " in " + dir + ")");
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** The cluster key's check value, as an HSM container that holds the key wrote it; null when none has yet. */
  private String clusterKeyCheck() {
    for (GenericContainer<?> c : hsms.values()) {
      try {
        if (c.getContainerId() != null) {
          Container.ExecResult r = c.execInContainer("cat", STATE_DIR + "/cluster-key-check");
          if (r.getExitCode() == 0 && !r.getStdout().isBlank()) {
            return r.getStdout().trim();
          }
        }
      } catch (IOException | RuntimeException e) {
        // not running: another may hold it
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return null;
      }
    }
    return null;
  }

  /** The HSMs whose transport key this certified. */
  Set<String> certified() {
    return Set.copyOf(certified);
  }

  @Override
  public void close() {
    stopped = true;
    thread.interrupt();
  }
}
