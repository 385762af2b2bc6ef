package io.hsmbridge.agent.backup;

import io.hsmbridge.agent.RequestReader;
import io.hsmbridge.agent.backup.store.BackupCatalog;
import io.hsmbridge.agent.backup.store.BackupId;
import io.hsmbridge.agent.backup.store.BackupRecord;
import io.hsmbridge.agent.backup.store.BackupStore;
import io.hsmbridge.agent.backup.store.DirectoryBackupStore;
import io.hsmbridge.agent.replication.TokenApplier;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Op;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Clock;
import java.util.logging.Logger;

/**
 * The {@code backup.*} requests on one HSM (CO only, audited as every request; docs/backups.md): this HSM
 * makes a backup of its own token at one applied index, and the catalog in {@code backup.dir} keeps it.
 * Without {@code backup.dir} every request says so (CONFIG_INVALID).
 */
public final class BackupOperations {
  private static final Logger LOG = Logger.getLogger(BackupOperations.class.getName());

  private final String hsmId;
  private final String cluster;
  private final HsmToken hsm;
  private final TokenApplier applier;
  /** Null when this HSM has no {@code backup.dir}. */
  private final BackupCatalog catalog;

  private final java.util.Map<String, Path> otherStores;
  /** Told true when this HSM begins a backup and false when it ends (its heartbeat says so: routing). */
  private final java.util.function.Consumer<Boolean> busy;
  private final java.util.concurrent.atomic.AtomicInteger making = new java.util.concurrent.atomic.AtomicInteger();

  /** The backup being made and how far it got (keys wrapped of all), for heartbeats; null when none. */
  private volatile Progress progress;
  /** Tests: called on the making thread after each key is wrapped. */
  private volatile java.util.function.IntConsumer keyWrapped = n -> { };
  private volatile long lastAnnounced;

  /** How far the backup being made got: {@code wrapped} of {@code keys} keys. */
  public record Progress(String backupId, int wrapped, int keys) {
    public JsonObject toJson() {
      return new JsonObject().put("backupId", backupId).put("wrapped", wrapped).put("keys", keys);
    }
  }

  /** The backup this HSM is making now and how far it got, or null. */
  public Progress progress() {
    return progress;
  }

  void onKeyWrapped(java.util.function.IntConsumer hook) {
    this.keyWrapped = hook;
  }

  /** Whether this HSM is making a backup now. */
  public boolean inProgress() {
    return making.get() > 0;
  }

  /**
   * The other backup stores of node.properties: {@code backup.store.<name>=<directory>} (a name of letters,
   * digits, '.', '-' or '_'; not "local", the name of {@code backup.dir}).
   */
  public static java.util.Map<String, Path> otherStores(java.util.Properties p) {
    java.util.Map<String, Path> stores = new java.util.TreeMap<>();
    for (String key : p.stringPropertyNames()) {
      if (key.startsWith("backup.store.")) {
        String name = key.substring("backup.store.".length());
        if (!name.matches("[A-Za-z0-9_.-]{1,64}") || name.equals("local")) {
          throw io.hsmbridge.agent.AgentConfig.invalid(key + ": a store name is 1..64 letters, digits, '.', '-' or '_',"
              + " and not 'local'");
        }
        stores.put(name, Path.of(p.getProperty(key).trim()));
      }
    }
    return stores;
  }

  /** The Raft term of the log entry at an index, or -1 when unknown. */
  private final java.util.function.LongUnaryOperator termAt;

  public BackupOperations(String hsmId, String cluster, HsmToken hsm, TokenApplier applier, BackupCatalog catalog) {
    this(hsmId, cluster, hsm, applier, catalog, index -> -1);
  }

  /**
   * @param termAt the Raft term of the log entry at an index (-1 when unknown): recorded in each backup, so
   *     that it can stand for the log up to that entry (log compaction)
   */
  public BackupOperations(String hsmId, String cluster, HsmToken hsm, TokenApplier applier, BackupCatalog catalog,
      java.util.function.LongUnaryOperator termAt) {
    this(hsmId, cluster, hsm, applier, catalog, termAt, java.util.Map.of(), busy -> { });
  }

  /** @param otherStores the stores {@code backup copy-to-region} may copy into, by name ({@link #otherStores}) */
  public BackupOperations(String hsmId, String cluster, HsmToken hsm, TokenApplier applier, BackupCatalog catalog,
      java.util.function.LongUnaryOperator termAt, java.util.Map<String, Path> otherStores,
      java.util.function.Consumer<Boolean> busy) {
    this.busy = busy;
    this.otherStores = java.util.Map.copyOf(otherStores);
    this.termAt = termAt;
    this.hsmId = hsmId;
    this.cluster = cluster;
    this.hsm = hsm;
    this.applier = applier;
    this.catalog = catalog;
  }

  /** The catalog of the directory store at {@code dir} (created 0700 when missing), or null for no directory. */
  public static BackupCatalog catalogAt(Path dir) {
    if (dir == null) {
      return null;
    }
    BackupStore store = DirectoryBackupStore.open("local", dir);
    return BackupCatalog.open(store, Clock.systemUTC(), BackupCatalog.Bounds.DEFAULTS);
  }

  /** The catalog, or null when this HSM has no {@code backup.dir}. */
  public BackupCatalog catalog() {
    return catalog;
  }

  public static boolean handles(Op op) {
    return op.wire().startsWith("backup.");
  }

  public JsonObject execute(Op op, RequestReader r) {
    if (op == Op.BACKUP_ESCROW) {
      return escrow(r); // the PBK, not the catalog: any HSM of the cluster can
    }
    if (catalog == null) {
      throw new HsmException(ErrorCode.CONFIG_INVALID, "HSM " + hsmId + " keeps no backups: set backup.dir in its node.properties");
    }
    switch (op) {
      case BACKUP_CREATE:
        return create().toJson();
      case BACKUP_LIST:
        return list();
      case BACKUP_DESCRIBE:
        return catalog.describe(id(r)).toJson();
      case BACKUP_DELETE:
        return catalog.delete(id(r)).toJson();
      case BACKUP_RESTORE_DELETED:
        return catalog.restoreDeleted(id(r)).toJson();
      case BACKUP_SET_NEVER_EXPIRES:
        return catalog.setNeverExpires(id(r), r.bool("neverExpires", true)).toJson();
      case BACKUP_COPY_TO_REGION:
        return copyTo(id(r), r.string("to")).toJson();
      case BACKUP_SET_RETENTION: {
        catalog.setRetention(r.integer("days"));
        return new JsonObject().put("retentionDays", catalog.retentionDays());
      }
      default:
        throw new HsmException(ErrorCode.UNKNOWN_OPERATION, op.wire() + " is not a backup operation");
    }
  }

  /**
   * A backup of this HSM's token at one applied index. The applier is held only while the metadata is
   * settled (BackupMaker.readAt), not while keys are wrapped: on a Raft leader a held applier holds every
   * commit. A key deleted before its wrap makes that attempt FAILED and the next one start again; the last
   * attempt holds the applier throughout, so a backup always ends. A failure leaves the backup FAILED.
   */
  public BackupRecord create() {
    making.incrementAndGet();
    tell(true);
    try {
      for (int attempt = 1; ; attempt++) {
        try {
          return createNow(attempt == ATTEMPTS);
        } catch (BackupMaker.KeyGone e) {
          if (attempt == ATTEMPTS) {
            throw e.tokenError();
          }
          LOG.info(hsmId + ": " + e.getMessage() + "; making the backup again");
        }
      }
    } finally {
      making.decrementAndGet();
      tell(false);
    }
  }

  /** Attempts of {@link #create} before the one that holds the applier throughout. */
  static final int ATTEMPTS = 3;

  /** Progress after each wrapped key; announced (a heartbeat) at most twice a second. */
  private void wrapped(String backupId, int n, int keys) {
    progress = new Progress(backupId, n, keys);
    long now = System.nanoTime();
    if (now - lastAnnounced > 500_000_000L) {
      lastAnnounced = now;
      tell(true);
    }
    keyWrapped.accept(n);
  }

  private void tell(boolean now) {
    try {
      busy.accept(now);
    } catch (RuntimeException e) {
      LOG.warning(hsmId + " could not announce the backup: " + e.getMessage());
    }
  }

  private BackupRecord createNow(boolean holdApplier) {
    BackupRecord[] begun = new BackupRecord[1];
    java.util.function.Supplier<byte[]> make = () -> {
      BackupMaker.State state = holdApplier ? BackupMaker.readAt(hsm, java.util.function.Supplier::get)
          : BackupMaker.readAt(hsm, applier::atOneIndex);
      begun[0] = catalog.begin(cluster, hsmId, state.appliedIndex());
      String id = begun[0].backupId().value();
      int keys = state.keys().size();
      progress = new Progress(id, 0, keys);
      tell(true);
      return BackupMaker.make(hsm, new BackupMaker.Origin(id, cluster, hsmId, begun[0].createdAt().toEpochMilli(),
          termOf(state.appliedIndex())), state, n -> wrapped(id, n, keys));
    };
    try {
      byte[] file;
      try {
        file = holdApplier ? applier.atOneIndex(make) : make.get();
      } finally {
        progress = null;
      }
      BackupRecord ready = catalog.complete(begun[0].backupId(), file);
      LOG.info(hsmId + " made backup " + ready.backupId().value() + " at applied index " + ready.appliedIndex() + " ("
          + file.length + " bytes)");
      return ready;
    } catch (RuntimeException e) {
      if (begun[0] != null) {
        try {
          catalog.fail(begun[0].backupId());
        } catch (RuntimeException f) {
          e.addSuppressed(f);
        }
      }
      throw e;
    }
  }

  /**
   * The PBK wrapped under the recovery token's public key ({@code recoveryKey}, an RSA SubjectPublicKeyInfo,
   * base64), by this HSM's SO (docs/disaster-recovery.md). The caller passed the admin quorum.
   */
  private JsonObject escrow(RequestReader r) {
    byte[] spki;
    try {
      spki = java.util.Base64.getDecoder().decode(r.string("recoveryKey"));
    } catch (IllegalArgumentException e) {
      throw HsmException.badParam("recoveryKey must be base64 (an RSA SubjectPublicKeyInfo)");
    }
    if (spki.length > 4096) {
      throw HsmException.badParam("recoveryKey is longer than any RSA public key this accepts");
    }
    io.hsmbridge.pkcs11.RecoveryKeys.Escrowed escrowed = hsm.recoveryKeys().escrow(spki);
    String recoveryKey = fingerprint(spki);
    LOG.info(hsmId + " escrowed the backup key to recovery key " + recoveryKey);
    return new JsonObject().put("cluster", cluster).put("hsm", hsmId).put("escrowedBackupKey",
        java.util.Base64.getEncoder().encodeToString(escrowed.wrapped())).put("recoveryKeySha256", recoveryKey)
        .put("generation", escrowed.generation());
  }

  /** {@code backup copy-to-region}: the copy's record in the other store (new id; source store, id, cluster). */
  private BackupRecord copyTo(BackupId id, String to) {
    Path dir = otherStores.get(to);
    if (dir == null) {
      throw HsmException.badParam("no backup store named '" + to + "' on HSM " + hsmId + " (configured: "
          + (otherStores.isEmpty() ? "none; add backup.store.<name>=<directory> to node.properties" : otherStores.keySet()) + ")");
    }
    BackupCatalog target = BackupCatalog.open(DirectoryBackupStore.open(to, dir), Clock.systemUTC(), BackupCatalog.Bounds.DEFAULTS);
    BackupRecord copy = catalog.copyTo(id, target);
    LOG.info(hsmId + " copied backup " + id.value() + " to store " + to + " as " + copy.backupId().value());
    return copy;
  }

  /** SHA-256 of a public key, hex: what an operator compares with the recovery token's. */
  public static String fingerprint(byte[] spki) {
    try {
      return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(spki));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private long termOf(long index) {
    try {
      return index == 0 ? -1 : termAt.applyAsLong(index);
    } catch (RuntimeException e) {
      LOG.warning(hsmId + " cannot read the term of log entry " + index + " for the backup: " + e.getMessage());
      return -1;
    }
  }

  private JsonObject list() {
    JsonArray backups = new JsonArray();
    for (BackupStore.Entry e : catalog.list()) {
      backups.add(e.isReadable() ? e.record().toJson()
          : new JsonObject().put("backupId", e.id().value()).put("unreadable", e.problem()));
    }
    return new JsonObject().put("backups", backups).put("retentionDays", catalog.retentionDays());
  }

  private static BackupId id(RequestReader r) {
    return BackupId.of(r.string("backupId"));
  }
}
