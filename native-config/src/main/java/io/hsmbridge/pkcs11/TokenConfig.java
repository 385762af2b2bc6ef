package io.hsmbridge.pkcs11;

import io.hsmbridge.protocol.ErrorCode;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Everything needed to open one HSM: which library, which token, where its PINs come from, and pool
 * limits. Immutable and validated on construction; {@link #toString()} shows PIN sources, not PINs.
 *
 * @param libraryPath the PKCS#11 module (.so)
 * @param tokenLabel token label to select (or null when selecting by serial)
 * @param tokenSerial token serial to select (or null)
 * @param userPin PIN of the token's User (key work)
 * @param soPin PIN of the token's SO (token initialisation and, later, trusted objects); may be null
 * @param initialize when true and no token has the label, initialise a free slot with it
 * @param maxSessions upper bound on pooled sessions (the token's own max also applies)
 * @param borrowTimeout how long a request may wait for a session
 * @param profilesDir operator vendor profiles, or null for the built-in ones only
 * @param repairCorruption when true, the start-up integrity scan quarantines broken objects
 */
public record TokenConfig(
    Path libraryPath,
    String tokenLabel,
    String tokenSerial,
    PinSource userPin,
    PinSource soPin,
    boolean initialize,
    int maxSessions,
    Duration borrowTimeout,
    Path profilesDir,
    boolean repairCorruption) {

  public static final int DEFAULT_MAX_SESSIONS = 8;
  public static final Duration DEFAULT_BORROW_TIMEOUT = Duration.ofSeconds(5);

  public TokenConfig {
    if (libraryPath == null) {
      throw invalid("pkcs11.library is required");
    }
    if ((tokenLabel == null || tokenLabel.isBlank()) && (tokenSerial == null || tokenSerial.isBlank())) {
      throw invalid("token.label or token.serial is required");
    }
    if (tokenLabel != null && tokenLabel.length() > 32) {
      throw invalid("token.label must be at most 32 characters");
    }
    if (userPin == null) {
      throw invalid("pin.user.file or pin.user.env is required");
    }
    if (initialize && (soPin == null || tokenLabel == null)) {
      throw invalid("token.initialize needs token.label and pin.so.file or pin.so.env");
    }
    if (maxSessions < 1 || maxSessions > 1024) {
      throw invalid("sessions.max must be between 1 and 1024");
    }
    if (borrowTimeout == null || borrowTimeout.isNegative() || borrowTimeout.isZero()) {
      throw invalid("sessions.borrowTimeoutMs must be positive");
    }
  }

  /** A config for a labelled token with default limits. */
  public static TokenConfig of(Path library, String label, PinSource userPin, PinSource soPin, boolean initialize) {
    return new TokenConfig(library, label, null, userPin, soPin, initialize, DEFAULT_MAX_SESSIONS,
        DEFAULT_BORROW_TIMEOUT, null, false);
  }

  public TokenConfig withRepair(boolean repair) {
    return new TokenConfig(libraryPath, tokenLabel, tokenSerial, userPin, soPin, initialize, maxSessions,
        borrowTimeout, profilesDir, repair);
  }

  public TokenConfig withMaxSessions(int max) {
    return new TokenConfig(libraryPath, tokenLabel, tokenSerial, userPin, soPin, initialize, max,
        borrowTimeout, profilesDir, repairCorruption);
  }

  /** Who the token is, for messages. */
  public String describeToken() {
    return tokenLabel != null ? "label '" + tokenLabel + "'" : "serial '" + tokenSerial + "'";
  }

  private static HsmException invalid(String message) {
    return new HsmException(ErrorCode.CONFIG_INVALID, message);
  }
}
