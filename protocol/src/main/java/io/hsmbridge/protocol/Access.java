package io.hsmbridge.protocol;

import java.util.EnumMap;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;

/**
 * Which role may send which operation: the one table the bridge enforces at the front door, the tests
 * walk and docs/users.md prints. Key-level rules (owner versus a user the key is shared with) and
 * "only your own password" are checked by the agent, which holds the key ACLs and the users.
 */
public final class Access {
  private static final Set<Op> PUBLIC = EnumSet.of(Op.HEALTH, Op.CLUSTER_STATUS, Op.AUTH_LOGIN, Op.AUTH_CHALLENGE);
  private static final Map<Op, Set<Role>> ROLES = new EnumMap<>(Op.class);

  static {
    Set<Role> anyone = EnumSet.allOf(Role.class);
    for (Op op : new Op[] {Op.AUTH_LOGOUT, Op.AUTH_WHOAMI}) {
      ROLES.put(op, anyone);
    }
    ROLES.put(Op.CLUSTER_ACTIVATE, EnumSet.of(Role.PRECO));
    for (Op op : new Op[] {Op.USER_CREATE, Op.USER_DELETE, Op.USER_LIST, Op.USER_UNLOCK, Op.USER_SET_MFA,
        Op.QUORUM_SET, Op.CLUSTER_CHECK, Op.CLUSTER_AUDIT_VERIFY, Op.CLUSTER_REMOVE_HSM, Op.BACKUP_CREATE, Op.BACKUP_LIST,
        Op.BACKUP_DESCRIBE, Op.BACKUP_DELETE, Op.BACKUP_RESTORE_DELETED, Op.BACKUP_SET_RETENTION, Op.BACKUP_SET_NEVER_EXPIRES, Op.BACKUP_ESCROW,
        Op.BACKUP_COPY_TO_REGION, Op.BACKUP_ROTATE_KEY, Op.CLUSTER_ROTATE_KEY}) {
      ROLES.put(op, EnumSet.of(Role.CO));
    }
    for (Op op : new Op[] {Op.USER_CHANGE_PASSWORD, Op.USER_REGISTER_KEY, Op.QUORUM_TOKEN}) {
      ROLES.put(op, EnumSet.of(Role.CO, Role.CU));
    }
    for (Op op : new Op[] {Op.KEY_GENERATE, Op.KEY_LIST, Op.KEY_DESCRIBE, Op.KEY_DELETE, Op.KEY_SET_LABEL,
        Op.KEY_PUBLIC, Op.KEY_SET_CERTIFICATES, Op.KEY_CERTIFICATES, Op.KEY_IMPORT_WRAPPED, Op.KEY_WRAP, Op.KEY_SHARE, Op.KEY_UNSHARE, Op.KEY_SET_QUORUM,
        Op.ENCRYPT, Op.DECRYPT, Op.SIGN, Op.VERIFY, Op.MAC, Op.MAC_VERIFY, Op.DIGEST, Op.RANDOM}) {
      ROLES.put(op, EnumSet.of(Role.CU));
    }
  }

  private Access() {}

  /** True for operations anyone may send without a session (health, status, login). */
  public static boolean isPublic(Op op) {
    return PUBLIC.contains(op);
  }

  /** Whether a user of {@code role} may send {@code op} (internal {@code agent.*} operations: nobody). */
  public static boolean allows(Op op, Role role) {
    return isPublic(op) || ROLES.getOrDefault(op, Set.of()).contains(role);
  }

  /** The roles that may send {@code op}; empty for public and internal operations. */
  public static Set<Role> rolesFor(Op op) {
    Set<Role> r = ROLES.get(op);
    return r == null ? EnumSet.noneOf(Role.class) : EnumSet.copyOf(r);
  }
}
