package io.hsmbridge.pkcs11;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.List;
import java.util.Optional;

/**
 * The cluster's users, stored INSIDE the token so that they replicate (through the mutation log), back
 * up and survive a restart with the keys: one private CKO_DATA token object per user, CKA_APPLICATION
 * {@value #APPLICATION}, CKA_LABEL = the user name (canonical, lowercase; a label in another case, written
 * before names were canonical, is read as its lowercase name and rewritten at the user's next change), CKA_VALUE = {@code 1 | generation (8 bytes) | name |
 * role | password hash | failed logins (int) | locked (byte 0/1) | approval key (-1 = none)} (strings
 * and byte arrays as int length + bytes, big-endian).
 *
 * <p>Private objects: only the token's User (the agent) can read them. The key cache, key list/count,
 * rescan, key digest and integrity scan ignore them (they are data objects of another application).
 * Replacement, the generation counter, the in-memory cache and its {@link #rescan()}: see
 * {@link DataRecordStore}. Writes go through {@link KeyManager}'s object-write lock. In a cluster, change
 * users only by applying the mutation log (TokenApplier), so that every HSM holds the same records.
 * Thread-safe.
 */
public final class UserRecords {
  static final String APPLICATION = "hsmbridge.user";

  static final DataRecordStore.Codec<UserRecord> CODEC = new DataRecordStore.Codec<>() {
    @Override
    public String nameOf(UserRecord u) {
      return u.name();
    }

    @Override
    public void write(DataOutputStream out, UserRecord u) throws IOException {
      DataRecordStore.writeString(out, u.name());
      DataRecordStore.writeString(out, u.role());
      DataRecordStore.writeString(out, u.passwordHash());
      out.writeInt(u.failedLogins());
      out.writeByte(u.locked() ? 1 : 0);
      DataRecordStore.writeBytes(out, u.approvalKeySpki());
    }

    @Override
    public UserRecord read(DataInputStream in) throws IOException {
      return new UserRecord(DataRecordStore.readString(in), DataRecordStore.readString(in),
          DataRecordStore.readString(in), in.readInt(), DataRecordStore.readBoolean(in), DataRecordStore.readBytes(in));
    }

    /** A user stored as {@code Alice} before names were canonical is user {@code alice}. */
    @Override
    public String nameOfLabel(String label) {
      return UserRecord.isValidName(label) ? UserRecord.canonical(label) : label;
    }
  };

  private final DataRecordStore<UserRecord> store;

  UserRecords(KeyManager keys) {
    this.store = new DataRecordStore<>(APPLICATION, keys, CODEC);
  }

  /**
   * The user named {@code name}, in any case ({@code Alice} finds {@code alice}: names are canonical).
   *
   * @throws HsmException INVALID_PARAMETER when {@code name} is not a valid user name
   */
  public Optional<UserRecord> get(String name) {
    return store.get(UserRecord.checkName(name));
  }

  /** Every user, sorted by name. */
  public List<UserRecord> list() {
    return store.list();
  }

  /** Creates the user, or replaces the record of the user with the same name. */
  public void put(UserRecord user) {
    if (java.util.Objects.requireNonNull(user, "user").sealedHash()) {
      // Opened by the applier first: stored sealed, the user could never log in again.
      throw HsmException.badParam("the password hash of user " + user.name() + " is still sealed");
    }
    store.put(user);
  }

  /**
   * Deletes the user; false when the token held no such user.
   *
   * @throws HsmException INVALID_PARAMETER when {@code name} is not a valid user name
   */
  public boolean delete(String name) {
    return store.delete(UserRecord.checkName(name));
  }

  /** Re-reads the users from the token (after a change behind this process's back); sorted by name. */
  public List<UserRecord> rescan() {
    return store.rescan();
  }

  /** The slow half of reading these records at one applied index, without locks: see {@link KeyManager#scanToken}. */
  public RecordScan<UserRecord> scanToken() {
    return store.scanToken();
  }

  /** The records now, from an earlier {@link #scanToken}: see {@link KeyManager#settle}. */
  public java.util.List<UserRecord> settle(RecordScan<UserRecord> scanned) {
    return store.settle(scanned);
  }
}
