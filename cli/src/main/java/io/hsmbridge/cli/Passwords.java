package io.hsmbridge.cli;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Where the CLI takes a password from, in this order: a file named by an option, an environment
 * variable, the terminal (without echo), one line of standard input. Never from the command line: argv
 * is visible to every user of the machine ({@code ps}) and lands in shell histories.
 */
final class Passwords {
  /** The caller's own password ({@code login}). */
  static final String PASSWORD_ENV = "HSMBRIDGE_PASSWORD";
  /** A password being set: the first admin's, a new user's, a changed one. */
  static final String NEW_PASSWORD_ENV = "HSMBRIDGE_NEW_PASSWORD";

  private Passwords() {}

  /**
   * One password.
   *
   * @param file the {@code --password-file} value, or null
   * @param envVar the environment variable to look at next
   * @param what what the password is, for the prompt and errors, e.g. "password for alice"
   * @param confirm at a terminal, ask twice (a password being set: a typo would lock the user out)
   * @throws CliException when no source has one; the message names the sources
   */
  static char[] read(Cli cli, Path file, String envVar, String what, boolean confirm) {
    if (file != null) {
      return fromFile(file, what);
    }
    String env = cli.env().get(envVar);
    if (env != null && !env.isEmpty()) {
      return env.toCharArray();
    }
    if (cli.terminal() != null) {
      return fromTerminal(cli.terminal(), what, confirm);
    }
    char[] line = firstLine(cli.in());
    if (line == null || line.length == 0) {
      throw new CliException("no " + what + ": give it in a file (--password-file FILE), in $" + envVar
          + ", at a terminal, or as one line on standard input");
    }
    return line;
  }

  private static char[] fromFile(Path file, String what) {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      throw new CliException("no such file: " + file + " (the " + what + ")");
    } catch (IOException e) {
      throw new CliException("cannot read " + file + " (the " + what + "): " + e.getMessage());
    }
    try {
      char[] all = decode(bytes);
      try {
        int end = 0;
        while (end < all.length && all[end] != '\n' && all[end] != '\r') {
          end++;
        }
        if (end == 0) {
          throw new CliException(file + " is empty: it should hold the " + what + " on its first line");
        }
        return Arrays.copyOf(all, end);
      } finally {
        Arrays.fill(all, '\0');
      }
    } finally {
      Arrays.fill(bytes, (byte) 0);
    }
  }

  private static char[] fromTerminal(Cli.Terminal terminal, String what, boolean confirm) {
    char[] first = terminal.readSecret(capitalized(what) + ": ");
    if (first == null || first.length == 0) {
      throw new CliException("no " + what + " typed");
    }
    if (!confirm) {
      return first;
    }
    char[] again = terminal.readSecret("The same again: ");
    try {
      if (!Arrays.equals(first, again)) {
        Arrays.fill(first, '\0');
        throw new CliException("the two " + what + "s differ; nothing was changed");
      }
      return first;
    } finally {
      if (again != null) {
        Arrays.fill(again, '\0');
      }
    }
  }

  /** One line of standard input, read byte by byte so nothing after it is consumed; null at end of input. */
  private static char[] firstLine(InputStream in) {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    try {
      int b = in.read();
      if (b < 0) {
        return null;
      }
      while (b >= 0 && b != '\n') {
        if (b != '\r') {
          line.write(b);
        }
        b = in.read();
      }
    } catch (IOException e) {
      throw new CliException("cannot read standard input: " + e.getMessage());
    }
    byte[] bytes = line.toByteArray();
    try {
      return decode(bytes);
    } finally {
      Arrays.fill(bytes, (byte) 0);
    }
  }

  /** UTF-8 to chars without an intermediate String (which could not be wiped). */
  private static char[] decode(byte[] bytes) {
    CharBuffer cb = StandardCharsets.UTF_8.decode(ByteBuffer.wrap(bytes));
    char[] out = Arrays.copyOfRange(cb.array(), cb.position(), cb.limit());
    Arrays.fill(cb.array(), '\0');
    return out;
  }

  private static String capitalized(String s) {
    return s.isEmpty() ? s : Character.toUpperCase(s.charAt(0)) + s.substring(1);
  }
}
