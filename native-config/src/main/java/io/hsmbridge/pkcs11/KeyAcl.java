package io.hsmbridge.pkcs11;

import java.util.Collections;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;

/**
 * Who may use one key: its owner and the users it is shared with, as stored in every HSM
 * ({@link KeyAcls}) and carried by the mutation log. Only names are checked here; whether those users
 * exist, and what an owner or a sharee may do, is the caller's policy.
 *
 * @param keyId the key's id, 32 hex characters (normalised to lowercase)
 * @param owner the owning user's name ({@link UserRecord#NAME_PATTERN}), canonical (lowercase) like every
 *     user name here ({@link UserRecord#checkName})
 * @param shares the users the key is shared with, without the owner, at most {@value #MAX_SHARES};
 *     held as an unmodifiable set sorted by name
 */
public record KeyAcl(String keyId, String owner, Set<String> shares) {
  public static final int MAX_SHARES = 1024;

  /** @throws HsmException INVALID_PARAMETER for a bad key id, owner or share */
  public KeyAcl {
    keyId = normaliseKeyId(keyId);
    owner = UserRecord.checkName(owner);
    Objects.requireNonNull(shares, "shares");
    TreeSet<String> sorted = new TreeSet<>();
    for (String user : shares) {
      sorted.add(UserRecord.checkName(user));
    }
    if (sorted.contains(owner)) {
      throw HsmException.badParam("a key is not shared with its own owner");
    }
    if (sorted.size() > MAX_SHARES) {
      throw HsmException.badParam("a key can be shared with at most " + MAX_SHARES + " users");
    }
    shares = Collections.unmodifiableSortedSet(sorted);
  }

  /** An ACL with an owner and no shares. */
  public static KeyAcl ownedBy(String keyId, String owner) {
    return new KeyAcl(keyId, owner, Set.of());
  }

  /** Whether {@code keyId} is a key id (32 hex characters, either case). */
  public static boolean isKeyId(String keyId) {
    return KeyCache.parseKeyId(keyId) != null;
  }

  /** The key id in lowercase; @throws HsmException INVALID_PARAMETER when it is not 32 hex characters */
  static String normaliseKeyId(String keyId) {
    if (!isKeyId(keyId)) {
      throw HsmException.badParam("key id must be 32 hex characters");
    }
    return keyId.toLowerCase(Locale.ROOT);
  }

  /** Whether {@code user} is the owner or one of the users the key is shared with. */
  public boolean canUse(String user) {
    if (!UserRecord.isValidName(user)) {
      return false;
    }
    String u = UserRecord.canonical(user);
    return owner.equals(u) || shares.contains(u);
  }

  public KeyAcl withShare(String user) {
    TreeSet<String> s = new TreeSet<>(shares);
    s.add(UserRecord.checkName(user));
    return new KeyAcl(keyId, owner, s);
  }

  public KeyAcl withoutShare(String user) {
    TreeSet<String> s = new TreeSet<>(shares);
    s.remove(UserRecord.checkName(user));
    return new KeyAcl(keyId, owner, s);
  }

  public KeyAcl withOwner(String newOwner) {
    TreeSet<String> s = new TreeSet<>(shares);
    s.remove(UserRecord.checkName(newOwner));
    return new KeyAcl(keyId, newOwner, s);
  }
}
