package io.hsmbridge.agent;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.PinSource;
import io.hsmbridge.pkcs11.TokenConfig;
import io.hsmbridge.protocol.ErrorCode;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.Properties;

/**
 * An agent's configuration, read once from a properties file and validated; errors name the key.
 * PINs are never in this file: only where to read them ({@code pin.user.file} or {@code pin.user.env}).
 * See docs/configuration.md for every key.
 *
 * @param hsmId the HSM's id in the cluster ([A-Za-z0-9_-]{1,64})
 * @param token how to open the token
 * @param properties all properties, for the other components of the same process
 */
public record AgentConfig(String hsmId, TokenConfig token, Properties properties) {

  public static AgentConfig load(Path file) {
    return from(readProperties(file));
  }

  /** Reads a properties file (UTF-8); CONFIG_INVALID when it cannot be read. */
  public static Properties readProperties(Path file) {
    Properties p = new Properties();
    try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      p.load(r);
    } catch (IOException e) {
      throw invalid("cannot read config " + file + ": " + e.getMessage());
    }
    return p;
  }

  public static AgentConfig from(Properties p) {
    String hsmId = required(p, "hsm.id");
    if (!hsmId.matches("[A-Za-z0-9_-]{1,64}")) {
      throw invalid("hsm.id must be 1..64 letters, digits, '-' or '_'");
    }
    TokenConfig token = new TokenConfig(
        Paths.get(required(p, "pkcs11.library")),
        p.getProperty("token.label"),
        p.getProperty("token.serial"),
        pin(p, "pin.user", true),
        pin(p, "pin.so", false),
        bool(p, "token.initialize", false),
        integer(p, "sessions.max", TokenConfig.DEFAULT_MAX_SESSIONS),
        Duration.ofMillis(integer(p, "sessions.borrowTimeoutMs", (int) TokenConfig.DEFAULT_BORROW_TIMEOUT.toMillis())),
        p.getProperty("profiles.dir") == null ? null : Paths.get(p.getProperty("profiles.dir")),
        bool(p, "integrity.repair", false));
    return new AgentConfig(hsmId, token, p);
  }

  private static PinSource pin(Properties p, String prefix, boolean required) {
    String file = p.getProperty(prefix + ".file");
    String env = p.getProperty(prefix + ".env");
    if (file != null && env != null) {
      throw invalid("set only one of " + prefix + ".file and " + prefix + ".env");
    }
    if (file != null) {
      return PinSource.fromFile(Paths.get(file.trim()));
    }
    if (env != null) {
      return PinSource.fromEnv(env.trim());
    }
    if (required) {
      throw invalid(prefix + ".file or " + prefix + ".env is required");
    }
    return null;
  }

  static String required(Properties p, String key) {
    String v = p.getProperty(key);
    if (v == null || v.isBlank()) {
      throw invalid(key + " is required");
    }
    return v.trim();
  }

  public static boolean bool(Properties p, String key, boolean defaultValue) {
    String v = p.getProperty(key);
    if (v == null) {
      return defaultValue;
    }
    if (!v.trim().equals("true") && !v.trim().equals("false")) {
      throw invalid(key + " must be true or false");
    }
    return Boolean.parseBoolean(v.trim());
  }

  public static int integer(Properties p, String key, int defaultValue) {
    String v = p.getProperty(key);
    if (v == null) {
      return defaultValue;
    }
    try {
      return Integer.parseInt(v.trim());
    } catch (NumberFormatException e) {
      throw invalid(key + " must be an integer");
    }
  }

  public static HsmException invalid(String message) {
    return new HsmException(ErrorCode.CONFIG_INVALID, message);
  }
}
