package io.hsmbridge.pkcs11;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * Key ownership and shares, stored INSIDE the token beside the keys: one private CKO_DATA token object
 * per key, CKA_APPLICATION {@value #APPLICATION}, CKA_LABEL = the key id (32 lowercase hex characters),
 * CKA_VALUE = {@code 1 | generation (8 bytes) | key id | owner | share count (int) | shares...} (strings
 * as int length + UTF-8, big-endian, shares sorted).
 *
 * <p>An ACL is not tied to the key object by the token: deleting a key does not delete its ACL (the
 * mutation log's DELETE_KEY does both). The key cache, key list/count, rescan, key digest and integrity
 * scan ignore these objects. Replacement, generations, the in-memory cache (so an access check never
 * searches the token) and {@link #rescan()}: see {@link DataRecordStore}. Writes go through
 * {@link KeyManager}'s object-write lock. Thread-safe.
 */
public final class KeyAcls {
  static final String APPLICATION = "hsmbridge.acl";

  static final DataRecordStore.Codec<KeyAcl> CODEC = new DataRecordStore.Codec<>() {
    @Override
    public String nameOf(KeyAcl a) {
      return a.keyId();
    }

    @Override
    public void write(DataOutputStream out, KeyAcl a) throws IOException {
      DataRecordStore.writeString(out, a.keyId());
      DataRecordStore.writeString(out, a.owner());
      out.writeInt(a.shares().size());
      for (String user : a.shares()) {
        DataRecordStore.writeString(out, user);
      }
    }

    @Override
    public KeyAcl read(DataInputStream in) throws IOException {
      String keyId = DataRecordStore.readString(in);
      String owner = DataRecordStore.readString(in);
      List<String> shares = DataRecordStore.readStrings(in, KeyAcl.MAX_SHARES);
      if (Set.copyOf(shares).size() != shares.size()) {
        throw new IllegalArgumentException("duplicate share");
      }
      KeyAcl acl = new KeyAcl(keyId, owner, Set.copyOf(shares));
      if (!acl.keyId().equals(keyId)) {
        throw new IllegalArgumentException("key id not in lowercase");
      }
      return acl;
    }
  };

  private final DataRecordStore<KeyAcl> store;

  KeyAcls(KeyManager keys) {
    this.store = new DataRecordStore<>(APPLICATION, keys, CODEC);
  }

  /**
   * The ACL of key {@code keyId} (either case).
   *
   * @throws HsmException INVALID_PARAMETER when {@code keyId} is not 32 hex characters
   */
  public Optional<KeyAcl> get(String keyId) {
    return store.get(KeyAcl.normaliseKeyId(keyId));
  }

  /** Every ACL, sorted by key id. */
  public List<KeyAcl> list() {
    return store.list();
  }

  /** Creates or replaces the ACL of {@code acl.keyId()}. Does not check that the key exists. */
  public void put(KeyAcl acl) {
    store.put(Objects.requireNonNull(acl, "acl"));
  }

  /**
   * Deletes the ACL of {@code keyId}; false when the token held none.
   *
   * @throws HsmException INVALID_PARAMETER when {@code keyId} is not 32 hex characters
   */
  public boolean delete(String keyId) {
    return store.delete(KeyAcl.normaliseKeyId(keyId));
  }

  /** Re-reads the ACLs from the token (after a change behind this process's back); sorted by key id. */
  public List<KeyAcl> rescan() {
    return store.rescan();
  }

  /** The slow half of reading these records at one applied index, without locks: see {@link KeyManager#scanToken}. */
  public RecordScan<KeyAcl> scanToken() {
    return store.scanToken();
  }

  /** The records now, from an earlier {@link #scanToken}: see {@link KeyManager#settle}. */
  public java.util.List<KeyAcl> settle(RecordScan<KeyAcl> scanned) {
    return store.settle(scanned);
  }
}
