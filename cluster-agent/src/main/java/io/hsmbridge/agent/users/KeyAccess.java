package io.hsmbridge.agent.users;

import io.hsmbridge.agent.RequestReader;
import io.hsmbridge.agent.replication.Mutation;
import io.hsmbridge.agent.replication.Settings;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyAcl;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Op;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.Optional;
import java.util.function.ToLongFunction;

/**
 * Who may do what with one key, from the ACL stored beside it in the token: the owner may use, describe,
 * relabel, set its certificate chain, wrap (where the key's policy allows), share, unshare, set its quorum and delete it; a user it
 * is shared with may use and describe it (and read its public key and chain), nothing else. A key with no ACL (made before users existed)
 * belongs to nobody and is refused to everyone. Key quorums (management, usage) are checked here too.
 */
public final class KeyAccess {
  private final HsmToken hsm;
  private final OneTimeCredentials credentials;

  public KeyAccess(HsmToken hsm, OneTimeCredentials credentials) {
    this.hsm = hsm;
    this.credentials = credentials;
  }

  /** Operations only a key's owner may run (and that the key's management quorum protects). */
  static boolean isManagement(Op op) {
    switch (op) {
      case KEY_DELETE:
      case KEY_SET_LABEL:
      case KEY_SET_CERTIFICATES:
      case KEY_WRAP:
      case KEY_SHARE:
      case KEY_UNSHARE:
      case KEY_SET_QUORUM:
        return true;
      default:
        return false;
    }
  }

  /** Crypto with the key (protected by the key's usage quorum). */
  static boolean isUsage(Op op) {
    switch (op) {
      case ENCRYPT:
      case DECRYPT:
      case SIGN:
      case VERIFY:
      case MAC:
      case MAC_VERIFY:
        return true;
      default:
        return false;
    }
  }

  /**
   * Checks that {@code p} may run {@code op} on the key(s) the request names, before anything runs.
   *
   * @throws HsmException UNKNOWN_KEY, ACCESS_DENIED or QUORUM_NOT_MET
   */
  public void check(Op op, RequestReader r, Principal p) {
    JsonObject body = r.body();
    if (body.getValue("keyId") != null) {
      String keyId = r.keyId("keyId");
      KeyAcl acl = aclOf(keyId);
      if (isManagement(op) ? !acl.owner().equals(p.user()) : !acl.canUse(p.user())) {
        throw denied(op, keyId, acl.canUse(p.user()) ? "it is shared with you, you do not own it" : "it is not yours");
      }
      if (isManagement(op)) {
        QuorumCheck.require(body, p, hsm.settings().get(Settings.keyManagementQuorum(keyId), 1), Role.CU,
            "key " + keyId + " management", hsm.users(), credentials);
      } else if (isUsage(op)) {
        QuorumCheck.require(body, p, hsm.settings().get(Settings.keyUsageQuorum(keyId), 1), Role.CU,
            "key " + keyId + " usage", hsm.users(), credentials);
      }
    }
    if (body.getValue("wrappingKeyId") != null) {
      String wrapping = r.keyId("wrappingKeyId");
      if (!aclOf(wrapping).canUse(p.user())) {
        throw denied(op, wrapping, "the wrapping key is neither yours nor shared with you");
      }
    }
  }

  /** The key's ACL; UNKNOWN_KEY when the key does not exist, ACCESS_DENIED when it has no owner. */
  private KeyAcl aclOf(String keyId) {
    Optional<KeyAcl> acl = hsm.keyAcls().get(keyId);
    if (acl.isEmpty()) {
      hsm.keys().describe(keyId); // UNKNOWN_KEY when there is no such key
      throw new HsmException(ErrorCode.ACCESS_DENIED, "access denied: key " + keyId
          + " has no owner (it was made outside the cluster's user model)");
    }
    return acl.get();
  }

  /** Whether the key appears in the user's key list (owned or shared with them). */
  public boolean visible(String keyId, Principal p) {
    return hsm.keyAcls().get(keyId).map(a -> a.canUse(p.user())).orElse(false);
  }

  /** Adds {@code owner} to a key description, and {@code sharedWith} when the requester owns the key. */
  public JsonObject describe(JsonObject key, Principal p) {
    hsm.keyAcls().get(key.getString("keyId")).ifPresent(a -> {
      key.put("owner", a.owner());
      if (a.owner().equals(p.user())) {
        key.put("sharedWith", new JsonArray(new java.util.ArrayList<>(a.shares())));
      }
    });
    return key;
  }

  /** key.share / key.unshare (after {@link #check}): a crypto user gains or loses the use of the key. */
  public long share(Op op, RequestReader r, ToLongFunction<Mutation> commit) {
    String keyId = r.keyId("keyId");
    String user = UserRecord.checkName(r.string("user")); // canonical: shares name users in any case alike
    KeyAcl acl = hsm.keyAcls().get(keyId).orElseThrow();
    if (op == Op.KEY_SHARE) {
      UserRecord u = hsm.users().get(user).orElseThrow(() -> HsmException.badParam("no user named " + user));
      if (!Role.CU.name().equals(u.role())) {
        throw HsmException.badParam("keys are shared with crypto users only; " + user + " is " + u.role());
      }
      if (acl.owner().equals(user)) {
        throw HsmException.badParam("the owner already uses the key");
      }
      return commit.applyAsLong(new Mutation.PutAcl(acl.withShare(user)));
    }
    return commit.applyAsLong(new Mutation.PutAcl(acl.withoutShare(user)));
  }

  /**
   * key.setQuorum (after {@link #check}): usage first, then management, each idempotent on retry.
   *
   * @param commitLast commits the last of the two: the one that records the request's outcome
   */
  public JsonObject setQuorum(RequestReader r, ToLongFunction<Mutation> commit, ToLongFunction<Mutation> commitLast) {
    String keyId = r.keyId("keyId");
    int management = UserOperations.quorumValue(r, "management");
    int usage = UserOperations.quorumValue(r, "usage");
    commit.applyAsLong(new Mutation.PutSetting(Settings.keyUsageQuorum(keyId), usage));
    long seq = commitLast.applyAsLong(new Mutation.PutSetting(Settings.keyManagementQuorum(keyId), management));
    return new JsonObject().put("keyId", keyId).put("management", management).put("usage", usage).put("seq", seq);
  }

  private static HsmException denied(Op op, String keyId, String why) {
    return new HsmException(ErrorCode.ACCESS_DENIED, "access denied: " + op.wire() + " on key " + keyId + ": " + why);
  }
}
