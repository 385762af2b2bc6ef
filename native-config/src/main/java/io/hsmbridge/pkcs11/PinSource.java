package io.hsmbridge.pkcs11;

import io.hsmbridge.protocol.ErrorCode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Where a PIN comes from: a file or an environment variable, never argv. The PIN itself is not held:
 * it is read when needed and the caller's buffer is zeroed right after use ({@link #use}). Neither
 * {@link #toString()} nor any error message contains the PIN.
 */
public final class PinSource {
  /** Used by {@link #use}; may throw the token's exceptions. */
  @FunctionalInterface
  public interface PinAction<T, E extends Exception> {
    T apply(char[] pin) throws E;
  }

  private final Path file;
  private final String envVar;

  private PinSource(Path file, String envVar) {
    this.file = file;
    this.envVar = envVar;
  }

  public static PinSource fromFile(Path file) {
    return new PinSource(file, null);
  }

  public static PinSource fromEnv(String variable) {
    return new PinSource(null, variable);
  }

  /** Runs {@code action} with the PIN, then zeroes the PIN buffer whatever happens. */
  public <T, E extends Exception> T use(PinAction<T, E> action) throws E {
    char[] pin = read();
    try {
      return action.apply(pin);
    } finally {
      Arrays.fill(pin, '\0');
    }
  }

  /** Reads the PIN; the caller must zero the returned array. Trailing CR/LF are stripped. */
  char[] read() {
    if (file != null) {
      byte[] bytes;
      try {
        bytes = Files.readAllBytes(file);
      } catch (IOException e) {
        throw new HsmException(ErrorCode.CONFIG_INVALID, "cannot read PIN file " + file + " (" + e.getClass().getSimpleName() + ")");
      }
      try {
        CharBuffer chars = StandardCharsets.UTF_8.decode(ByteBuffer.wrap(bytes));
        char[] pin = new char[chars.remaining()];
        chars.get(pin);
        Arrays.fill(chars.array(), '\0');
        return checked(stripNewline(pin), "PIN file " + file);
      } finally {
        Arrays.fill(bytes, (byte) 0);
      }
    }
    String value = System.getenv(envVar);
    if (value == null) {
      throw new HsmException(ErrorCode.CONFIG_INVALID, "environment variable " + envVar + " (PIN) is not set");
    }
    return checked(stripNewline(value.toCharArray()), "environment variable " + envVar);
  }

  private static char[] checked(char[] pin, String where) {
    if (pin.length == 0) {
      throw new HsmException(ErrorCode.CONFIG_INVALID, where + " holds an empty PIN");
    }
    return pin;
  }

  private static char[] stripNewline(char[] pin) {
    int n = pin.length;
    while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r')) {
      n--;
    }
    if (n == pin.length) {
      return pin;
    }
    char[] out = Arrays.copyOf(pin, n);
    Arrays.fill(pin, '\0');
    return out;
  }

  @Override
  public String toString() {
    return file != null ? "PinSource[file=" + file + "]" : "PinSource[env=" + envVar + "]";
  }
}
