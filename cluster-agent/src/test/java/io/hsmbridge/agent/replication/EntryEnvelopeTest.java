package io.hsmbridge.agent.replication;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.agent.users.PasswordHash;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.pkcs11.UserRecord;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The format-2 envelope on one real token: it round trips, every truncation and a trailing byte are
 * refused, the seal covers every byte (each single-byte change is refused or breaks the seal), nothing
 * secret is printed, and the log clock restarts with the applied index (a whole-log replay after an
 * integrity repair must not take old entries for replays).
 */
class EntryEnvelopeTest {
  private static HsmToken token;
  private static EntryProofs proofs;
  private static String hash;

  @BeforeAll
  static void open() {
    token = HsmToken.open(SoftHsmFixture.newToken("envelope"));
    token.clusterKeys().createClusterKey();
    proofs = new EntryProofs(token);
    hash = PasswordHash.hash("a-password-of-16".toCharArray());
  }

  @AfterAll
  static void close() {
    token.close();
  }

  @Test
  void roundTripsRefusesTruncationAndTheSealCoversEveryByte() {
    TokenApplier applier = new TokenApplier(token);
    applier.apply(1, new Entry(Actor.agent("hsm-1", 1), 1, "hsm-1", null, Mutation.InstallReplica.of(proofs.newKey())));
    assertTrue(proofs.hasKey());
    long now = System.currentTimeMillis();
    Actor admin = proofs.issue(Actor.Role.CO, "admin", now);
    Entry e = proofs.seal(admin, now, "hsm-2", new Mutation.PutUser(new UserRecord("alice", "CU", hash, 0, false, null)));
    byte[] bytes = e.toBytes();
    assertEquals(Mutation.FORMAT_VERSION, bytes[0]);
    assertEquals(e, Entry.fromBytes(bytes));
    assertTrue(proofs.validSeal(Entry.fromBytes(bytes)));
    assertTrue(proofs.validInEntry(Entry.fromBytes(bytes).actor()));
    for (int cut = 0; cut < bytes.length; cut++) {
      byte[] shorter = Arrays.copyOf(bytes, cut);
      assertThrows(IllegalArgumentException.class, () -> Entry.fromBytes(shorter), "cut at " + cut);
    }
    assertThrows(IllegalArgumentException.class, () -> Entry.fromBytes(Arrays.copyOf(bytes, bytes.length + 1)));
    int stillValid = 0;
    for (int i = 0; i < bytes.length; i++) {
      byte[] changed = bytes.clone();
      changed[i] ^= 0x01;
      try {
        if (proofs.validSeal(Entry.fromBytes(changed))) {
          stillValid++;
        }
      } catch (IllegalArgumentException refused) {
        // refused by the reader: fine
      }
    }
    assertEquals(0, stillValid, "a changed byte kept a valid seal");
    String printed = e.toString();
    assertFalse(printed.contains(HexFormat.of().formatHex(e.seal())));
    assertFalse(printed.contains("$argon2id"), printed);
    assertFalse(admin.toString().contains(HexFormat.of().formatHex(admin.proof())));
  }

  /**
   * A session proof is a bearer credential: an entry carries its log form instead, which every HSM checks
   * on apply and which no HSM takes for a session. The proof's bytes are nowhere in the entry (the Raft log's
   * files and traffic); a session rebuilt from an entry's actor is refused; a changed log form is refused;
   * an entry written before the log form (the proof itself) still applies on replay.
   */
  @Test
  void anEntryCarriesTheLogFormOfTheSessionProofNeverTheProof() {
    if (!proofs.hasKey()) {
      new TokenApplier(token).apply(1, new Entry(Actor.agent("hsm-1", 1), 1, "hsm-1", null,
          Mutation.InstallReplica.of(proofs.newKey())));
    }
    long now = System.currentTimeMillis();
    Actor session = proofs.issue(Actor.Role.CO, "admin", now);
    assertTrue(proofs.validSession(session));
    byte[] bytes = proofs.seal(session, now, "hsm-2", new Mutation.PutSetting("some.setting", 1)).toBytes();
    String hex = HexFormat.of().formatHex(bytes);
    assertFalse(hex.contains(HexFormat.of().formatHex(session.proof())), "the session proof is in the entry's bytes");
    Actor logged = Entry.fromBytes(bytes).actor();
    assertEquals(session.sessionId(), logged.sessionId());
    assertTrue(proofs.validInEntry(logged), "every HSM accepts the log form on apply");
    assertFalse(proofs.validSession(logged), "whoever reads the log cannot act as the user with it");
    byte[] changed = logged.proof();
    changed[7] ^= 0x01;
    assertFalse(proofs.validInEntry(new Actor(logged.role(), logged.user(), logged.sessionId(), logged.issuedAt(),
        logged.expiresAt(), changed)), "a changed log form");
    assertFalse(proofs.validInEntry(new Actor(Actor.Role.CU, logged.user(), logged.sessionId(), logged.issuedAt(),
        logged.expiresAt(), logged.proof())), "the log form of another role");
    Entry legacy = new Entry(session, now, "hsm-2", null, new Mutation.PutSetting("some.setting", 1));
    assertTrue(proofs.validInEntry(Entry.fromBytes(legacy.toBytes()).actor()), "an entry of an earlier build");
  }

  /**
   * Verified session proofs are remembered (a token HMAC per request saved): a remembered proof stays
   * valid, and nothing that differs from it in any covered field or in one bit of the proof passes, before
   * or after the genuine one was remembered.
   */
  @Test
  void aRememberedSessionProofAdmitsOnlyItsExactTuple() {
    if (!proofs.hasKey()) {
      new TokenApplier(token).apply(1, new Entry(Actor.agent("hsm-1", 1), 1, "hsm-1", null,
          Mutation.InstallReplica.of(proofs.newKey())));
    }
    long now = System.currentTimeMillis();
    Actor cu = proofs.issue(Actor.Role.CU, "carol", now);
    byte[] flipped = cu.proof().clone();
    flipped[5] ^= 0x40;
    List<Actor> forged = List.of(
        new Actor(cu.role(), cu.user(), cu.sessionId(), cu.issuedAt(), cu.expiresAt(), flipped),
        new Actor(Actor.Role.CO, cu.user(), cu.sessionId(), cu.issuedAt(), cu.expiresAt(), cu.proof()),
        new Actor(cu.role(), "mallory", cu.sessionId(), cu.issuedAt(), cu.expiresAt(), cu.proof()),
        new Actor(cu.role(), cu.user(), cu.sessionId() + "x", cu.issuedAt(), cu.expiresAt(), cu.proof()),
        new Actor(cu.role(), cu.user(), cu.sessionId(), cu.issuedAt() - 1, cu.expiresAt(), cu.proof()),
        new Actor(cu.role(), cu.user(), cu.sessionId(), cu.issuedAt(), cu.expiresAt() + 3_600_000, cu.proof()));
    for (Actor f : forged) {
      assertFalse(proofs.validSession(f), "before: " + f);
    }
    assertTrue(proofs.validSession(cu));
    // The caller's array changing afterwards does not change what was remembered.
    byte[] callers = cu.proof();
    Actor same = new Actor(cu.role(), cu.user(), cu.sessionId(), cu.issuedAt(), cu.expiresAt(), callers.clone());
    assertTrue(proofs.validSession(same));
    for (Actor f : forged) {
      assertFalse(proofs.validSession(f), "after the genuine proof was remembered: " + f);
    }
  }

  @Test
  void theLogClockRestartsWithTheAppliedIndex() {
    HsmToken t = HsmToken.open(SoftHsmFixture.newToken("envelope-clock"));
    try {
      t.clusterKeys().createClusterKey();
      EntryProofs p = new EntryProofs(t);
      List<Entry> log = new ArrayList<>();
      log.add(new Entry(Actor.agent("hsm-1", 1), 1, "hsm-1", null, Mutation.InstallReplica.of(p.newKey())));
      TokenApplier first = new TokenApplier(t);
      first.apply(1, log.get(0));
      first.applied(1);
      long now = System.currentTimeMillis();
      long early = now - Duration.ofMinutes(30).toMillis();
      Actor preco = p.issue(Actor.Role.PRECO, "admin", early);
      Actor admin = p.issue(Actor.Role.CO, "admin", early);
      log.add(p.seal(preco, early, "hsm-1", new Mutation.Activate(new UserRecord("admin", "CO", hash, 0, false, null))));
      log.add(p.seal(admin, early + 60_000, "hsm-1", new Mutation.PutUser(new UserRecord("alice", "CU", hash, 0, false, null))));
      log.add(p.seal(admin, now, "hsm-1", new Mutation.PutUser(new UserRecord("bob", "CU", hash, 0, false, null))));
      for (int i = 1; i < log.size(); i++) {
        first.apply(i + 1, log.get(i));
        first.applied(i + 1);
      }
      assertEquals(3, t.users().list().size());
      // The old entry, submitted again now, is a replay: refused.
      assertThrows(RefusedEntryException.class, () -> first.apply(5, log.get(2)));
      // A whole-log replay (applied index reset, as after an integrity repair) judges it as it was judged then.
      t.appliedIndex().write(0);
      TokenApplier replay = new TokenApplier(t);
      for (int i = 0; i < 3; i++) {
        replay.apply(i + 1, log.get(i));
      }
      assertTrue(t.users().get("alice").isPresent());
    } finally {
      t.close();
    }
  }
  @Test
  void aWholeLogReplayOverTheLaterStateEndsWhereTheFirstApplyEnded() {
    HsmToken t = HsmToken.open(SoftHsmFixture.newToken("envelope-replay"));
    try {
      t.clusterKeys().createClusterKey();
      EntryProofs p = new EntryProofs(t);
      List<Entry> log = new ArrayList<>();
      log.add(new Entry(Actor.agent("hsm-1", 1), 1, "hsm-1", null, Mutation.InstallReplica.of(p.newKey())));
      TokenApplier first = new TokenApplier(t);
      first.apply(1, log.get(0));
      first.applied(1);
      long now = System.currentTimeMillis();
      Actor preco = p.issue(Actor.Role.PRECO, "admin", now);
      Actor admin = p.issue(Actor.Role.CO, "admin", now);
      Actor agent = Actor.agent("hsm-1", now);
      log.add(p.seal(preco, now, "hsm-1", new Mutation.Activate(new UserRecord("admin", "CO", hash, 0, false, null))));
      log.add(p.seal(admin, now + 1, "hsm-1", new Mutation.PutUser(new UserRecord("alice", "CU", hash, 0, false, null))));
      // One failed login of alice: admitted, then its failure counted.
      log.add(p.seal(agent, now + 2, "hsm-1", new Mutation.LoginAttempt("alice", "00000000000000a1", now + 2)));
      log.add(p.seal(agent, now + 3, "hsm-1", new Mutation.LoginOutcome("alice", "00000000000000a1", false, now + 3)));
      for (int i = 1; i < log.size(); i++) {
        first.apply(i + 1, log.get(i));
        first.applied(i + 1);
      }
      assertEquals(1, t.users().get("alice").orElseThrow().failedLogins());
      String once = io.hsmbridge.agent.users.UsersDigest.of(t);

      // An integrity repair resets the index: the replay meets the later state (alice's failure counted).
      t.appliedIndex().write(0);
      TokenApplier replay = new TokenApplier(t);
      List<Integer> refused = new ArrayList<>();
      for (int i = 0; i < log.size(); i++) {
        try {
          replay.apply(i + 1, log.get(i));
        } catch (RefusedEntryException e) {
          refused.add(i + 1); // as the state machine does: skipped (an ACTIVATE meeting users would be)
        }
        replay.applied(i + 1);
      }
      assertEquals(List.of(), refused, "every entry applies again as it did the first time");
      assertEquals(1, t.users().get("alice").orElseThrow().failedLogins(), "the failure counted once, not twice");
      assertEquals(once, io.hsmbridge.agent.users.UsersDigest.of(t), "the replay ends where the first apply ended");
    } finally {
      t.close();
    }
  }
}
