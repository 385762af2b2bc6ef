package io.hsmbridge.pkcs11;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Small named numbers the cluster keeps beside its users and keys, stored INSIDE the token so they
 * replicate, back up and survive restarts with them: quorum values ({@code quorum.admin},
 * {@code quorum.key.<keyId>.management}, {@code quorum.key.<keyId>.usage}) and per-user switches
 * ({@code mfa.<user>}). One private CKO_DATA object per setting, CKA_APPLICATION {@value #APPLICATION},
 * CKA_LABEL = the name, CKA_VALUE = {@code 1 | generation | name | value (8 bytes)}; see
 * {@link DataRecordStore}. An absent setting reads as its default. In a cluster, change settings only
 * by applying the mutation log. Thread-safe.
 */
public final class ClusterSettings {
  static final String APPLICATION = "hsmbridge.setting";
  public static final String NAME_PATTERN = "[a-z][A-Za-z0-9_.-]{0,95}";
  private static final Pattern NAME = Pattern.compile(NAME_PATTERN);

  /** One setting; its name is held in lowercase (a setting that names a user, {@code mfa.<user>}, follows the user name's canonical form). */
  public record Setting(String name, long value) {
    public Setting {
      checkName(name);
      name = name.toLowerCase(java.util.Locale.ROOT);
    }
  }

  static final DataRecordStore.Codec<Setting> CODEC = new DataRecordStore.Codec<>() {
    @Override
    public String nameOf(Setting s) {
      return s.name();
    }

    @Override
    public void write(DataOutputStream out, Setting s) throws IOException {
      DataRecordStore.writeString(out, s.name());
      out.writeLong(s.value());
    }

    @Override
    public Setting read(DataInputStream in) throws IOException {
      return new Setting(DataRecordStore.readString(in), in.readLong());
    }

    /** {@code mfa.Alice}, stored before user names were canonical, is {@code mfa.alice}. */
    @Override
    public String nameOfLabel(String label) {
      return label.toLowerCase(java.util.Locale.ROOT);
    }
  };

  private final DataRecordStore<Setting> store;

  ClusterSettings(KeyManager keys) {
    this.store = new DataRecordStore<>(APPLICATION, keys, CODEC);
  }

  /** @throws HsmException INVALID_PARAMETER when {@code name} does not match {@value #NAME_PATTERN} */
  public static void checkName(String name) {
    if (name == null || !NAME.matcher(name).matches()) {
      throw HsmException.badParam("setting name must match " + NAME_PATTERN);
    }
  }

  /** The setting's value, or {@code defaultValue} when the token holds none. */
  public long get(String name, long defaultValue) {
    checkName(name);
    Optional<Setting> s = store.get(name.toLowerCase(java.util.Locale.ROOT));
    return s.isPresent() ? s.get().value() : defaultValue;
  }

  /** Creates or replaces the setting. */
  public void put(String name, long value) {
    store.put(new Setting(name, value));
  }

  /** Removes the setting (it reads as its default again); false when the token held none. */
  public boolean delete(String name) {
    checkName(name);
    return store.delete(name.toLowerCase(java.util.Locale.ROOT));
  }

  /** Every setting, sorted by name. */
  public java.util.List<Setting> list() {
    return store.list();
  }

  /** Re-reads the settings from the token (after a change behind this process's back). */
  public java.util.List<Setting> rescan() {
    return store.rescan();
  }

  /** The slow half of reading these records at one applied index, without locks: see {@link KeyManager#scanToken}. */
  public RecordScan<Setting> scanToken() {
    return store.scanToken();
  }

  /** The records now, from an earlier {@link #scanToken}: see {@link KeyManager#settle}. */
  public java.util.List<Setting> settle(RecordScan<Setting> scanned) {
    return store.settle(scanned);
  }
}
