package io.hsmbridge.cli;

import java.nio.file.Path;
import java.util.List;

/**
 * A node of the local cluster failed to start or to become ready: the one-line message names it, and
 * the last lines of its log show why (printed to stdout before the error line).
 */
final class NodeFailure extends CliException {
  private static final long serialVersionUID = 1L;

  private final transient Path log;
  private final transient List<String> logTail;

  NodeFailure(String message, Path log, List<String> logTail) {
    super(message);
    this.log = log;
    this.logTail = List.copyOf(logTail);
  }

  Path log() {
    return log;
  }

  List<String> logTail() {
    return logTail;
  }
}
