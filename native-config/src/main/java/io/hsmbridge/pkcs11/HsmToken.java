package io.hsmbridge.pkcs11;

import java.util.logging.Logger;
import org.xipki.pkcs11.wrapper.Token;
import org.xipki.pkcs11.wrapper.TokenException;
import org.xipki.pkcs11.wrapper.TokenInfo;

/**
 * One HSM: a token in a loaded PKCS#11 library, opened, checked and ready for work. Opening runs, in
 * order: load library, select vendor profile, integrity scan of the object store, find (or initialise)
 * the token, log in, probe the token against its profile, check that objects are searchable, and fill
 * the key handle cache. Any step that fails throws an {@link HsmException} saying which and why.
 *
 * <p>Thread-safe. All operations block: call them from worker threads.
 */
public final class HsmToken implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(HsmToken.class.getName());

  private final Pkcs11Library library;
  private final Token token;
  private final VendorProfile profile;
  private final SessionPool pool;
  private final KeyManager keys;
  private final CryptoService crypto;
  private final ClusterKeys clusterKeys;
  private final BackupKeys backupKeys;
  private final RecoveryKeys recoveryKeys;
  private final AppliedIndexRecord appliedIndex;
  private final AuditKey auditKey;
  private final AuditAnchorRecord auditAnchor;
  private final UserRecords users;
  private final KeyAcls keyAcls;
  private final KeyCertificates keyCertificates;
  private final ClusterSettings settings;
  private final String label;
  private final String serial;
  private final String manufacturer;
  private final IntegrityScan.Report integrity;

  private HsmToken(Pkcs11Library library, Token token, VendorProfile profile, SessionPool pool, TokenInfo info,
      IntegrityScan.Report integrity, PinSource soPin) {
    this.library = library;
    this.token = token;
    this.profile = profile;
    this.pool = pool;
    this.integrity = integrity;
    KeyCache cache = new KeyCache();
    this.keys = new KeyManager(pool, cache);
    this.crypto = new CryptoService(pool, keys, profile);
    this.clusterKeys = new ClusterKeys(pool, keys, soPin, profile);
    this.backupKeys = new BackupKeys(pool, keys, clusterKeys, soPin);
    this.recoveryKeys = new RecoveryKeys(pool, clusterKeys, soPin);
    this.appliedIndex = new AppliedIndexRecord(pool, keys);
    this.auditKey = new AuditKey(pool, keys);
    this.auditAnchor = new AuditAnchorRecord(keys);
    this.users = new UserRecords(keys);
    this.keyAcls = new KeyAcls(keys);
    this.keyCertificates = new KeyCertificates(keys);
    this.settings = new ClusterSettings(keys);
    this.label = info.getLabel().trim();
    this.serial = info.getSerialNumber().trim();
    this.manufacturer = info.getManufacturerID().trim();
  }

  /** Opens the configured token; see the class comment for the steps. */
  public static HsmToken open(TokenConfig config) {
    Pkcs11Library lib = Pkcs11Library.load(config.libraryPath());
    VendorProfile profile = VendorProfiles.load(config.profilesDir())
        .select(lib.manufacturer(), lib.description(), lib.versionMajor(), lib.versionMinor());
    IntegrityScan.Report integrity = "softhsm2-files".equals(profile.objectStore())
        ? IntegrityScan.scanSoftHsmFiles(config.tokenLabel(), config.repairCorruption())
        : new IntegrityScan.Report(java.util.List.of(), null);
    Token token = TokenSlots.findOrInitialize(lib, config);
    int maxSessions = profile.maxSessions() > 0 ? Math.min(profile.maxSessions(), config.maxSessions()) : config.maxSessions();
    SessionPool pool = new SessionPool(token, config.userPin(), maxSessions, config.borrowTimeout());
    try {
      pool.loginNow();
      ProfileProbe.check(token, pool, profile);
      IntegrityScan.checkSearchable(pool);
      HsmToken hsm = new HsmToken(lib, token, profile, pool, token.getTokenInfo(), integrity, config.soPin());
      hsm.keys.reload();
      LOG.info(() -> "opened token '" + hsm.label + "' (serial " + hsm.serial + ") with profile " + profile.name()
          + ", " + hsm.keys.count() + " keys, " + pool.capacity() + " sessions");
      return hsm;
    } catch (TokenException e) {
      pool.close();
      throw Ckr.wrap(e, "reading token info");
    } catch (RuntimeException e) {
      pool.close();
      throw e;
    }
  }

  public KeyManager keys() {
    return keys;
  }

  public CryptoService crypto() {
    return crypto;
  }

  /** The cluster key and replication of keys between HSMs (SO steps need the SO PIN in the config). */
  public ClusterKeys clusterKeys() {
    return clusterKeys;
  }

  /** The persistent backup key and the token's part of making and restoring backups (SO steps need the SO PIN). */
  /** Disaster recovery of the backup key: escrow, the recovery token's side, installation in a fresh HSM. */
  public RecoveryKeys recoveryKeys() {
    return recoveryKeys;
  }

  public BackupKeys backupKeys() {
    return backupKeys;
  }

  /** The index of the last mutation-log entry applied to this token, stored in the token (replication). */
  public AppliedIndexRecord appliedIndex() {
    return appliedIndex;
  }

  /** This HSM's audit-chain HMAC key (made in the token on first use, never extractable). */
  public AuditKey auditKey() {
    return auditKey;
  }

  /** Where this HSM's audit log had got to (last sequence and chain MAC), kept in the token. */
  public AuditAnchorRecord auditAnchor() {
    return auditAnchor;
  }

  /** The cluster's users, stored in the token as private data objects (change them through the mutation log). */
  public UserRecords users() {
    return users;
  }

  /** Key ownership and shares, stored in the token as private data objects (change them through the mutation log). */
  public KeyAcls keyAcls() {
    return keyAcls;
  }

  /** Certificate chains of asymmetric keys, stored in the token as private data objects (change them through the mutation log). */
  public KeyCertificates keyCertificates() {
    return keyCertificates;
  }

  /** Quorum values and per-user switches, stored in the token (change them through the mutation log). */
  public ClusterSettings settings() {
    return settings;
  }

  public VendorProfile profile() {
    return profile;
  }

  public String label() {
    return label;
  }

  public String serial() {
    return serial;
  }

  public String manufacturer() {
    return manufacturer;
  }

  public IntegrityScan.Report integrity() {
    return integrity;
  }

  public int sessionCapacity() {
    return pool.capacity();
  }

  public int sessionsInUse() {
    return pool.inUse();
  }

  public Pkcs11Library library() {
    return library;
  }

  /** The session pool, for tests and diagnostics in this package. */
  SessionPool pool() {
    return pool;
  }

  /** A session outside the pool, for the benchmark baseline only ({@link DirectPkcs11}). */
  org.xipki.pkcs11.wrapper.Session openUnpooledSession() throws TokenException {
    return token.openSession(true);
  }

  /** Fails with TOKEN_UNAVAILABLE when the token does not answer. */
  public void ping() {
    pool.call("ping", s -> s.getSessionInfo());
  }

  @Override
  public void close() {
    pool.close();
  }

  @Override
  public String toString() {
    return "HsmToken[" + label + ", serial " + serial + ", profile " + profile.name() + "]";
  }
}
