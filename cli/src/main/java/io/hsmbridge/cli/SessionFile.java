package io.hsmbridge.cli;

import io.hsmbridge.client.Session;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * The file that keeps the session of {@code hsmbridge login} for the commands after it: JSON
 * {@code {user, role, expiresAt, session}}, 0600 ({@link PrivateFiles}). Whoever can read it acts as the
 * user until the session ends, like an SSH agent socket; {@code logout} deletes it.
 *
 * <p>Where: {@code --session-file PATH}, else {@code $HSMBRIDGE_SESSION_FILE}, else {@code HOME/session}.
 */
final class SessionFile {
  static final String ENV = "HSMBRIDGE_SESSION_FILE";
  static final String NAME = "session";

  private final Path path;

  SessionFile(Path path) {
    this.path = path;
  }

  /** The session file by precedence: option, environment, the data directory. */
  static SessionFile locate(Path option, Map<String, String> env, Home home) {
    if (option != null) {
      return new SessionFile(option.toAbsolutePath().normalize());
    }
    String fromEnv = env.get(ENV);
    if (fromEnv != null && !fromEnv.isBlank()) {
      return new SessionFile(Path.of(fromEnv).toAbsolutePath().normalize());
    }
    return new SessionFile(home.dir().resolve(NAME));
  }

  Path path() {
    return path;
  }

  /**
   * The stored session; empty when there is no file.
   *
   * @throws CliException when the file exists but is not a session file (the message never quotes it)
   */
  Optional<Session> read() {
    String text;
    try {
      text = Files.readString(path, StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      return Optional.empty();
    } catch (IOException e) {
      throw new CliException("cannot read the session file " + path + ": " + e.getMessage());
    }
    try {
      JsonObject o = new JsonObject(text);
      if (o.getValue("session") instanceof String token && o.getValue("user") instanceof String user
          && o.getValue("role") instanceof String role && o.getValue("expiresAt") instanceof Number exp) {
        return Optional.of(new Session(token, user, role, exp.longValue()));
      }
    } catch (DecodeException | ClassCastException e) {
      // reported below, without the content
    }
    throw new CliException("the session file " + path + " is damaged; delete it and log in again");
  }

  /** The stored token, or null: what every command that talks to the bridge sends. */
  String token() {
    return read().map(Session::token).orElse(null);
  }

  void write(Session s) throws IOException {
    JsonObject o = new JsonObject().put("user", s.user()).put("role", s.role()).put("expiresAt", s.expiresAt())
        .put("session", s.token());
    PrivateFiles.write(path, (o.encodePrettily() + "\n").getBytes(StandardCharsets.UTF_8));
  }

  /** Deletes the file; false when there was none. */
  boolean delete() throws IOException {
    return Files.deleteIfExists(path);
  }
}
