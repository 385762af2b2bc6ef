package io.hsmbridge.cli;

import io.hsmbridge.client.HsmBridgeException;

/** What to do next, added to the one-line error of the user-model failures (docs/users.md). */
final class AuthHints {
  static final String NOT_LOGGED_IN = "not logged in or session expired: run hsmbridge login --user NAME";

  private AuthHints() {}

  static String explain(HsmBridgeException e) {
    return switch (e.code()) {
      case NOT_AUTHENTICATED -> NOT_LOGGED_IN;
      case ACCESS_DENIED -> e.getMessage() + " (see 'hsmbridge whoami'; roles: docs/users.md)";
      case QUORUM_NOT_MET -> e.getMessage() + " (request a token with --quorum-request FILE, collect approvals with"
          + " 'hsmbridge quorum approve', run again with --quorum-token FILE --approval FILE...)";
      default -> e.getMessage();
    };
  }
}
