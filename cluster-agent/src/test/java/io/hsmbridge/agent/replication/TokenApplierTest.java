package io.hsmbridge.agent.replication;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.pkcs11.TokenConfig;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The production applier on a real SoftHSM2 token: its applied index lives in the token. */
class TokenApplierTest {
  private static final String ABSENT = "ffffffffffffffffffffffffffffffff";

  @Test
  void appliesRelabelsAndKeepsItsIndexInTheTokenAcrossAReopen() {
    TokenConfig config = SoftHsmFixture.newToken("applier");
    String keyId = "0123456789abcdef0123456789abcdef";
    List<Long> published = new ArrayList<>();
    try (HsmToken token = HsmToken.open(config)) {
      token.clusterKeys().createClusterKey();
      TokenApplier applier = TokenApplier.unchecked(token, published::add);
      assertEquals(0, applier.lastApplied());
      TokenStateMachine sm = new TokenStateMachine(applier);

      Mutation install = Mutation.InstallReplica.of(
          token.clusterKeys().generateForReplication(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "original", keyId));
      sm.apply(1, 1, install.toBytes());
      assertEquals("original", token.keys().describe(keyId).label());
      sm.apply(1, 3, new Mutation.SetLabel(keyId, "renamed").toBytes());
      assertEquals("renamed", token.keys().describe(keyId).label());
      // A relabel or delete of a key this token does not hold is nothing to do, not a failure.
      sm.apply(1, 4, new Mutation.SetLabel(ABSENT, "x").toBytes());
      sm.apply(1, 5, new Mutation.DeleteKey(ABSENT).toBytes());
      assertNull(sm.failure());
      assertEquals(List.of(1L, 3L, 4L, 5L), published, "the listener hears every recorded index");
      assertEquals(5, token.appliedIndex().read(), "written through to the token");
      assertEquals(1, token.keys().count(), "the index record is not a key");
      assertEquals("renamed", token.keys().rescan().get(0).label(), "the label is on the token");
    }
    try (HsmToken again = HsmToken.open(config)) {
      TokenApplier applier = TokenApplier.unchecked(again);
      assertEquals(5, applier.lastApplied(), "read from the token at construction");
      // A replay of old entries (no snapshots: Ratis replays the log at start) changes nothing.
      TokenStateMachine sm = new TokenStateMachine(applier);
      sm.apply(1, 3, new Mutation.SetLabel(keyId, "stale").toBytes());
      sm.apply(1, 5, new Mutation.DeleteKey(keyId).toBytes());
      assertEquals("renamed", again.keys().describe(keyId).label());
      sm.apply(2, 6, new Mutation.DeleteKey(keyId).toBytes());
      assertEquals(0, again.keys().count());
      assertEquals(6, again.appliedIndex().read());
    }
  }

  @Test
  void aFailingProgressListenerDoesNotStopTheApplier() {
    try (HsmToken token = HsmToken.open(SoftHsmFixture.newToken("applier-listener"))) {
      TokenApplier applier = TokenApplier.unchecked(token, index -> {
        throw new IllegalStateException("listener broken");
      });
      TokenStateMachine sm = new TokenStateMachine(applier);
      sm.apply(1, 1, new Mutation.DeleteKey(ABSENT).toBytes());
      assertNull(sm.failure());
      assertEquals(1, applier.lastApplied());
      assertEquals(1, token.appliedIndex().read());
    }
  }
}
