package io.hsmbridge.cli;

/** The CLI's exit codes (also listed in {@code hsmbridge --help}). */
final class ExitCodes {
  static final int OK = 0;
  /** A failed operation, or "invalid" from verify/mac-verify. */
  static final int FAILURE = 1;
  /** Bad command line. */
  static final int USAGE = 2;
  /** {@code status}, {@code hsm list}: no node of the local cluster is running. */
  static final int NOT_RUNNING = 3;

  private ExitCodes() {}
}
