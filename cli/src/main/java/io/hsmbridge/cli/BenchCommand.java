package io.hsmbridge.cli;

import io.hsmbridge.cli.bench.BenchMain;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code bench}: prepares a throwaway token in a fresh temporary directory and runs {@link BenchMain}
 * in a child JVM (SoftHSM2 reads SOFTHSM2_CONF once per process, so the token store has to be chosen
 * before the library loads). The child's standard output is the benchmark's output.
 */
@Command(name = "bench",
    description = "Measure RSA-2048 sign, ECDSA P-256 sign, AES-256-GCM 4 KiB encrypt and HMAC-SHA256 1 KiB"
        + " directly through PKCS#11 and through agent + bridge, on the same fresh SoftHSM2 token.")
final class BenchCommand extends CliCommand {
  @Option(names = "--csv", description = "Print op,threads,direct_ops_per_s,bridge_ops_per_s,ratio,p50_us,p99_us rows.")
  boolean csv;

  @Option(names = "--seconds", defaultValue = "3", description = "Measured seconds per cell (default ${DEFAULT-VALUE}).")
  int seconds;

  @Option(names = "--warmup", defaultValue = "2", description = "Warm-up seconds per cell (default ${DEFAULT-VALUE}).")
  int warmup;

  @Option(names = "--threads", defaultValue = "1,2,4,8", description = "Client thread counts (default ${DEFAULT-VALUE}).")
  String threads;

  @Option(names = "--ops", paramLabel = "LIST",
      description = "Subset of ops: rsa2048_pkcs1_sha256_sign, ecdsa_p256_sha256_sign, aes256_gcm_encrypt_4k, hmac_sha256_1k.")
  String ops;

  @Override
  protected int execute() throws Exception {
    if (seconds < 1 || seconds > 60 || warmup < 0 || warmup > 60) {
      throw usage("--seconds must be 1..60 and --warmup 0..60");
    }
    if (!threads.matches("\\d{1,2}(,\\d{1,2})*")) {
      throw usage("--threads must look like 1,2,4,8");
    }
    Path library = NodeLayout.findLibrary(cli().env());
    Path dir = Files.createTempDirectory("hsmbridge-bench-");
    Process child = null;
    try {
      NodeDir node = NodeLayout.prepareStandalone(new Home(dir), 0, library);
      List<String> cmd = new ArrayList<>(List.of(
          Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx1g",
          "-cp", LocalNode.classPathCopiedTo(dir.resolve("bench.jar")), BenchMain.class.getName(),
          "--config", node.nodeProperties().toString(),
          "--seconds", Integer.toString(seconds), "--warmup", Integer.toString(warmup), "--threads", threads));
      if (ops != null) {
        cmd.add("--ops");
        cmd.add(ops);
      }
      if (csv) {
        cmd.add("--csv");
      }
      ProcessBuilder pb = new ProcessBuilder(cmd)
          .redirectOutput(ProcessBuilder.Redirect.INHERIT)
          .redirectError(ProcessBuilder.Redirect.INHERIT)
          .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
      pb.environment().put("SOFTHSM2_CONF", node.softhsmConf().toString());
      child = pb.start();
      return child.waitFor() == 0 ? ExitCodes.OK : ExitCodes.FAILURE;
    } finally {
      if (child != null && child.isAlive()) {
        child.destroyForcibly();
      }
      DemoCommand.deleteTree(dir);
    }
  }
}
