package io.hsmbridge.cli;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Starts, finds and stops the local node process of one data directory. The node runs detached
 * (its own session when {@code setsid} exists) with output appended to {@code node.log}; it writes
 * {@code endpoint.json} when it is ready to serve.
 */
final class LocalNode {
  static final String NODE_MAIN = "io.hsmbridge.bridge.NodeMain";
  static final Duration READY_TIMEOUT = Duration.ofSeconds(90);
  static final Duration STOP_TIMEOUT = Duration.ofSeconds(20);
  private static final Duration FORCE_TIMEOUT = Duration.ofSeconds(10);
  private static final long POLL_MS = 200;
  private static final String NODE_ERROR_PREFIX = "hsmbridge:";

  private final Home home;
  private final String mainClass;
  private final Duration readyTimeout;

  LocalNode(Home home) {
    this(home, NODE_MAIN, READY_TIMEOUT);
  }

  /** For tests: another main class and timeout. */
  LocalNode(Home home, String mainClass, Duration readyTimeout) {
    this.home = home;
    this.mainClass = mainClass;
    this.readyTimeout = readyTimeout;
  }

  Home home() {
    return home;
  }

  /** The pid of this home's live node process, if any. */
  OptionalLong runningPid() {
    OptionalLong fromFile = readPid();
    if (fromFile.isPresent() && isNode(fromFile.getAsLong())) {
      return fromFile;
    }
    Optional<Endpoint> ep = Endpoint.read(home.endpointJson());
    if (ep.isPresent() && ep.get().pid() > 0 && isNode(ep.get().pid())) {
      return OptionalLong.of(ep.get().pid());
    }
    return OptionalLong.empty();
  }

  /** The endpoint of a running, ready node, if any; a stale endpoint file counts as not running. */
  Optional<Endpoint> runningEndpoint() {
    Optional<Endpoint> ep = Endpoint.read(home.endpointJson());
    if (ep.isEmpty()) {
      return ep;
    }
    long pid = ep.get().pid();
    return pid <= 0 || isNode(pid) ? ep : Optional.empty();
  }

  /**
   * Prepares the data directory, spawns the node and waits until it has written its endpoint.
   *
   * @param port the TCP bridge port, 0 for any free port
   * @throws CliException with the node's own one-line error when it exits before it is ready
   */
  Endpoint start(int port, Path library) throws IOException {
    NodeLayout.prepare(home, port, library);
    Files.deleteIfExists(home.endpointJson());
    long logOffset = Files.exists(home.nodeLog()) ? Files.size(home.nodeLog()) : 0;
    Process p = spawn();
    writePid(p.pid());
    long deadline = System.nanoTime() + readyTimeout.toNanos();
    while (true) {
      Optional<Endpoint> ep = Endpoint.read(home.endpointJson());
      if (ep.isPresent()) {
        if (ep.get().pid() > 0 && ep.get().pid() != p.pid()) {
          writePid(ep.get().pid());
        }
        return ep.get();
      }
      if (!p.isAlive()) {
        Files.deleteIfExists(home.nodePid());
        throw new CliException(exitMessage(p.exitValue(), logOffset));
      }
      if (System.nanoTime() - deadline > 0) {
        p.destroy();
        if (!waitFor(p.toHandle(), FORCE_TIMEOUT)) {
          p.destroyForcibly();
        }
        Files.deleteIfExists(home.nodePid());
        throw new CliException("the node did not become ready within " + readyTimeout.toSeconds()
            + " s; see " + home.nodeLog());
      }
      try {
        Thread.sleep(POLL_MS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new CliException("interrupted while waiting for the node");
      }
    }
  }

  /**
   * Stops the node: SIGTERM, up to 20 s for a clean exit, then SIGKILL. Removes the endpoint and pid
   * files either way.
   *
   * @return the pid stopped, or empty when none was running
   */
  OptionalLong stop() throws IOException {
    OptionalLong pid = runningPid();
    if (pid.isPresent()) {
      ProcessHandle ph = ProcessHandle.of(pid.getAsLong()).orElse(null);
      if (ph != null) {
        ph.destroy();
        if (!waitFor(ph, STOP_TIMEOUT)) {
          ph.destroyForcibly();
          if (!waitFor(ph, FORCE_TIMEOUT)) {
            throw new CliException("could not stop the node (pid " + pid.getAsLong() + ")");
          }
        }
      }
    }
    Files.deleteIfExists(home.endpointJson());
    Files.deleteIfExists(home.nodePid());
    return pid;
  }

  private Process spawn() throws IOException {
    List<String> cmd = new ArrayList<>();
    for (String setsid : List.of("/usr/bin/setsid", "/bin/setsid")) {
      if (Files.isExecutable(Path.of(setsid))) {
        // Own session: a Ctrl-C in the terminal that ran 'up' must not reach the node.
        cmd.add(setsid);
        break;
      }
    }
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx512m");
    cmd.add("-cp");
    cmd.add(nodeClassPath());
    cmd.add(mainClass);
    cmd.add("--config");
    cmd.add(home.nodeProperties().toString());
    ProcessBuilder pb = new ProcessBuilder(cmd)
        .directory(home.hsmDir().toFile())
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(home.nodeLog().toFile()))
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    pb.environment().put("SOFTHSM2_CONF", home.softhsmConf().toString());
    return pb.start();
  }

  /** The node's class path: see {@link #classPathCopiedTo}. */
  private String nodeClassPath() throws IOException {
    return classPathCopiedTo(home.hsmDir().resolve("node.jar"));
  }

  /**
   * The class path for a child JVM. When this JVM runs from one jar (the shaded hsmbridge.jar), the child
   * gets its own copy at {@code copy}: a rebuild replaces cli/target/hsmbridge.jar, and a JVM whose jar
   * changes under it fails on the next class it loads (typically during shutdown).
   */
  static String classPathCopiedTo(Path copy) throws IOException {
    String cp = absoluteClassPath();
    Path jar = Path.of(cp);
    if (cp.contains(File.pathSeparator) || !cp.endsWith(".jar") || !Files.isRegularFile(jar)) {
      return cp;
    }
    Path tmp = copy.resolveSibling(copy.getFileName() + ".tmp");
    Files.copy(jar, tmp, StandardCopyOption.REPLACE_EXISTING);
    Files.move(tmp, copy, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    return copy.toString();
  }

  /** This JVM's class path, made absolute for the node's working directory. */
  private static String absoluteClassPath() {
    String[] parts = System.getProperty("java.class.path").split(File.pathSeparator);
    List<String> abs = new ArrayList<>(parts.length);
    for (String part : parts) {
      if (!part.isEmpty()) {
        abs.add(Path.of(part).toAbsolutePath().normalize().toString());
      }
    }
    return String.join(File.pathSeparator, abs);
  }

  /** The node prints a fatal error as one line "hsmbridge: ..."; show the last such line. */
  private String exitMessage(int exitCode, long logOffset) {
    String nodeError = null;
    String lastLine = null;
    for (String line : logSince(logOffset)) {
      String t = line.strip();
      if (t.startsWith(NODE_ERROR_PREFIX)) {
        nodeError = t.substring(NODE_ERROR_PREFIX.length()).strip();
      }
      if (!t.isEmpty()) {
        lastLine = t;
      }
    }
    if (nodeError != null) {
      return nodeError + " (node log: " + home.nodeLog() + ")";
    }
    return "the node exited with code " + exitCode + " before it was ready"
        + (lastLine == null ? "" : ": " + lastLine) + " (node log: " + home.nodeLog() + ")";
  }

  private List<String> logSince(long offset) {
    try (InputStream in = Files.newInputStream(home.nodeLog())) {
      in.skipNBytes(offset);
      return new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().toList();
    } catch (IOException e) {
      return List.of();
    }
  }

  private boolean isNode(long pid) {
    Optional<ProcessHandle> ph = ProcessHandle.of(pid);
    if (ph.isEmpty() || !ph.get().isAlive()) {
      return false;
    }
    // A recycled pid must not be mistaken for the node (and never be signalled by 'down').
    // On Linux read /proc/<pid>/cmdline whole: ProcessHandle.Info truncates the command line at 4096
    // bytes, and the main class comes after a long class path.
    Path procCmdline = Path.of("/proc", Long.toString(pid), "cmdline");
    if (Files.isReadable(procCmdline)) {
      try {
        String args = new String(Files.readAllBytes(procCmdline), StandardCharsets.UTF_8);
        return java.util.Arrays.asList(args.split("\0")).contains(mainClass);
      } catch (IOException e) {
        // the process ended meanwhile, or /proc is restricted: fall back below
      }
    }
    Optional<String> cmdLine = ph.get().info().commandLine();
    return cmdLine.isEmpty() || cmdLine.get().contains(mainClass);
  }

  private OptionalLong readPid() {
    try {
      return OptionalLong.of(Long.parseLong(Files.readString(home.nodePid()).strip()));
    } catch (IOException | NumberFormatException e) {
      return OptionalLong.empty();
    }
  }

  private void writePid(long pid) throws IOException {
    Files.writeString(home.nodePid(), pid + "\n");
  }

  private static boolean waitFor(ProcessHandle ph, Duration timeout) {
    try {
      ph.onExit().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
      return true;
    } catch (TimeoutException e) {
      return false;
    } catch (ExecutionException e) {
      return !ph.isAlive();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return !ph.isAlive();
    }
  }
}
