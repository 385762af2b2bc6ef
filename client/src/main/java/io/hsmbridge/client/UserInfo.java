package io.hsmbridge.client;

import io.vertx.core.json.JsonObject;

/**
 * One user as {@code user.list} describes it. Holds no secret: the password hash and the approval key
 * stay in the HSMs; {@code approvalKey} only says whether one is registered.
 *
 * @param role CO or CU (a string, so an older client lists a newer server's users)
 * @param failedLogins consecutive failed logins (the user is locked at the server's limit)
 */
public record UserInfo(String name, String role, boolean locked, int failedLogins, boolean approvalKey, boolean mfa) {

  static UserInfo fromJson(JsonObject o) {
    return new UserInfo(Replies.string(o, "name"), Replies.string(o, "role"), Replies.bool(o, "locked", false),
        (int) Replies.longValue(o, "failedLogins", 0), Replies.bool(o, "approvalKey", false),
        Replies.bool(o, "mfa", false));
  }
}
