package io.hsmbridge.protocol;

/**
 * The log sequence a refused request left applied on the HSM that refused it, written at the end of the
 * agent's error text to the front door (an error between processes is a code and a text, nothing more).
 * A failed login commits its outcome (the cluster-wide failure count) before it is refused: the front door
 * reads the sequence so that the user's next reads go to an HSM that applied it (read your writes), and
 * strips it before the client sees the error, because only a login of an existing user commits anything and
 * a sequence would tell which user names exist.
 */
public final class SequenceNote {
  private static final String OPEN = " [applied as sequence ";
  private static final String CLOSE = "]";

  private SequenceNote() {}

  /** {@code message} with {@code seq} noted at its end. */
  public static String append(String message, long seq) {
    return message + OPEN + seq + CLOSE;
  }

  /** An error text without its note, and the sequence noted (0 when there was none). */
  public record Read(String message, long seq) {}

  public static Read read(String message) {
    if (message == null || !message.endsWith(CLOSE)) {
      return new Read(message, 0);
    }
    int at = message.lastIndexOf(OPEN);
    if (at < 0) {
      return new Read(message, 0);
    }
    String digits = message.substring(at + OPEN.length(), message.length() - CLOSE.length());
    if (digits.isEmpty() || digits.length() > 19 || !digits.chars().allMatch(c -> c >= '0' && c <= '9')) {
      return new Read(message, 0);
    }
    try {
      return new Read(message.substring(0, at), Long.parseLong(digits));
    } catch (NumberFormatException e) {
      return new Read(message, 0); // more than Long.MAX_VALUE: not a note of ours
    }
  }
}
