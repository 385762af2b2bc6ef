package io.hsmbridge.client;

import java.util.List;

/**
 * The reply of {@code user.list}: every user, and how many approvals the admin services need
 * ({@code adminQuorum}; 1 means no quorum).
 */
public record Users(List<UserInfo> users, int adminQuorum) {
  public Users {
    users = List.copyOf(users);
  }
}
