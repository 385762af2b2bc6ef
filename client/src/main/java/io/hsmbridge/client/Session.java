package io.hsmbridge.client;

import java.util.Objects;

/**
 * A logged-in session as {@code auth.login} returned it. The token is a bearer secret: whoever holds it
 * acts as the user until it expires, so {@link #toString()} never prints it.
 *
 * @param token the session token every later request carries ({@code session})
 * @param role PRECO, CO or CU (a string, so an older client keeps working with a newer server's roles)
 * @param expiresAt the absolute expiry in epoch milliseconds (the bridge also ends idle sessions earlier)
 */
public record Session(String token, String user, String role, long expiresAt) {
  public Session {
    Objects.requireNonNull(token, "token");
    Objects.requireNonNull(user, "user");
    Objects.requireNonNull(role, "role");
  }

  /** Whether the absolute expiry has passed (an idle session may have ended before). */
  public boolean expired(long nowMillis) {
    return nowMillis >= expiresAt;
  }

  @Override
  public String toString() {
    return "Session[user=" + user + ", role=" + role + ", expiresAt=" + expiresAt + "]";
  }
}
