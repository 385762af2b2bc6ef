package io.hsmbridge.agent.backup.store;

import java.security.SecureRandom;
import java.util.regex.Pattern;

/**
 * A backup's id: {@code backup-} and 11 to 16 characters of lowercase base32 ({@code a-z}, {@code 2-7}),
 * the shape of CloudHSM's ids, lower case only so that two ids never name one file on a case-insensitive
 * file system. The id is the file name in a {@link DirectoryBackupStore}; the strict pattern is what
 * keeps every id inside the store's directory (no separator, no dot, bounded length), so no other check
 * is needed before an id becomes a path. Immutable.
 *
 * @param value the id as written
 */
public record BackupId(String value) {
  private static final Pattern PATTERN = Pattern.compile("backup-[a-z2-7]{11,16}");
  private static final char[] BASE32 = "abcdefghijklmnopqrstuvwxyz234567".toCharArray();
  private static final int RANDOM_CHARS = 16;
  private static final SecureRandom RANDOM = new SecureRandom();

  /** Refuses (INVALID_PARAMETER) anything that is not a backup id. */
  public BackupId {
    if (!isValid(value)) {
      throw BackupFailures.badParam("not a backup id (expected backup- and 11..16 of a-z, 2-7): "
          + shown(value));
    }
  }

  /** The same as the constructor, for callers that read ids from a request or the command line. */
  public static BackupId of(String value) {
    return new BackupId(value);
  }

  public static boolean isValid(String value) {
    return value != null && value.length() <= 23 && PATTERN.matcher(value).matches();
  }

  /** A new id with 80 random bits. */
  public static BackupId random() {
    StringBuilder s = new StringBuilder("backup-");
    for (int i = 0; i < RANDOM_CHARS; i++) {
      s.append(BASE32[RANDOM.nextInt(BASE32.length)]);
    }
    return new BackupId(s.toString());
  }

  /** An id refused is echoed in the error, cut short and without control characters (it came from outside). */
  private static String shown(String value) {
    if (value == null) {
      return "null";
    }
    String cut = value.length() > 40 ? value.substring(0, 40) + "..." : value;
    return "'" + cut.replaceAll("\\p{Cntrl}", "?") + "'";
  }

  @Override
  public String toString() {
    return value;
  }
}
