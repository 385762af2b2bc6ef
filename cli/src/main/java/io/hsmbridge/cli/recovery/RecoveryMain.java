package io.hsmbridge.cli.recovery;

import io.hsmbridge.agent.AgentConfig;
import io.hsmbridge.agent.audit.RestoreAudit;
import io.hsmbridge.agent.backup.BackupFile;
import io.hsmbridge.agent.backup.BackupRestorer;
import io.hsmbridge.agent.replication.MutationLog;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;

/**
 * The token steps of disaster recovery (docs/disaster-recovery.md), each in a process of its own: SoftHSM2
 * reads SOFTHSM2_CONF once per process, and the recovery token and a fresh HSM's token are two
 * configurations. {@code RecoveryCeremony} runs them in order; only public keys and wrapped blobs pass
 * between them, through files.
 *
 * <pre>
 *   recovery-key  --config P --out PEM                       make (or read) the recovery token's key pair
 *   transport-key --config P --out FILE                      a fresh HSM's transport key pair (public half out)
 *   transfer      --config P --escrow B64 --spki FILE --out FILE   recovery token: PBK to the transport key
 *   restore       --config P --wrapped FILE --backup FILE --raft-dir DIR --audit-log FILE
 *                 --escrow-cluster NAME --recovery-key SHA256 [--generation N]
 *                 fresh HSM: install the PBK, make a new cluster key, restore the backup, start the log after it,
 *                 and begin the HSM's audit log with the restore (RestoreAudit)
 * </pre>
 *
 * Exit 0 on success; 1 with one line on stderr (never a PIN or a key) otherwise.
 */
public final class RecoveryMain {
  private RecoveryMain() {}

  public static void main(String[] args) {
    // The steps' own lines are the output; the token layer's INFO logs would only mix into them.
    java.util.logging.LogManager.getLogManager().reset();
    try {
      run(args);
    } catch (HsmException e) {
      System.err.println("hsmbridge: " + e.code() + ": " + BackupRestorer.reason(e));
      System.exit(1);
    } catch (RuntimeException | java.io.IOException e) {
      System.err.println("hsmbridge: " + e.getMessage());
      System.exit(1);
    }
  }

  private static void run(String[] args) throws java.io.IOException {
    Map<String, String> o = options(args);
    String command = args.length == 0 ? "" : args[0];
    AgentConfig config = AgentConfig.load(Path.of(need(o, "config")));
    try (HsmToken token = HsmToken.open(config.token())) {
      switch (command) {
        case "recovery-key" -> {
          byte[] spki = token.recoveryKeys().hasRecoveryKey() ? token.recoveryKeys().recoveryKey()
              : token.recoveryKeys().createRecoveryKey();
          Files.writeString(Path.of(need(o, "out")), Pem.publicKey(spki));
        }
        case "transport-key" -> Files.write(Path.of(need(o, "out")), token.clusterKeys().createTransportKey());
        case "transfer" -> {
          byte[] escrowed = Base64.getDecoder().decode(Files.readString(Path.of(need(o, "escrow"))).trim());
          byte[] spki = Files.readAllBytes(Path.of(need(o, "spki")));
          Files.write(Path.of(need(o, "out")), token.recoveryKeys().transfer(escrowed, spki));
        }
        case "restore" -> restore(token, config.hsmId(), o);
        default -> throw new IllegalArgumentException("unknown step '" + command + "'");
      }
    }
  }

  /** A line "progress N M": N of M keys restored. */
  public static final String PROGRESS = "progress ";

  private static void restore(HsmToken token, String hsmId, Map<String, String> o) throws java.io.IOException {
    Path raftDir = Path.of(need(o, "raft-dir"));
    Path auditLog = Path.of(need(o, "audit-log"));
    String escrowCluster = need(o, "escrow-cluster");
    String recoveryKey = need(o, "recovery-key");
    if (token.clusterKeys().hasClusterKey() || !token.users().rescan().isEmpty()) {
      throw new IllegalStateException("the new HSM's token is not fresh: it holds a cluster key or users");
    }
    int generation = Integer.parseInt(o.getOrDefault("generation", "1"));
    token.recoveryKeys().installBackupKey(generation, Files.readAllBytes(Path.of(need(o, "wrapped"))));
    token.clusterKeys().createClusterKey(); // the new cluster's own; the backup's keys come under its EBK
    token.backupKeys().createCarrierIfMissing(); // so is the carrier of its later backup key generations
    byte[] backup = Files.readAllBytes(Path.of(need(o, "backup")));
    long started = System.nanoTime();
    int keys = BackupFile.parse(backup).header().getInteger("keys", 0);
    int step = Math.max(1, keys / 100);
    BackupRestorer.Restored r = BackupRestorer.restore(token, backup, null, n -> {
      if (n % step == 0 || n == keys) {
        System.out.println(PROGRESS + n + " " + keys); // the parent draws it (RecoveryCeremony)
        System.out.flush();
      }
    });
    // The new cluster's log starts after the backup's index (term 0: the new group has no history yet),
    // so that its first entry is not mistaken for one the restored token already applied.
    MutationLog.recordSnapshot(raftDir, 0, r.appliedIndex());
    RestoreAudit.write(auditLog, token, hsmId, "OK backup " + r.backupId() + " of cluster "
        + escrowCluster + " at index " + r.appliedIndex() + ": " + r.keys() + " keys, " + r.users()
        + " users; backup key generation " + generation + " released by recovery key " + recoveryKey
        + (r.notBackedUp().isEmpty() ? "" : "; " + r.notBackedUp().size() + " never-extractable keys not in the backup"));
    System.out.println("restored backup " + r.backupId() + ": " + r.keys() + " keys, " + r.users() + " users, index "
        + r.appliedIndex() + ", in " + (System.nanoTime() - started) / 1_000_000 + " ms"
        + (r.notBackedUp().isEmpty() ? "" : "; not in the backup (never extractable): " + r.notBackedUp().size() + " keys"));
  }

  private static Map<String, String> options(String[] args) {
    Map<String, String> o = new HashMap<>();
    for (int i = 1; i + 1 < args.length; i += 2) {
      if (!args[i].startsWith("--")) {
        throw new IllegalArgumentException("expected an option, got '" + args[i] + "'");
      }
      o.put(args[i].substring(2), args[i + 1]);
    }
    return o;
  }

  private static String need(Map<String, String> o, String name) {
    String v = o.get(name);
    if (v == null) {
      throw new IllegalArgumentException("missing --" + name);
    }
    return v;
  }
}
