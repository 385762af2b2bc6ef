package io.hsmbridge.cli.bench;

import io.hsmbridge.agent.AgentConfig;
import io.hsmbridge.agent.backup.BackupMaker;
import io.hsmbridge.agent.backup.BackupRestorer;
import io.hsmbridge.pkcs11.ClusterKeys;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.ReplicaBlob;
import io.hsmbridge.pkcs11.TokenConfig;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code bench --backup-keys N,...} (docs/backups.md, docs/benchmarks.md), in a child JVM with its own
 * SOFTHSM2_CONF: for each N, two fresh tokens of one cluster (the second joined as {@code hsm add} joins:
 * cluster key and PBK under its transport key); N AES-256 keys made on the first as the cluster makes
 * keys; then the token's own cost, measured here: one key wrapped under the cluster key and one unwrapped
 * (mean of a sample, times N); then a backup of the first token and its restore onto the second. Prints
 * one {@code backup,<N>,<backup ms>,<bytes>,<restore ms>,<wrap us>,<unwrap us>} line per N.
 *
 * <p>Arguments: {@code --config FILE --keys N,...} (the token keys of a node.properties; labels get a suffix).
 */
public final class BackupBench {
  /** Keys wrapped and unwrapped one by one for the token's own per-key cost. */
  private static final int SAMPLE = 200;

  private BackupBench() {}

  public static void main(String[] args) throws Exception {
    Path config = null;
    List<Integer> counts = new ArrayList<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      if (args[i].equals("--config")) {
        config = Path.of(args[i + 1]);
      } else if (args[i].equals("--keys")) {
        for (String n : args[i + 1].split(",")) {
          counts.add(Integer.parseInt(n.trim()));
        }
      }
    }
    if (config == null || counts.isEmpty()) {
      System.err.println("usage: BackupBench --config FILE --keys N,...");
      System.exit(2);
    }
    TokenConfig base = AgentConfig.load(config).token();
    for (int n : counts) {
      run(base, n, System.out);
    }
    System.exit(0);
  }

  private static void run(TokenConfig base, int n, PrintStream out) {
    try (HsmToken source = open(base, "bk-src-" + n); HsmToken target = open(base, "bk-dst-" + n);
        HsmToken sample = open(base, "bk-sample-" + n)) {
      source.clusterKeys().createClusterKey();
      source.backupKeys().createBackupKey();
      for (HsmToken joiner : List.of(target, sample)) {
        ClusterKeys.JoinerKeys keys = source.clusterKeys().wrapForJoiner(joiner.clusterKeys().createTransportKey());
        joiner.clusterKeys().installClusterKey(keys);
      }
      List<String> ids = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        String id = String.format(Locale.ROOT, "%032x", i + 1);
        source.clusterKeys().installReplica(source.clusterKeys().generateForReplication(KeySpec.AES_256,
            KeyUsage.ENCRYPT_DECRYPT, "bench-" + i, id));
        ids.add(id);
      }
      // The token's own cost of one key: a wrap under the cluster key, an unwrap into another token.
      int s = Math.min(SAMPLE, n);
      List<ReplicaBlob> blobs = new ArrayList<>();
      long t0 = System.nanoTime();
      for (int i = 0; i < s; i++) {
        blobs.add(source.clusterKeys().wrapForReplication(ids.get(i)));
      }
      double wrapMicros = (System.nanoTime() - t0) / 1000.0 / s;
      t0 = System.nanoTime();
      for (ReplicaBlob b : blobs) {
        sample.clusterKeys().installReplica(b);
      }
      double unwrapMicros = (System.nanoTime() - t0) / 1000.0 / s;

      t0 = System.nanoTime();
      byte[] file = BackupMaker.make(source, new BackupMaker.Origin("backup-benchbenchbenchb", "bench", "src",
          System.currentTimeMillis()), k -> { });
      double backupMs = (System.nanoTime() - t0) / 1e6;
      t0 = System.nanoTime();
      BackupRestorer.Restored r = BackupRestorer.restore(target, file, "bench", k -> { });
      double restoreMs = (System.nanoTime() - t0) / 1e6;
      if (r.keys() != n) {
        throw new IllegalStateException("restored " + r.keys() + " keys of " + n);
      }
      out.printf(Locale.ROOT, "backup,%d,%.0f,%d,%.0f,%.0f,%.0f%n", n, backupMs, file.length, restoreMs, wrapMicros, unwrapMicros);
      out.flush();
    }
  }

  private static HsmToken open(TokenConfig base, String label) {
    return HsmToken.open(TokenConfig.of(base.libraryPath(), label, base.userPin(), base.soPin(), true));
  }
}
