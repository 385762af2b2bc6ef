package io.hsmbridge.cli;

/**
 * A failure the CLI reports as one line {@code hsmbridge: <message>} with its exit code. Messages never
 * hold secrets.
 */
class CliException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  static final String NOT_RUNNING = "no local cluster running (start it with ./hsmbridge up)";

  private final int exitCode;

  CliException(String message) {
    this(ExitCodes.FAILURE, message, null);
  }

  CliException(int exitCode, String message, Throwable cause) {
    super(message, cause);
    this.exitCode = exitCode;
  }

  int exitCode() {
    return exitCode;
  }
}
