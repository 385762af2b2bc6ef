package io.hsmbridge.cli;

import io.hsmbridge.client.Hsm;
import io.hsmbridge.protocol.Op;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code backup ...}: the cluster's backups (docs/backups.md). Each is made inside one HSM, kept in
 * {@code backup.dir} (by default HOME/backups), and restored by a joining HSM ({@code hsm add}) before it
 * applies the log. CO only; every request is in the serving HSM's audit log.
 */
@Command(name = "backup", description = "The cluster's backups: made inside an HSM, kept in backup.dir (CO only).",
    subcommands = {BackupCommands.Create.class, BackupCommands.ListBackups.class, BackupCommands.Describe.class,
        BackupCommands.Delete.class, BackupCommands.RestoreDeleted.class, BackupCommands.SetRetention.class,
        BackupCommands.SetNeverExpires.class, BackupCommands.CopyToRegion.class, BackupCommands.Escrow.class,
        BackupCommands.RotateKey.class, BackupCommands.Restore.class})
final class BackupCommands extends CliCommand {
  /** Making a backup wraps every key inside the token: longer than a crypto request. */
  static final int CREATE_TIMEOUT_SECONDS = 600;

  @Override
  protected int execute() {
    throw usage("missing subcommand; one of: create, list, describe, delete, restore-deleted, set-retention, set-never-expires,"
        + " copy-to-region, escrow, rotate-key, restore");
  }

  /** Sends one backup request and prints the reply's JSON. */
  abstract static class BackupRequest extends ClientCommand {
    abstract JsonObject body();

    @Override
    protected int run(Hsm hsm) {
      out().println(hsm.send(body()).encodePrettily());
      return ExitCodes.OK;
    }

    static JsonObject op(Op op) {
      return new JsonObject().put("op", op.wire());
    }
  }

  @Command(name = "create", description = "Make a backup now, inside one HSM (--hsm, else the least busy), at one"
      + " applied index of the log; prints its record (state READY).")
  static final class Create extends BackupRequest {
    @Option(names = "--hsm", paramLabel = "ID", description = "The HSM that makes it (e.g. hsm2).")
    String hsmId;

    @Override
    protected void validate() {
      if (hsmId != null && !hsmId.matches("[A-Za-z0-9_-]{1,64}")) {
        throw usage("--hsm must be an HSM id such as hsm1");
      }
      if (timeoutSeconds == 30) {
        timeoutSeconds = CREATE_TIMEOUT_SECONDS;
      }
    }

    @Override
    JsonObject body() {
      JsonObject b = op(Op.BACKUP_CREATE);
      return hsmId == null ? b : b.put("onHsm", hsmId);
    }

    /** Sends the request and, until it answers, shows the making HSM's progress from its heartbeats. */
    @Override
    protected int run(Hsm hsm) {
      java.util.concurrent.CompletableFuture<JsonObject> made =
          java.util.concurrent.CompletableFuture.supplyAsync(() -> hsm.send(body()));
      ProgressBar bar = null;
      try {
        while (true) {
          try {
            out().println(made.get(PROGRESS_POLL_MS, java.util.concurrent.TimeUnit.MILLISECONDS).encodePrettily());
            return ExitCodes.OK;
          } catch (java.util.concurrent.TimeoutException stillMaking) {
            JsonObject progress = progressOf(hsm);
            if (progress != null) {
              if (bar == null) {
                bar = new ProgressBar(cli().err(), cli().terminal() != null,
                    "making " + progress.getString("backupId") + " on " + progress.getString("hsmId") + ": keys");
              }
              bar.update(progress.getInteger("wrapped"), progress.getInteger("keys"));
            }
          } catch (java.util.concurrent.ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) {
              throw r;
            }
            throw new IllegalStateException(e.getCause());
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CliException("interrupted while the backup was being made");
          }
        }
      } finally {
        if (bar != null) {
          bar.finish();
        }
      }
    }

    static final long PROGRESS_POLL_MS = 500;

    /** The progress a backing-up HSM announces (cluster status), with its id; null when none does (yet). */
    private static JsonObject progressOf(Hsm hsm) {
      try {
        for (Object o : hsm.send(op(Op.CLUSTER_STATUS)).getJsonArray("hsms", new JsonArray())) {
          JsonObject view = (JsonObject) o;
          JsonObject p = view.getJsonObject("backup");
          if (p != null) {
            return p.copy().put("hsmId", view.getString("hsmId"));
          }
        }
      } catch (RuntimeException e) {
        // Progress is a courtesy: the backup's own answer decides the outcome.
      }
      return null;
    }
  }

  @Command(name = "list", description = "Every backup in backup.dir with its state, and the retention in days.")
  static final class ListBackups extends ClientCommand {
    @Option(names = "--json", description = "Print the reply as JSON instead of a table.")
    boolean json;

    @Override
    protected int run(Hsm hsm) {
      JsonObject reply = hsm.send(BackupRequest.op(Op.BACKUP_LIST));
      if (json) {
        out().println(reply.encodePrettily());
        return ExitCodes.OK;
      }
      TextTable table = new TextTable("BACKUP", "STATE", "CREATED", "INDEX", "BYTES", "HSM", "NEVER EXPIRES");
      for (Object o : reply.getJsonArray("backups", new JsonArray())) {
        JsonObject b = (JsonObject) o;
        if (b.getString("unreadable") != null) {
          table.row(b.getString("backupId"), "UNREADABLE", "", "", "", "", b.getString("unreadable"));
        } else {
          table.row(b.getString("backupId"), b.getString("state"), String.valueOf(b.getValue("createdAt")),
              String.valueOf(b.getValue("appliedIndex")), String.valueOf(b.getValue("sizeBytes")),
              b.getString("sourceHsm"), String.valueOf(b.getValue("neverExpires")));
        }
      }
      table.print(out(), "");
      out().println("retention: " + reply.getValue("retentionDays") + " days");
      return ExitCodes.OK;
    }
  }

  /** A request about one backup, named by its id. */
  abstract static class OneBackup extends BackupRequest {
    @Parameters(index = "0", paramLabel = "BACKUP_ID", description = "The backup's id (backup-...).")
    String backupId;

    abstract Op op();

    @Override
    JsonObject body() {
      return op(op()).put("backupId", backupId);
    }
  }

  @Command(name = "describe", description = "One backup's record.")
  static final class Describe extends OneBackup {
    @Override
    Op op() {
      return Op.BACKUP_DESCRIBE;
    }
  }

  @Command(name = "delete", description = "Put a backup into PENDING_DELETION: restore-deleted brings it back within 7 days.")
  static final class Delete extends OneBackup {
    @Override
    Op op() {
      return Op.BACKUP_DELETE;
    }
  }

  @Command(name = "restore-deleted", description = "Bring a backup in PENDING_DELETION back to READY (within 7 days).")
  static final class RestoreDeleted extends OneBackup {
    @Override
    Op op() {
      return Op.BACKUP_RESTORE_DELETED;
    }
  }

  @Command(name = "copy-to-region", description = "Copy a READY backup into another store of the HSMs'"
      + " (backup.store.<name>=<directory> in node.properties, e.g. in HOME/agent.properties); prints the copy's record,"
      + " which names its source store, backup and cluster.")
  static final class CopyToRegion extends OneBackup {
    @Option(names = "--to", required = true, paramLabel = "STORE", description = "The store's name.")
    String to;

    @Override
    Op op() {
      return Op.BACKUP_COPY_TO_REGION;
    }

    @Override
    JsonObject body() {
      return super.body().put("to", to);
    }
  }

  @Command(name = "set-never-expires", description = "Keep a backup whatever the retention (--off: expire as the others).")
  static final class SetNeverExpires extends OneBackup {
    @Option(names = "--off", description = "Let retention delete it again.")
    boolean off;

    @Override
    Op op() {
      return Op.BACKUP_SET_NEVER_EXPIRES;
    }

    @Override
    JsonObject body() {
      return super.body().put("neverExpires", !off);
    }
  }

  @Command(name = "set-retention", description = "How many days READY backups are kept (7..379, default 90); the newest"
      + " READY backup is kept whatever its age.")
  static final class SetRetention extends BackupRequest {
    @Option(names = "--days", required = true, paramLabel = "N", description = "7..379.")
    int days;

    @Override
    protected void validate() {
      if (days < 7 || days > 379) {
        throw usage("--days must be 7..379, got " + days);
      }
    }

    @Override
    JsonObject body() {
      return op(Op.BACKUP_SET_RETENTION).put("days", days);
    }
  }

  @Command(name = "rotate-key", description = {"Rotate the backup key (PBK): one HSM makes the next generation inside"
      + " its token and the mutation log installs it on every HSM. Later backups are made under it; older ones still"
      + " restore. CO only, under the admin quorum.",
      "Escrow the new generation afterwards ('backup escrow'): an escrow opens the backups of its own generation only."})
  static final class RotateKey extends KeyRotationCommand {
    @picocli.CommandLine.Mixin
    QuorumOptions quorum;

    @Override
    Op op() {
      return Op.BACKUP_ROTATE_KEY;
    }

    @Override
    String next(Object generation) {
      return "backup key generation " + generation + " is on every HSM the log reaches;"
          + " escrow it now: ./hsmbridge backup escrow --recovery-key PEM --out FILE";
    }
  }

  @Command(name = "escrow", description = "Disaster recovery: the cluster's backup key (PBK), wrapped inside an HSM under"
      + " a recovery token's public key (from 'recovery init'), written to FILE. CO only, under the admin quorum."
      + " Keep the file and the offline recovery token apart: together they open every backup.")
  static final class Escrow extends ClientCommand {
    @Option(names = "--recovery-key", required = true, paramLabel = "PEM", description = "The recovery token's public key.")
    java.nio.file.Path recoveryKey;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "Where to write the escrow (not overwritten).")
    java.nio.file.Path outFile;

    @picocli.CommandLine.Mixin
    QuorumOptions quorum;

    private byte[] spki;

    @Override
    protected void validate() {
      try {
        spki = io.hsmbridge.cli.recovery.Pem.readPublicKey(java.nio.file.Files.readString(recoveryKey));
      } catch (java.io.IOException | IllegalArgumentException e) {
        throw usage("--recovery-key " + recoveryKey + ": " + e.getMessage());
      }
      if (java.nio.file.Files.exists(outFile)) {
        throw usage("--out " + outFile + " exists: an escrow is never overwritten");
      }
    }

    @Override
    protected int run(Hsm hsm) throws Exception {
      JsonObject reply = hsm.send(new JsonObject().put("op", Op.BACKUP_ESCROW.wire())
          .put("recoveryKey", java.util.Base64.getEncoder().encodeToString(spki)));
      RecoveryCeremony.Escrow escrow = new RecoveryCeremony.Escrow(reply.getString("cluster"),
          reply.getString("escrowedBackupKey"), reply.getString("recoveryKeySha256"), reply.getInteger("generation", 1));
      java.nio.file.Files.writeString(outFile, escrow.toJson().put("hsm", reply.getString("hsm"))
          .put("createdAt", java.time.Instant.now().toString()).encodePrettily() + "\n",
          java.nio.file.StandardOpenOption.CREATE_NEW);
      out().println("escrowed backup key generation " + escrow.generation() + " of cluster " + escrow.cluster() + " to recovery key "
          + escrow.recoveryKeySha256() + " (made by " + reply.getString("hsm") + "): " + outFile);
      return ExitCodes.OK;
    }
  }

  /**
   * {@code backup restore FILE|ID}: a new local cluster in HOME that holds exactly the backup's keys, users,
   * ACLs and quorum settings, as CloudHSM creates a cluster from a backup. It runs {@code up --from-backup}
   * (docs/disaster-recovery.md): the PBK comes from the escrow through the recovery token. Run it with a new
   * {@code --home}; the old cluster, if any is left, is not touched.
   */
  @Command(name = "restore", description = "Restore a backup into a new cluster in HOME (the same as 'up --from-backup'):"
      + " a backup file, or a backup id in --store; needs --escrow and --recovery-dir (docs/disaster-recovery.md).")
  static final class Restore extends CliCommand {
    @Parameters(index = "0", paramLabel = "FILE|ID", description = "A backup file (.hbk), or a backup id in --store.")
    String backup;

    @Option(names = "--store", paramLabel = "DIR", description = "The store that holds the backup id (a backup.dir or a"
        + " copy-to-region store).")
    java.nio.file.Path store;

    @Option(names = "--escrow", required = true, paramLabel = "FILE", description = "The escrow of the backup's cluster"
        + " (backup escrow).")
    java.nio.file.Path escrow;

    @Option(names = "--recovery-dir", required = true, paramLabel = "DIR", description = "The recovery token the escrow is for.")
    java.nio.file.Path recoveryDir;

    @Option(names = "--hsms", paramLabel = "N", description = "HSMs of the new cluster (default: "
        + ClusterCommands.DEFAULT_HSMS + ").")
    Integer hsms;

    @Option(names = "--port", paramLabel = "N", description = "TCP bridge port on 127.0.0.1 (default: "
        + ClusterCommands.DEFAULT_PORT + "; 0 = any free port).")
    Integer port;

    @Override
    protected int execute() {
      java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of("--home", home().dir().toString(), "up",
          "--from-backup", backup, "--escrow", escrow.toString(), "--recovery-dir", recoveryDir.toString()));
      if (store != null) {
        args.addAll(java.util.List.of("--store", store.toString()));
      }
      if (hsms != null) {
        args.addAll(java.util.List.of("--hsms", hsms.toString()));
      }
      if (port != null) {
        args.addAll(java.util.List.of("--port", port.toString()));
      }
      return Main.run(args.toArray(String[]::new), cli());
    }
  }
}
