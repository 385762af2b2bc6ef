package io.hsmbridge.cli.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code hsmbridge bench} end to end with tiny counts, as a user runs it: a CLI JVM that measures the direct
 * baseline (two ops, AES and EC generation) in its own child JVM, then starts real throwaway clusters of 1 and 2
 * HSMs (agent and bridge processes on SoftHSM2 tokens), measures them over TCP through each link (a host's
 * front door, the bridge over TLS and in plaintext, the JCE provider with its TLS handshake rows), stops them and deletes their directories.
 * The CLI JVM gets this test's temporary directory as java.io.tmpdir, so the test can see that nothing is
 * left behind.
 */
class ClusterBenchRunTest {
  // The sign rows run twice (TLS and plaintext); the 2-HSM cluster alone took 48 s to start on a loaded host.
  private static final long LIMIT_SECONDS = 240;

  @TempDir
  Path tmp;

  @Test
  @Timeout(value = LIMIT_SECONDS + 30, unit = TimeUnit.SECONDS)
  void benchClusterPrintsRowsForOneAndTwoHsmsAndCleansUp() throws Exception {
    Path home = Files.createDirectory(tmp.resolve("home"));
    Path childTmp = Files.createDirectory(tmp.resolve("tmp"));
    Path stdout = tmp.resolve("out.txt");
    Path stderr = tmp.resolve("err.txt");
    List<String> cmd = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx512m",
        "-Djava.io.tmpdir=" + childTmp, "-cp", System.getProperty("java.class.path"), "io.hsmbridge.cli.Main",
        "--home", home.toString(), "bench", "--csv", "--hsms", "1,2",
        "--ops", "rsa2048_pkcs1_sha256_sign,hmac_sha256_1k", "--via", "host,host_shared,bridge,bridge_plain,jce",
        "--creations", "AES_256:3,EC_P256:2", "--threads", "2", "--seconds", "1", "--warmup", "0"));
    Process p = new ProcessBuilder(cmd).redirectOutput(stdout.toFile()).redirectError(stderr.toFile())
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
    boolean exited = p.waitFor(LIMIT_SECONDS, TimeUnit.SECONDS);
    if (!exited) {
      p.destroy(); // SIGTERM: the bench's shutdown hook stops its clusters
      p.waitFor(60, TimeUnit.SECONDS);
    }
    String out = Files.readString(stdout, StandardCharsets.UTF_8);
    String err = Files.readString(stderr, StandardCharsets.UTF_8);
    String why = "\n--- out:\n" + out + "--- err:\n" + err;
    assertTrue(exited, "bench did not finish within " + LIMIT_SECONDS + " s" + why);
    assertEquals(0, p.exitValue(), why);

    List<String> lines = out.lines().toList();
    assertEquals(ClusterBench.CSV_HEADER, lines.get(0), why);
    // row,hsms,required,threads,n,direct_ops_per_s,hsmbridge_ops_per_s,ratio,p50_us,p99_us,max_us,cores,served_by
    List<String[]> rows = lines.subList(1, lines.size()).stream().map(l -> l.split(",", -1)).toList();
    // Per size: 2 creation rows + 2 ops x 5 links, at 2 threads (one count: a second one only doubled the
    // test's time, 88 s in CI, and the thread loop is the same code).
    assertEquals(2 * (2 + 2 * 5), rows.size(), why);
    int cores = Runtime.getRuntime().availableProcessors();
    for (int hsms = 1; hsms <= 2; hsms++) {
      for (String spec : List.of("aes_256", "ec_p256")) {
        String[] r = row(rows, "create_" + spec, hsms, 1, why);
        assertEquals(Integer.toString(Math.min(2, hsms)), r[2], "required = min(durability 2, HSMs)" + why);
        assertEquals(spec.equals("aes_256") ? "3" : "2", r[4], why);
        assertTrue(Double.parseDouble(r[8]) > 0 && Double.parseDouble(r[9]) >= Double.parseDouble(r[8]), why);
        assertTrue(Double.parseDouble(r[5]) > 0, "one token's own generation rate beside it" + why);
        assertEquals(Integer.toString(cores), r[11], why);
      }
      for (int threads = 2; threads <= 2; threads++) {
       for (String cryptoRow : List.of("rsa2048_pkcs1_sha256_sign@host", "rsa2048_pkcs1_sha256_sign@host_shared",
           "hmac_sha256_1k@host_shared", "rsa2048_pkcs1_sha256_sign@bridge",
           "rsa2048_pkcs1_sha256_sign@bridge_plain", "hmac_sha256_1k@host", "hmac_sha256_1k@bridge",
           "hmac_sha256_1k@bridge_plain", "rsa2048_pkcs1_sha256_sign@jce", "hmac_sha256_1k@jce")) {
        String[] r = row(rows, cryptoRow, hsms, threads, why);
        assertTrue(Double.parseDouble(r[5]) > 0, "direct baseline" + why);
        assertTrue(Double.parseDouble(r[6]) > 0, "bridge ops/s" + why);
        assertTrue(Long.parseLong(r[4]) > 0, why);
        assertEquals(Integer.toString(cores), r[11], why);
        if (cryptoRow.endsWith("@jce")) {
          assertEquals("", r[12], "the JCE provider does not say which HSM served" + why);
          continue;
        }
        String expectedIds = hsms == 1 ? "hsm1=\\d\\.\\d\\d" : "hsm1=\\d\\.\\d\\d;hsm2=\\d\\.\\d\\d";
        assertTrue(r[12].matches(expectedIds), "served_by lists every HSM: " + r[12] + why);
        double total = 0;
        for (String part : r[12].split(";")) {
          total += Double.parseDouble(part.substring(part.indexOf('=') + 1));
        }
        assertEquals(1.0, total, 0.011, why);
       }
      }
    }
    assertTrue(err.contains("up in") && err.contains("a key change needs 2"), why);
    // The TLS rows of the jce link: handshakes with the server key in memory and in the cluster, per key type.
    assertTrue(err.contains("tls13_handshake_ecdsa_p256") && err.contains("tls13_handshake_rsa2048"), why);

    // Every throwaway directory is gone, no node of it still runs, and the user's data dir is untouched.
    try (Stream<Path> left = Files.list(childTmp)) {
      List<Path> bench = left.filter(f -> f.getFileName().toString().startsWith("hsmbridge-")).toList();
      assertEquals(List.of(), bench, why);
    }
    assertTrue(ProcessHandle.allProcesses().noneMatch(ph -> commandLine(ph).contains(childTmp.toString())),
        "a bench node outlived the bench");
    try (Stream<Path> h = Files.list(home)) {
      assertEquals(0, h.count(), "bench must not write to --home");
    }
  }

  private static String[] row(List<String[]> rows, String name, int hsms, int threads, String why) {
    return rows.stream().filter(r -> r[0].equals(name) && r[1].equals(Integer.toString(hsms))
        && r[3].equals(Integer.toString(threads))).findFirst()
        .orElseThrow(() -> new AssertionError("no row " + name + " hsms " + hsms + " threads " + threads + why));
  }

  /** The whole command line (ProcessHandle.Info truncates it, and a node's config comes after its class path). */
  private static String commandLine(ProcessHandle ph) {
    try {
      return new String(Files.readAllBytes(Path.of("/proc", Long.toString(ph.pid()), "cmdline")), StandardCharsets.UTF_8);
    } catch (IOException | RuntimeException e) {
      return ph.info().commandLine().orElse("");
    }
  }
}
