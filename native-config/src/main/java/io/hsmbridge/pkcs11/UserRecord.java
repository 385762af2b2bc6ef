package io.hsmbridge.pkcs11;

import java.util.Arrays;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * One cluster user as stored in every HSM ({@link UserRecords}) and carried by the mutation log.
 *
 * <p>{@code passwordHash} is an Argon2id hash in PHC string form (what {@code PasswordHash.hash} in
 * cluster-agent produces), never a password: anything else is refused, so a plaintext password cannot
 * be stored or replicated by mistake. {@link #toString()} and every exception here leave the hash out.
 *
 * @param name the user name, {@value #NAME_PATTERN}, held in its canonical form: lowercase (names are
 *     ASCII, so {@code Alice} and {@code alice} are one user; see {@link #checkName})
 * @param role the cluster role (e.g. PRECO, CO, CU, AU), {@value #ROLE_PATTERN}; what roles exist and
 *     mean is decided by the caller
 * @param passwordHash Argon2id PHC string, or in a log entry that string sealed ({@link #SEALED_HASH_PREFIX}),
 *     at most {@value #MAX_HASH_CHARS} characters
 * @param failedLogins consecutive failed logins, at least 0
 * @param locked whether the user is locked out
 * @param approvalKeySpki the user's quorum-approval public key as DER SubjectPublicKeyInfo, or null;
 *     at most {@value #MAX_SPKI_BYTES} bytes, not parsed here
 */
public record UserRecord(String name, String role, String passwordHash, int failedLogins, boolean locked,
    byte[] approvalKeySpki) {
  public static final String NAME_PATTERN = "[A-Za-z0-9_.-]{1,32}";
  public static final String ROLE_PATTERN = "[A-Za-z0-9_-]{1,16}";
  public static final int MAX_HASH_CHARS = 256;
  public static final int MAX_SPKI_BYTES = 16 * 1024;
  private static final Pattern NAME = Pattern.compile(NAME_PATTERN);
  private static final Pattern ROLE = Pattern.compile(ROLE_PATTERN);
  /** The shape of {@code PasswordHash}'s output: {@code $argon2id$v=19$m=..,t=..,p=..$<salt b64>$<tag b64>}. */
  private static final Pattern ARGON2ID_PHC =
      Pattern.compile("\\$argon2id\\$v=19\\$m=[0-9]{1,8},t=[0-9]{1,3},p=[0-9]{1,3}\\$[A-Za-z0-9+/]{11,}\\$[A-Za-z0-9+/]{11,}");
  /**
   * How a hash sealed for the log starts (cluster-agent {@code HashSeal}: AES-GCM inside the token, base64 of
   * IV and ciphertext follows). Only log entries carry it; a token stores the hash itself ({@link UserRecords}
   * refuses a sealed one).
   */
  public static final String SEALED_HASH_PREFIX = "$hsb-sealed$v=1$";
  private static final Pattern SEALED = Pattern.compile("\\$hsb-sealed\\$v=1\\$[A-Za-z0-9+/]{40,}");

  /**
   * @throws HsmException INVALID_PARAMETER for a bad name, role, hash, count or key size (the message
   *     never repeats the rejected hash)
   */
  public UserRecord {
    name = checkName(name);
    if (role == null || !ROLE.matcher(role).matches()) {
      throw HsmException.badParam("role must match " + ROLE_PATTERN);
    }
    if (passwordHash == null || passwordHash.length() > MAX_HASH_CHARS
        || !(ARGON2ID_PHC.matcher(passwordHash).matches() || SEALED.matcher(passwordHash).matches())) {
      throw HsmException.badParam("the password hash of user " + name + " is not an Argon2id PHC string");
    }
    if (failedLogins < 0) {
      throw HsmException.badParam("failed login count must not be negative");
    }
    if (approvalKeySpki != null && (approvalKeySpki.length == 0 || approvalKeySpki.length > MAX_SPKI_BYTES)) {
      throw HsmException.badParam("approval key must be 1.." + MAX_SPKI_BYTES + " bytes of SubjectPublicKeyInfo");
    }
    approvalKeySpki = approvalKeySpki == null ? null : approvalKeySpki.clone();
  }

  /** Whether {@code name} is a valid user name ({@value #NAME_PATTERN}). */
  public static boolean isValidName(String name) {
    return name != null && NAME.matcher(name).matches();
  }

  /**
   * User names compare case-insensitively everywhere (creation, login, lookups, ACL shares, approvals):
   * every name is held in this canonical form, its ASCII lowercase. Records stored before names were
   * canonical are read under their canonical name too ({@link UserRecords}).
   *
   * @return {@code name} in canonical (lowercase) form
   * @throws HsmException INVALID_PARAMETER when {@code name} is not a valid user name
   */
  public static String checkName(String name) {
    if (!isValidName(name)) {
      throw HsmException.badParam("user name must match " + NAME_PATTERN);
    }
    return canonical(name);
  }

  /** The canonical (lowercase) form of a name that {@link #isValidName} accepted. */
  static String canonical(String validName) {
    return validName.toLowerCase(java.util.Locale.ROOT);
  }

  @Override
  public byte[] approvalKeySpki() {
    return approvalKeySpki == null ? null : approvalKeySpki.clone();
  }

  /** Whether the hash is sealed for the log ({@link #SEALED_HASH_PREFIX}), not the Argon2id hash itself. */
  public boolean sealedHash() {
    return passwordHash.startsWith(SEALED_HASH_PREFIX);
  }

  public UserRecord withRole(String newRole) {
    return new UserRecord(name, newRole, passwordHash, failedLogins, locked, approvalKeySpki);
  }

  public UserRecord withPasswordHash(String newHash) {
    return new UserRecord(name, role, newHash, failedLogins, locked, approvalKeySpki);
  }

  public UserRecord withFailedLogins(int count) {
    return new UserRecord(name, role, passwordHash, count, locked, approvalKeySpki);
  }

  public UserRecord withLocked(boolean isLocked) {
    return new UserRecord(name, role, passwordHash, failedLogins, isLocked, approvalKeySpki);
  }

  public UserRecord withApprovalKey(byte[] spki) {
    return new UserRecord(name, role, passwordHash, failedLogins, locked, spki);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof UserRecord u && name.equals(u.name) && role.equals(u.role) && passwordHash.equals(u.passwordHash)
        && failedLogins == u.failedLogins && locked == u.locked && Arrays.equals(approvalKeySpki, u.approvalKeySpki);
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, role, passwordHash, failedLogins, locked, Arrays.hashCode(approvalKeySpki));
  }

  /** Without the password hash. */
  @Override
  public String toString() {
    return "UserRecord[" + name + ", role " + role + ", failedLogins " + failedLogins + (locked ? ", locked" : "")
        + (approvalKeySpki == null ? "" : ", approval key " + approvalKeySpki.length + " bytes") + "]";
  }
}
