package io.hsmbridge.jce;

import io.hsmbridge.client.FailoverSender.Endpoint;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.ProviderException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Properties;
import java.util.function.Supplier;

/**
 * Where the provider's cluster is and who it acts as: the front doors to try ({@code endpoints}), the
 * cluster CA to pin ({@code ca}), the crypto user ({@code user}) and where that user's password comes from.
 * The password itself is never part of the configuration: it is read from an environment variable or a
 * file, or asked from a callback, each time the provider logs in (at first use, and again when the
 * session ended), and the array is cleared after the login.
 *
 * <p>In a file ({@link #load(Path)}, or {@code HsmBridgeProvider.configure(path)}) and in system properties
 * ({@link #fromSystemProperties()}, each key with the prefix {@code hsmbridge.jce.}):
 * <pre>
 * endpoints   = 10.0.0.11:7443,10.0.0.12:7443   (host:port, comma-separated; the rest are learnt)
 * ca          = /etc/hsmbridge/ca.pem           (required unless plaintext=true)
 * user        = app1                             (a crypto user, CU)
 * passwordEnv = HSMBRIDGE_PASSWORD               (default) -- or --
 * passwordFile= /run/secrets/hsm-password        (one line; the file should be readable by the app only)
 * timeoutSeconds = 30                            (per request)
 * plaintext   = false                            (true only for a loopback endpoint with bridge.tls=false)
 * </pre>
 */
public final class JceConfig {
  /** The prefix of the system properties {@link #fromSystemProperties()} reads. */
  public static final String SYSTEM_PREFIX = "hsmbridge.jce.";
  /** The system property naming a configuration file, read when {@code hsmbridge.jce.endpoints} is not set. */
  public static final String CONFIG_FILE_PROPERTY = SYSTEM_PREFIX + "config";
  public static final String DEFAULT_PASSWORD_ENV = "HSMBRIDGE_PASSWORD";

  private final List<Endpoint> endpoints;
  private final Path ca;
  private final String user;
  private final Supplier<char[]> password;
  private final String passwordSource;
  private final Duration timeout;

  private JceConfig(List<Endpoint> endpoints, Path ca, String user, Supplier<char[]> password, String passwordSource,
      Duration timeout) {
    if (endpoints.isEmpty()) {
      throw new IllegalArgumentException("endpoints: at least one host:port of a front door is needed");
    }
    this.endpoints = List.copyOf(endpoints);
    this.ca = ca;
    this.user = requireText(user, "user");
    this.password = Objects.requireNonNull(password, "password");
    this.passwordSource = passwordSource;
    this.timeout = Objects.requireNonNull(timeout, "timeout");
  }

  /**
   * A configuration built in code.
   *
   * @param ca the cluster's CA certificate (PEM); null only for a plaintext loopback endpoint
   * @param password called at each login; the provider clears the array it returns after use
   */
  public static JceConfig of(List<Endpoint> endpoints, Path ca, String user, Supplier<char[]> password) {
    return new JceConfig(endpoints, ca, user, password, "a callback", Duration.ofSeconds(30));
  }

  /** This configuration with another request timeout. */
  public JceConfig withTimeout(Duration timeout) {
    return new JceConfig(endpoints, ca, user, password, passwordSource, timeout);
  }

  /**
   * Reads a configuration file (keys without prefix, see the class comment).
   *
   * @throws IllegalArgumentException naming the file and what is missing or wrong
   */
  public static JceConfig load(Path file) {
    Properties p = new Properties();
    try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      p.load(r);
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read the hsmbridge JCE configuration " + file + ": " + e.getMessage(), e);
    }
    return from(p, "", "configuration file " + file);
  }

  /**
   * The configuration of system properties {@code hsmbridge.jce.*}, or of the file that
   * {@code hsmbridge.jce.config} names.
   *
   * @throws IllegalArgumentException when neither is there, or a value is wrong
   */
  public static JceConfig fromSystemProperties() {
    if (System.getProperty(SYSTEM_PREFIX + "endpoints") == null) {
      String file = System.getProperty(CONFIG_FILE_PROPERTY);
      if (file == null) {
        throw new IllegalArgumentException("the HsmBridge provider is not configured: set the system property "
            + CONFIG_FILE_PROPERTY + " to a configuration file, or " + SYSTEM_PREFIX + "endpoints, ca, user and"
            + " passwordEnv/passwordFile, or use Security.getProvider(\"HsmBridge\").configure(file)");
      }
      return load(Path.of(file));
    }
    return from(System.getProperties(), SYSTEM_PREFIX, "system properties " + SYSTEM_PREFIX + "*");
  }

  static JceConfig from(Properties p, String prefix, String where) {
    try {
      String endpointList = requireText(p.getProperty(prefix + "endpoints"), prefix + "endpoints");
      List<Endpoint> endpoints = new ArrayList<>();
      for (String e : endpointList.split(",")) {
        if (!e.isBlank()) {
          endpoints.add(Endpoint.of(e));
        }
      }
      boolean plaintext = Boolean.parseBoolean(p.getProperty(prefix + "plaintext", "false").trim());
      String caValue = p.getProperty(prefix + "ca");
      Path ca = caValue == null || caValue.isBlank() ? null : Path.of(caValue.trim());
      if (ca == null && !plaintext) {
        throw new IllegalArgumentException(prefix + "ca: the cluster CA (ca.pem) is required (plaintext=true is for"
            + " a loopback endpoint with bridge.tls=false only)");
      }
      String user = requireText(p.getProperty(prefix + "user"), prefix + "user");
      String file = p.getProperty(prefix + "passwordFile");
      String env = p.getProperty(prefix + "passwordEnv", DEFAULT_PASSWORD_ENV).trim();
      Supplier<char[]> password = file != null ? () -> fromFile(Path.of(file.trim())) : () -> fromEnvironment(env);
      String source = file != null ? "file " + file.trim() : "environment variable " + env;
      Duration timeout = Duration.ofSeconds(Long.parseLong(p.getProperty(prefix + "timeoutSeconds", "30").trim()));
      return new JceConfig(endpoints, plaintext && ca == null ? null : ca, user, password, source, timeout);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("hsmbridge JCE " + where + ": " + e.getMessage(), e);
    }
  }

  private static char[] fromEnvironment(String name) {
    String v = System.getenv(name);
    if (v == null || v.isEmpty()) {
      throw new ProviderException("the HsmBridge provider's password: environment variable " + name + " is not set");
    }
    return v.toCharArray();
  }

  private static char[] fromFile(Path file) {
    try {
      byte[] bytes = Files.readAllBytes(file);
      try {
        String s = new String(bytes, StandardCharsets.UTF_8);
        int end = s.indexOf('\n');
        String line = (end < 0 ? s : s.substring(0, end)).replace("\r", "");
        if (line.isEmpty()) {
          throw new ProviderException("the HsmBridge provider's password file " + file + " is empty");
        }
        return line.toCharArray();
      } finally {
        Arrays.fill(bytes, (byte) 0);
      }
    } catch (IOException e) {
      throw new ProviderException("cannot read the HsmBridge provider's password file " + file + ": "
          + e.getClass().getSimpleName(), e);
    }
  }

  private static String requireText(String v, String name) {
    if (v == null || v.isBlank()) {
      throw new IllegalArgumentException(name + " is required");
    }
    return v.trim();
  }

  public List<Endpoint> endpoints() {
    return endpoints;
  }

  /** The pinned CA file, or null for plaintext. */
  public Path ca() {
    return ca;
  }

  public String user() {
    return user;
  }

  public Duration timeout() {
    return timeout;
  }

  /** A fresh copy of the password, for one login; the caller clears it. */
  char[] password() {
    return password.get();
  }

  /** The typed client's options for this configuration. */
  io.hsmbridge.client.HsmClient.Options clientOptions() {
    io.hsmbridge.client.HsmClient.Options o = io.hsmbridge.client.HsmClient.options().endpoints(endpoints)
        .user(user).password(password).timeout(timeout);
    return ca == null ? o.plaintext() : o.ca(ca);
  }

  /** Names where the password comes from, never the password. */
  @Override
  public String toString() {
    return "JceConfig[endpoints=" + endpoints + ", ca=" + (ca == null ? "none (plaintext)" : ca) + ", user=" + user
        + ", password from " + passwordSource + ", timeout=" + timeout.toSeconds() + "s]";
  }
}
