package io.hsmbridge.protocol;

import java.util.Locale;

/**
 * The cluster roles of CloudHSM's user model (docs/users.md). The appliance user (AU) is not a role a
 * person logs in with: it is the agents' own cluster identity (their mutual-TLS certificates), which
 * alone may send the {@code agent.*} operations.
 */
public enum Role {
  /** Pre-crypto-officer: exists only until the cluster is activated; may only activate it. */
  PRECO,
  /** Crypto officer (admin): manages users and quorum values; never uses or reads keys. */
  CO,
  /** Crypto user: creates, owns, shares and uses keys. */
  CU;

  /**
   * Parses a role name as users type it ({@code co}, {@code admin} for CO, {@code cu}, {@code crypto-user}).
   *
   * @throws IllegalArgumentException naming the roles a user can be created with
   */
  public static Role parseCreatable(String name) {
    String n = name == null ? "" : name.trim().toUpperCase(Locale.ROOT).replace('-', '_');
    switch (n) {
      case "CO":
      case "ADMIN":
      case "CRYPTO_OFFICER":
        return CO;
      case "CU":
      case "CRYPTO_USER":
        return CU;
      default:
        throw new IllegalArgumentException("role must be CO (admin) or CU (crypto user)");
    }
  }
}
