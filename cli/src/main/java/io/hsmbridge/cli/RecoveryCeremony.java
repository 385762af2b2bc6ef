package io.hsmbridge.cli;

import io.hsmbridge.agent.backup.BackupOperations;
import io.hsmbridge.cli.recovery.Pem;
import io.hsmbridge.cli.recovery.RecoveryMain;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The command-line side of disaster recovery (docs/disaster-recovery.md): the recovery token's directory,
 * the escrow file, and the steps that give a fresh HSM the old cluster's PBK and restore a backup onto
 * it. Each token step runs in a child JVM ({@link RecoveryMain}) with that token's SOFTHSM2_CONF; only
 * public keys and wrapped blobs pass between the steps, through a private temporary directory.
 */
final class RecoveryCeremony {
  /** The escrow file's format tag. */
  static final String ESCROW_FORMAT = "hsmbridge-escrow-1";
  private static final long STEP_TIMEOUT_SECONDS = 900;

  private RecoveryCeremony() {}

  /** The recovery token's directory: a SoftHSM2 token of its own (or a node.properties naming another token). */
  static NodeDir recoveryDir(Path dir) {
    return new NodeDir("recovery", dir.toAbsolutePath().normalize());
  }

  /**
   * Makes the recovery token in {@code dir} (when its node.properties is missing: a SoftHSM2 token with
   * PIN files of its own) and its key pair (once); writes {@code dir/recovery-key.pem}.
   *
   * @return the recovery key's SHA-256 fingerprint
   */
  static String init(Path dir, Path library, PrintStream out) throws IOException {
    NodeDir node = recoveryDir(dir);
    if (!Files.exists(node.nodeProperties())) {
      NodeLayout.prepareToken(node);
      NodeLayout.writeIfChanged(node.nodeProperties(), NodeProperties.directToken(node, library));
    }
    Path pem = node.dir().resolve("recovery-key.pem");
    step(node, out, "recovery-key", "--out", pem.toString());
    return BackupOperations.fingerprint(Pem.readPublicKey(Files.readString(pem)));
  }

  private static void showProgress(ProgressBar progress, String line) {
    String[] n = line.substring(RecoveryMain.PROGRESS.length()).split(" ");
    if (progress != null && n.length == 2 && n[0].matches("[0-9]{1,9}") && n[1].matches("[0-9]{1,9}")) {
      progress.update(Long.parseLong(n[0]), Long.parseLong(n[1]));
    }
  }

  /**
   * An escrow file as {@code backup escrow} writes it. {@code generation} is the PBK generation escrowed (the
   * newest when it was made; 1 in files written before rotation existed, which carry none): it opens the
   * backups made under it, not those made after a later rotation.
   */
  record Escrow(String cluster, String escrowedBackupKey, String recoveryKeySha256, int generation) {
    static Escrow read(Path file) throws IOException {
      JsonObject j;
      try {
        j = new JsonObject(Files.readString(file));
      } catch (DecodeException e) {
        throw new CliException(file + " is not an escrow file (not JSON)");
      }
      if (!ESCROW_FORMAT.equals(j.getValue("format")) || !(j.getValue("escrowedBackupKey") instanceof String)
          || !(j.getValue("recoveryKeySha256") instanceof String)) {
        throw new CliException(file + " is not an escrow file of this version (format " + ESCROW_FORMAT + ")");
      }
      Object generation = j.getValue("generation", 1);
      if (!(generation instanceof Integer g) || g < 1 || g > io.hsmbridge.pkcs11.BackupKeys.MAX_GENERATION) {
        throw new CliException(file + ": generation must be a backup key generation (1.."
            + io.hsmbridge.pkcs11.BackupKeys.MAX_GENERATION + ")");
      }
      return new Escrow(j.getString("cluster"), j.getString("escrowedBackupKey"), j.getString("recoveryKeySha256"), g);
    }

    JsonObject toJson() {
      return new JsonObject().put("format", ESCROW_FORMAT).put("cluster", cluster).put("generation", generation)
          .put("escrowedBackupKey", escrowedBackupKey).put("recoveryKeySha256", recoveryKeySha256);
    }
  }

  /**
   * Gives the fresh token of {@code hsm} the PBK through the recovery token, a new cluster key, and the
   * backup's keys, users, ACLs and settings; its log will start after the backup's index.
   */
  static void restoreOnto(NodeDir hsm, Path backup, Path escrowFile, Path recoveryDir, PrintStream out,
      ProgressBar progress) throws IOException {
    Escrow escrow = Escrow.read(escrowFile);
    NodeDir recovery = recoveryDir(recoveryDir);
    if (!Files.exists(recovery.nodeProperties())) {
      throw new CliException("no recovery token in " + recovery.dir() + " (made by ./hsmbridge recovery init --dir DIR)");
    }
    if (!Files.isRegularFile(backup)) {
      throw new CliException("no backup file at " + backup);
    }
    requireEscrowOfItsGeneration(backup, escrow);
    Path work = Files.createTempDirectory("hsmbridge-recovery-");
    try {
      Path pem = work.resolve("recovery-key.pem");
      step(recovery, out, "recovery-key", "--out", pem.toString());
      String fingerprint = BackupOperations.fingerprint(Pem.readPublicKey(Files.readString(pem)));
      if (!fingerprint.equals(escrow.recoveryKeySha256())) {
        throw new CliException("the escrow file was made for recovery key " + escrow.recoveryKeySha256()
            + ", not for the one in " + recovery.dir() + " (" + fingerprint + ")");
      }
      Path escrowed = Files.writeString(work.resolve("escrowed.b64"), escrow.escrowedBackupKey());
      Path spki = work.resolve("transport.spki");
      Path wrapped = work.resolve("backup-key.wrapped");
      out.println("the recovery token hands the backup key of cluster " + escrow.cluster() + " to " + hsm.name() + " ...");
      step(hsm, out, "transport-key", "--config", hsm.nodeProperties().toString(), "--out", spki.toString());
      step(recovery, out, "transfer", "--escrow", escrowed.toString(), "--spki", spki.toString(), "--out", wrapped.toString());
      out.println("restoring " + backup + " onto " + hsm.name() + " ...");
      stepWithProgress(hsm, out, progress, "restore", "--config", hsm.nodeProperties().toString(), "--wrapped", wrapped.toString(),
          "--backup", backup.toAbsolutePath().toString(), "--raft-dir", hsm.raftDir().toString(),
          "--audit-log", hsm.auditLog().toString(), "--escrow-cluster", String.valueOf(escrow.cluster()),
          "--recovery-key", fingerprint, "--generation", Integer.toString(escrow.generation()));
    } finally {
      DemoCommand.deleteTree(work);
    }
  }

  /**
   * Refuses, before anything starts, a backup whose header names another backup key generation than the
   * escrow's. The header is not authenticated yet (the token does that), so this only spares a doomed
   * restore: an altered header can make it refuse, never accept. Files made before rotation existed carry
   * no generation and are left to the token.
   */
  private static void requireEscrowOfItsGeneration(Path backup, Escrow escrow) throws IOException {
    Object generation;
    try {
      generation = io.hsmbridge.agent.backup.BackupFile.parse(Files.readAllBytes(backup)).header().getValue("backupKeyGeneration");
    } catch (RuntimeException unreadable) {
      return; // the restore step reports what is wrong with the file
    }
    if (generation instanceof Integer g && g != escrow.generation()) {
      throw new CliException("the backup was made under backup key generation " + g + ", the escrow holds generation "
          + escrow.generation() + ": use the escrow made after the rotation to generation " + g
          + " (backup escrow, docs/backups.md \"Rotating the backup key\")");
    }
  }

  /** Runs one {@link RecoveryMain} step with {@code node}'s token; its output lines go to {@code out}. */
  private static void step(NodeDir node, PrintStream out, String name, String... args) throws IOException {
    stepWithProgress(node, out, null, name, args);
  }

  /** A step whose "progress N M" lines (RecoveryMain.PROGRESS) go to {@code progress} instead of {@code out}. */
  private static void stepWithProgress(NodeDir node, PrintStream out, ProgressBar progress, String name, String... args)
      throws IOException {
    List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Xmx512m", "-cp", System.getProperty("java.class.path"), RecoveryMain.class.getName(), name));
    if (!List.of(args).contains("--config")) {
      cmd.addAll(List.of("--config", node.nodeProperties().toString()));
    }
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    pb.environment().put("SOFTHSM2_CONF", node.softhsmConf().toString());
    Process p = pb.start();
    List<String> lines = new ArrayList<>();
    try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line = r.readLine(); line != null; line = r.readLine()) {
        if (line.startsWith("hsmbridge: ")) {
          lines.add(line);
        } else if (line.startsWith(RecoveryMain.PROGRESS)) {
          showProgress(progress, line);
        } else if (!line.startsWith("SLF4J") && !line.contains("WARNING")) {
          out.println("  " + line);
        }
      }
    }
    try {
      if (!p.waitFor(STEP_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new CliException("the recovery step '" + name + "' did not end within " + STEP_TIMEOUT_SECONDS + " s");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      p.destroyForcibly();
      throw new CliException("interrupted during the recovery step '" + name + "'");
    }
    if (p.exitValue() != 0) {
      throw new CliException("the recovery step '" + name + "' on " + node.dir() + " failed: "
          + (lines.isEmpty() ? "exit " + p.exitValue() : String.join("; ", lines).replace("hsmbridge: ", "")));
    }
  }
}
