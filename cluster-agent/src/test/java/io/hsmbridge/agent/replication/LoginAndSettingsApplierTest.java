package io.hsmbridge.agent.replication;

import static io.hsmbridge.agent.replication.UserAclMutationTest.user;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.pkcs11.TokenConfig;
import io.hsmbridge.pkcs11.UserRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * RECORD_LOGIN, ACTIVATE and PUT_SETTING applied by the production {@link TokenApplier} to a real
 * SoftHSM2 token: the failed-login count is a change applied in log order (so failures arriving through
 * different HSMs all count), the fifth consecutive failure locks, a success resets only an unlocked
 * user, activation happens once, and everything is in the token after a reopen.
 */
class LoginAndSettingsApplierTest {
  private static final String KEY = "0123456789abcdef0123456789abcdef";
  private TokenConfig config;
  private HsmToken token;
  private TokenApplier applier;
  private long index;

  @BeforeEach
  void open() {
    config = SoftHsmFixture.newToken("login-settings");
    token = HsmToken.open(config);
    applier = TokenApplier.unchecked(token);
  }

  @AfterEach
  void close() {
    token.close();
  }

  private void apply(Mutation m) {
    applier.apply(++index, m);
    applier.applied(index);
  }

  private void reopen() {
    token.close();
    token = HsmToken.open(config);
    applier = TokenApplier.unchecked(token);
  }

  private UserRecord carol() {
    return token.users().get("carol").orElseThrow();
  }

  @Test
  void theFifthConsecutiveFailureLocksAndOnlyAnUnlockClearsIt() {
    apply(new Mutation.PutUser(user("carol", "CU")));
    for (int i = 1; i <= 4; i++) {
      apply(new Mutation.RecordLogin("carol", false));
      assertEquals(i, carol().failedLogins());
      assertFalse(carol().locked());
    }
    apply(new Mutation.RecordLogin("carol", true));
    assertEquals(0, carol().failedLogins(), "a success resets the count");
    for (int i = 1; i <= 5; i++) {
      apply(new Mutation.RecordLogin("carol", false));
    }
    assertTrue(carol().locked());
    apply(new Mutation.RecordLogin("carol", true));
    assertTrue(carol().locked(), "a success does not unlock");
    assertEquals(5, carol().failedLogins());
    apply(new Mutation.PutUser(carol().withLocked(false).withFailedLogins(0)));
    assertTrue(carol().locked(), "a PUT_USER keeps the log's lockout bookkeeping: it does not unlock");
    apply(new Mutation.UnlockUser("carol"));
    apply(new Mutation.RecordLogin("nobody", false)); // an absent user: nothing happens
    assertEquals(1, token.users().list().size());
    reopen();
    assertFalse(carol().locked());
    assertEquals(0, carol().failedLogins());
  }

  @Test
  void activationCreatesTheFirstAdminOnceAndSettingsLiveWithTheirKeyAndUser() {
    UserRecord first = user("admin", "CO");
    apply(new Mutation.Activate(first));
    apply(new Mutation.Activate(user("admin", "CO"))); // a second activation, later in the log: loses
    assertEquals(first, token.users().get("admin").orElseThrow());
    assertEquals(1, token.users().list().size());

    apply(new Mutation.PutSetting(Settings.ADMIN_QUORUM, 2));
    apply(new Mutation.PutSetting(Settings.keyUsageQuorum(KEY), 3));
    apply(new Mutation.PutSetting(Settings.keyManagementQuorum(KEY), 2));
    apply(new Mutation.PutUser(user("bob", "CU")));
    apply(new Mutation.PutSetting(Settings.mfa("bob"), 1));
    reopen();
    assertEquals(2, token.settings().get(Settings.ADMIN_QUORUM, 1));
    assertEquals(3, token.settings().get(Settings.keyUsageQuorum(KEY), 1));
    assertEquals(1, token.settings().get(Settings.mfa("bob"), 0));

    apply(new Mutation.DeleteKey(KEY)); // the key's quorum values go with it
    apply(new Mutation.DeleteUser("bob")); // and the user's MFA switch
    assertEquals(1, token.settings().get(Settings.keyUsageQuorum(KEY), 1));
    assertEquals(1, token.settings().get(Settings.keyManagementQuorum(KEY), 1));
    assertEquals(0, token.settings().get(Settings.mfa("bob"), 0));
    assertEquals(2, token.settings().get(Settings.ADMIN_QUORUM, 1));
    assertEquals(1, token.settings().rescan().size());
  }
}
