package io.hsmbridge.cli;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Starts, finds and stops the node process of one {@link NodeDir} (an agent or the bridge). The node runs detached (its own session when {@code setsid}
 * exists) with output appended to {@code node.log} (which the node rotates past 10 MiB, keeping
 * {@code node.log.1..5}), runs with {@code -XX:+ExitOnOutOfMemoryError}, and writes {@code endpoint.json}
 * when it is ready. Nothing restarts a node that exited: {@code ./hsmbridge up} starts what is not running.
 * Its pid is kept in {@code node.pid}; a pid only counts as this node while its command line names the
 * node's main class and this directory's {@code node.properties}.
 */
final class LocalNode {
  static final String NODE_MAIN = "io.hsmbridge.bridge.NodeMain";
  static final Duration READY_TIMEOUT = Duration.ofSeconds(90);
  static final Duration STOP_TIMEOUT = Duration.ofSeconds(20);
  private static final Duration FORCE_TIMEOUT = Duration.ofSeconds(10);
  private static final long POLL_MS = 200;
  private static final String NODE_ERROR_PREFIX = "hsmbridge:";
  static final long LOG_MAX_BYTES = 10L * 1024 * 1024;
  static final int LOG_FILES = 5;

  private final NodeDir dir;
  private final String mainClass;
  private final Duration readyTimeout;

  LocalNode(NodeDir dir) {
    this(dir, NODE_MAIN, READY_TIMEOUT);
  }

  /** For tests: another main class and timeout. */
  LocalNode(NodeDir dir, String mainClass, Duration readyTimeout) {
    this.dir = dir;
    this.mainClass = mainClass;
    this.readyTimeout = readyTimeout;
  }

  NodeDir dir() {
    return dir;
  }

  /** A process this CLI spawned, and where its log stood before (for its error lines). */
  record Spawned(LocalNode node, Process process, long logOffset) {
    String name() {
      return node.dir().name();
    }

    /** The message for a process that exited before it was ready. */
    String exitMessage() {
      return node.exitMessage(process.exitValue(), logOffset);
    }
  }

  /** The pid of this directory's live node process, if any. */
  OptionalLong runningPid() {
    OptionalLong fromFile = readPid();
    if (fromFile.isPresent() && isNode(fromFile.getAsLong())) {
      return fromFile;
    }
    long pid = Endpoint.readPid(dir.endpointJson());
    return pid > 0 && isNode(pid) ? OptionalLong.of(pid) : OptionalLong.empty();
  }

  /** The client endpoint of a running, ready node, if any; a stale endpoint file counts as not running. */
  Optional<Endpoint> runningEndpoint() {
    Optional<Endpoint> ep = Endpoint.read(dir.endpointJson());
    if (ep.isEmpty()) {
      return ep;
    }
    long pid = ep.get().pid();
    if (pid > 0 && !isNode(pid)) {
      return Optional.empty();
    }
    // A TLS endpoint's certificate is issued by the cluster CA, of which the node keeps a copy; the local
    // CLI's own client certificate gets it through an endpoint that requires mutual TLS.
    if (!ep.get().tls()) {
      return ep;
    }
    Endpoint tls = ep.get().withCa(dir.tlsCa());
    Path cliCert = Home.cliCert(dir.dir().getParent());
    Path cliKey = Home.cliKey(dir.dir().getParent());
    return Optional.of(Files.isReadable(cliCert) && Files.isReadable(cliKey) ? tls.withClientCertificate(cliCert, cliKey) : tls);
  }

  /**
   * Spawns the node from its prepared directory and returns at once; {@code endpoint.json} of an earlier
   * run is deleted first so that readiness means this run.
   */
  Spawned spawn() throws IOException {
    Files.deleteIfExists(dir.endpointJson());
    long logOffset = Files.exists(dir.nodeLog()) ? Files.size(dir.nodeLog()) : 0;
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
    // A JVM out of memory is in an unknown state (measured on the old endpoint: a hang that ignored
    // SIGTERM): exit at once, and let 'up' or the operator's supervisor start it again.
    cmd.add("-XX:+ExitOnOutOfMemoryError");
    // For profiling a node as it runs (e.g. -XX:StartFlightRecording=...): options of the operator's, not a secret.
    String extra = System.getenv("HSMBRIDGE_NODE_JVM_OPTS");
    if (extra != null && !extra.isBlank()) {
      cmd.addAll(List.of(extra.trim().split("\\s+")));
    }
    // node.log is bounded: the node copies and truncates it past the cap (LogRotation), keeping 5 copies.
    cmd.add("-Dhsmbridge.log.file=" + dir.nodeLog());
    cmd.add("-Dhsmbridge.log.maxBytes=" + LOG_MAX_BYTES);
    cmd.add("-Dhsmbridge.log.files=" + LOG_FILES);
    cmd.add("-cp");
    cmd.add(classPathCopiedTo(dir.dir().resolveSibling("node.jar")));
    cmd.add(mainClass);
    cmd.add("--config");
    cmd.add(dir.nodeProperties().toString());
    ProcessBuilder pb = new ProcessBuilder(cmd)
        .directory(dir.dir().toFile())
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.nodeLog().toFile()))
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    if (Files.exists(dir.softhsmConf())) { // nodes holding a token; SoftHSM2 reads it once per process
      pb.environment().put("SOFTHSM2_CONF", dir.softhsmConf().toString());
    } else {
      pb.environment().remove("SOFTHSM2_CONF"); // the bridge holds no token: not even the caller's
    }
    Process p = pb.start();
    writePid(p.pid());
    return new Spawned(this, p, logOffset);
  }

  /**
   * Spawns the node and waits until it has written its {@code endpoint.json} (a cluster waits for all its
   * members at once instead: {@link LocalCluster#awaitServing}).
   *
   * @throws CliException with the node's own one-line error when it exits before it is ready
   */
  Endpoint start() throws IOException {
    Spawned s = spawn();
    Process p = s.process();
    long deadline = System.nanoTime() + readyTimeout.toNanos();
    while (true) {
      Optional<Endpoint> ep = Endpoint.read(dir.endpointJson());
      if (ep.isPresent()) {
        if (ep.get().pid() > 0 && ep.get().pid() != p.pid()) {
          writePid(ep.get().pid());
        }
        return ep.get();
      }
      if (!p.isAlive()) {
        Files.deleteIfExists(dir.nodePid());
        throw new CliException(s.exitMessage());
      }
      if (System.nanoTime() - deadline > 0) {
        p.destroy();
        if (!waitFor(p.toHandle(), FORCE_TIMEOUT)) {
          p.destroyForcibly();
        }
        Files.deleteIfExists(dir.nodePid());
        throw new CliException("the node did not become ready within " + readyTimeout.toSeconds()
            + " s; see " + dir.nodeLog());
      }
      sleep(POLL_MS);
    }
  }

  /**
   * Stops the node: SIGTERM, up to 20 s for a clean exit, then SIGKILL. Removes the endpoint and pid
   * files either way.
   *
   * @return the pid stopped, or empty when none was running
   */
  OptionalLong stop() throws IOException {
    Long pid = stopAll(List.of(this)).get(dir.name());
    return pid == null ? OptionalLong.empty() : OptionalLong.of(pid);
  }

  /**
   * Stops several nodes at once: SIGTERM to every one, then up to 20 s for them all to exit, then
   * SIGKILL to those still alive.
   *
   * @return the pid of each node that was running, by name, in the given order
   * @throws CliException naming a node that survives SIGKILL
   */
  static Map<String, Long> stopAll(List<LocalNode> nodes) throws IOException {
    Map<String, Long> stopped = new LinkedHashMap<>();
    Map<LocalNode, ProcessHandle> handles = new LinkedHashMap<>();
    for (LocalNode n : nodes) {
      OptionalLong pid = n.runningPid();
      if (pid.isPresent()) {
        stopped.put(n.dir.name(), pid.getAsLong());
        ProcessHandle.of(pid.getAsLong()).ifPresent(ph -> {
          ph.destroy();
          handles.put(n, ph);
        });
      }
    }
    long deadline = System.nanoTime() + STOP_TIMEOUT.toNanos();
    for (Map.Entry<LocalNode, ProcessHandle> e : handles.entrySet()) {
      ProcessHandle ph = e.getValue();
      Duration left = Duration.ofNanos(Math.max(0, deadline - System.nanoTime()));
      if (!waitFor(ph, left)) {
        ph.destroyForcibly();
        if (!waitFor(ph, FORCE_TIMEOUT)) {
          throw new CliException("could not stop " + e.getKey().dir.name() + " (pid " + ph.pid() + ")");
        }
      }
    }
    for (LocalNode n : nodes) {
      Files.deleteIfExists(n.dir.endpointJson());
      Files.deleteIfExists(n.dir.nodePid());
    }
    return stopped;
  }

  /**
   * The class path for a child JVM. When this JVM runs from one jar (the shaded hsmbridge.jar), the child
   * gets a copy at {@code copy}: a rebuild replaces cli/target/hsmbridge.jar, and a JVM whose jar
   * changes under it fails on the next class it loads (typically during shutdown). The copy is replaced
   * only by an atomic rename (a node still running from the old one keeps reading it), and only when
   * the jar changed (same size and modification time: kept).
   */
  static String classPathCopiedTo(Path copy) throws IOException {
    String cp = absoluteClassPath();
    Path jar = Path.of(cp);
    if (cp.contains(File.pathSeparator) || !cp.endsWith(".jar") || !Files.isRegularFile(jar)) {
      return cp;
    }
    if (Files.isRegularFile(copy)) {
      BasicFileAttributes a = Files.readAttributes(jar, BasicFileAttributes.class);
      BasicFileAttributes b = Files.readAttributes(copy, BasicFileAttributes.class);
      if (a.size() == b.size() && a.lastModifiedTime().equals(b.lastModifiedTime())) {
        return copy.toString();
      }
    }
    Path tmp = copy.resolveSibling(copy.getFileName() + ".tmp");
    Files.copy(jar, tmp, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.COPY_ATTRIBUTES);
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
  String exitMessage(int exitCode, long logOffset) {
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
      return nodeError + " (node log: " + dir.nodeLog() + ")";
    }
    return "the node exited with code " + exitCode + " before it was ready"
        + (lastLine == null ? "" : ": " + lastLine) + " (node log: " + dir.nodeLog() + ")";
  }

  /** The last {@code max} non-blank lines the node logged after {@code logOffset} (within its last 64 KiB). */
  List<String> logTail(long logOffset, int max) {
    long size;
    try {
      size = Files.size(dir.nodeLog());
    } catch (IOException e) {
      return List.of();
    }
    List<String> lines = logSince(Math.max(logOffset, size - 65536)).stream().filter(l -> !l.isBlank()).toList();
    return lines.subList(Math.max(0, lines.size() - max), lines.size());
  }

  private List<String> logSince(long offset) {
    try (InputStream in = Files.newInputStream(dir.nodeLog())) {
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
    // A recycled pid must not be mistaken for the node (and never be signalled by 'down'), nor one
    // member for another: the command line must name the main class and this member's config.
    // On Linux read /proc/<pid>/cmdline whole: ProcessHandle.Info truncates the command line at 4096
    // bytes, and the main class comes after a long class path.
    String config = dir.nodeProperties().toString();
    Path procCmdline = Path.of("/proc", Long.toString(pid), "cmdline");
    if (Files.isReadable(procCmdline)) {
      try {
        List<String> args = Arrays.asList(
            new String(Files.readAllBytes(procCmdline), StandardCharsets.UTF_8).split("\0"));
        return args.contains(mainClass) && args.contains(config);
      } catch (IOException e) {
        // the process ended meanwhile, or /proc is restricted: fall back below
      }
    }
    Optional<String> cmdLine = ph.get().info().commandLine();
    return cmdLine.isEmpty() || (cmdLine.get().contains(mainClass) && cmdLine.get().contains(config));
  }

  private OptionalLong readPid() {
    try {
      return OptionalLong.of(Long.parseLong(Files.readString(dir.nodePid()).strip()));
    } catch (IOException | NumberFormatException e) {
      return OptionalLong.empty();
    }
  }

  private void writePid(long pid) throws IOException {
    Files.writeString(dir.nodePid(), pid + "\n");
  }

  static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new CliException("interrupted while waiting for the node");
    }
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
