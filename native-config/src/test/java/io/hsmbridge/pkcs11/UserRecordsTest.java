package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.assertHsm;
import static org.junit.jupiter.api.Assertions.*;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.xipki.pkcs11.wrapper.AttributeVector;

/** Cluster users as private data objects of a real SoftHSM2 token. */
class UserRecordsTest {
  private static final SecureRandom RANDOM = new SecureRandom();

  /** A string of PasswordHash's shape (cluster-agent; not a dependency of this module) with random salt and tag. */
  static String hash() {
    byte[] salt = new byte[16];
    byte[] tag = new byte[32];
    RANDOM.nextBytes(salt);
    RANDOM.nextBytes(tag);
    Base64.Encoder b64 = Base64.getEncoder().withoutPadding();
    return "$argon2id$v=19$m=65536,t=3,p=4$" + b64.encodeToString(salt) + "$" + b64.encodeToString(tag);
  }

  static UserRecord user(String name, String role) {
    return new UserRecord(name, role, hash(), 0, false, null);
  }

  private static AttributeVector records(String name) {
    return new AttributeVector().class_(CKO_DATA).token(true).application(UserRecords.APPLICATION).label(name);
  }

  private static long[] handles(TokenInspector inspector, String name) {
    return inspector.call(s -> s.findAllObjectsSingle(records(name)));
  }

  private static long generationOf(TokenInspector inspector, long handle) {
    byte[] v = inspector.call(s -> s.getAttrValues(handle, CKA_VALUE).value());
    assertEquals(DataRecordStore.FORMAT, v[0]);
    return ByteBuffer.wrap(v, 1, 8).getLong();
  }

  /** A record made beside the HsmToken, as a crash between create and destroy (or another writer) leaves it. */
  private static void plant(TokenInspector inspector, String label, byte[] value) {
    inspector.call(s -> s.createObject(records(label).private_(true).value(value)));
  }

  @Test
  void putGetListReplaceDeleteAndSurviveAReopenWithoutCountingAsKeys() {
    TokenConfig config = SoftHsmFixture.newToken("users");
    byte[] spki = new byte[294];
    RANDOM.nextBytes(spki);
    UserRecord alice = new UserRecord("alice", "CU", hash(), 0, false, spki);
    UserRecord bob = user("bob.smith-2_x", "CO");
    List<KeyInfo> keys;
    String digest;
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "a key", false);
      hsm.keys().generate(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "another", false);
      keys = hsm.keys().list();
      digest = KeyDigest.of(keys);
      int objects = inspector.objectCount();
      assertEquals(List.of(), hsm.users().list());
      assertEquals(Optional.empty(), hsm.users().get("alice"));

      hsm.users().put(bob);
      hsm.users().put(alice);
      assertEquals(Optional.of(alice), hsm.users().get("alice"));
      assertArrayEquals(spki, hsm.users().get("alice").orElseThrow().approvalKeySpki());
      assertEquals(List.of(alice, bob), hsm.users().list(), "sorted by name");
      assertEquals(Optional.of(alice), hsm.users().get("ALICE"), "names compare case-insensitively");
      assertEquals(objects + 2, inspector.objectCount());
      long[] a = handles(inspector, "alice");
      assertEquals(1, a.length);
      AttributeVector attrs = inspector.call(s -> s.getAttrValues(a[0], CKA_PRIVATE, CKA_TOKEN));
      assertTrue(attrs.private_(), "a private object: only the token's User can read it");
      assertTrue(attrs.token());
      assertEquals(1, generationOf(inspector, a[0]));

      // Replace: one record, one generation up, the new content.
      UserRecord locked = alice.withFailedLogins(5).withLocked(true);
      hsm.users().put(locked);
      long[] replaced = handles(inspector, "alice");
      assertEquals(1, replaced.length, "still exactly one record");
      assertNotEquals(a[0], replaced[0], "a new object replaced the old one");
      assertEquals(2, generationOf(inspector, replaced[0]));
      assertEquals(Optional.of(locked), hsm.users().get("alice"));
      assertEquals(objects + 2, inspector.objectCount());
      hsm.users().put(locked.withApprovalKey(null));
      assertNull(hsm.users().get("alice").orElseThrow().approvalKeySpki());
      hsm.users().put(locked);

      // Not keys: cache, count, rescan and digest unchanged.
      assertEquals(keys, hsm.keys().list());
      assertEquals(keys.size(), hsm.keys().count());
      assertEquals(keys, hsm.keys().rescan());
      assertEquals(digest, KeyDigest.of(hsm.keys().rescan()));
      assertEquals(List.of(locked, bob), hsm.users().rescan(), "the token holds what the cache says");
    }
    assertTrue(IntegrityScan.scanSoftHsmFiles(config.tokenLabel(), false).clean(), "the integrity scan finds nothing wrong");
    try (HsmToken again = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      UserRecord locked = alice.withFailedLogins(5).withLocked(true);
      assertEquals(List.of(locked, bob), again.users().list(), "survives closing and reopening the token");
      assertEquals(keys, again.keys().list());
      assertTrue(again.users().delete("alice"));
      assertFalse(again.users().delete("alice"), "a second delete finds nothing");
      assertFalse(again.users().delete("nobody"));
      assertEquals(Optional.empty(), again.users().get("alice"));
      assertEquals(0, handles(inspector, "alice").length);
      assertEquals(List.of(bob), again.users().list());
    }
    try (HsmToken third = HsmToken.open(config)) {
      assertEquals(List.of(bob), third.users().list(), "the delete is on the token");
    }
  }

  @Test
  void twoRecordsOfOneNameReadAsTheNewerAndTheNextWriteLeavesOne() {
    TokenConfig config = SoftHsmFixture.newToken("users-two");
    UserRecord v1 = user("carol", "CU");
    UserRecord v7 = v1.withFailedLogins(3);
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      plant(inspector, "carol", DataRecordStore.encode(v7, 7, UserRecords.CODEC));
      plant(inspector, "carol", DataRecordStore.encode(v1, 6, UserRecords.CODEC));
      // Ignored, with a warning: garbage, a value of another name, a future format.
      plant(inspector, "carol", new byte[] {1, 2, 3});
      plant(inspector, "dave", DataRecordStore.encode(user("erin", "CU"), 9, UserRecords.CODEC));
      byte[] future = DataRecordStore.encode(user("frank", "CU"), 1, UserRecords.CODEC);
      future[0] = 2;
      plant(inspector, "frank", future);

      assertEquals(Optional.of(v7), hsm.users().get("carol"), "the higher generation wins");
      assertEquals(List.of(v7), hsm.users().list(), "unreadable records are not users");
      assertEquals(3, handles(inspector, "carol").length);

      UserRecord next = v7.withFailedLogins(4);
      hsm.users().put(next);
      long[] left = handles(inspector, "carol");
      assertEquals(1, left.length, "the write removed every older record of the name, the unreadable one too");
      assertEquals(8, generationOf(inspector, left[0]), "one above the highest found");
      assertEquals(Optional.of(next), hsm.users().get("carol"));
      assertEquals(List.of(next), hsm.users().rescan());
      assertFalse(hsm.users().delete("frank"), "no user of that name...");
      assertEquals(0, handles(inspector, "frank").length, "...but delete removes the unreadable object of the name");
      assertEquals(0, handles(inspector, "frank").length);
    }
  }

  @Test
  void equalGenerationsAreBrokenAlikeByEveryReader() {
    TokenConfig config = SoftHsmFixture.newToken("users-tie");
    UserRecord a = user("gina", "CU");
    UserRecord b = user("gina", "CO");
    byte[] ea = DataRecordStore.encode(a, 3, UserRecords.CODEC);
    byte[] eb = DataRecordStore.encode(b, 3, UserRecords.CODEC);
    UserRecord expected = java.util.Arrays.compare(ea, eb) > 0 ? a : b;
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      plant(inspector, "gina", ea);
      plant(inspector, "gina", eb);
      assertEquals(Optional.of(expected), hsm.users().get("gina"));
    }
    TokenConfig other = SoftHsmFixture.newToken("users-tie2");
    try (HsmToken hsm = HsmToken.open(other); TokenInspector inspector = new TokenInspector(other)) {
      plant(inspector, "gina", eb); // the other order of creation
      plant(inspector, "gina", ea);
      assertEquals(Optional.of(expected), hsm.users().get("gina"));
    }
  }

  @Test
  void theCacheSeesChangesBehindItsBackOnlyAfterARescanAndSurvivesSoWork() {
    TokenConfig config = SoftHsmFixture.newToken("users-rescan");
    UserRecord hank = user("hank", "CU");
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      hsm.users().put(hank);
      assertEquals(List.of(hank), hsm.users().list(), "the first read loads the cache");
      plant(inspector, "ivy", DataRecordStore.encode(user("ivy", "CU"), 1, UserRecords.CODEC));
      assertEquals(List.of(hank), hsm.users().list(), "served from memory");
      assertEquals(2, hsm.users().rescan().size());
      assertTrue(hsm.users().get("ivy").isPresent());

      // SO work logs the User out (private handles die): the store keeps no handle, so nothing breaks.
      hsm.clusterKeys().createClusterKey();
      hsm.users().put(hank.withRole("CO"));
      assertEquals("CO", hsm.users().get("hank").orElseThrow().role());
      assertEquals(1, handles(inspector, "hank").length);
      assertTrue(hsm.users().delete("ivy"));
      assertEquals(List.of(hank.withRole("CO")), hsm.users().rescan());
    }
  }

  @Test
  void concurrentWritesOfUsersAndKeysAllLand() throws Exception {
    TokenConfig config = SoftHsmFixture.newToken("users-concurrent");
    try (HsmToken hsm = HsmToken.open(config)) {
      ExecutorService pool = Executors.newFixedThreadPool(4);
      try {
        List<Future<?>> done = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
          int thread = t;
          done.add(pool.submit(() -> {
            for (int i = 0; i < 10; i++) {
              hsm.users().put(user("u" + thread + "-" + i, "CU"));
              hsm.users().put(user("shared", "CU").withFailedLogins(thread * 10 + i));
              if (i % 5 == 0) {
                hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "k", false);
              }
            }
            return null;
          }));
        }
        for (Future<?> f : done) {
          f.get();
        }
      } finally {
        pool.shutdown();
      }
      assertEquals(41, hsm.users().list().size());
      assertEquals(hsm.users().list(), hsm.users().rescan(), "cache and token agree");
      assertEquals(8, hsm.keys().count());
    }
  }

  @Test
  void refusesBadNamesRolesAndAnythingThatIsNotAnArgon2idHashWithoutRepeatingIt() {
    String h = hash();
    for (String bad : new String[] {"", "a b", "x".repeat(33), "ünïcode", "a/b", "a\nb", "a:b"}) {
      assertHsm(ErrorCode.INVALID_PARAMETER, () -> new UserRecord(bad, "CU", h, 0, false, null));
      assertFalse(UserRecord.isValidName(bad), bad);
    }
    assertTrue(UserRecord.isValidName("x".repeat(32)));
    assertTrue(UserRecord.isValidName("A.b_c-9"));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new UserRecord(null, "CU", h, 0, false, null));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new UserRecord("a", "", h, 0, false, null));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new UserRecord("a", "C U", h, 0, false, null));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new UserRecord("a", "CU", h, -1, false, null));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new UserRecord("a", "CU", h, 0, false, new byte[0]));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new UserRecord("a", "CU", h, 0, false, new byte[UserRecord.MAX_SPKI_BYTES + 1]));
    String password = "correct horse battery staple";
    for (String notAHash : new String[] {password, "$argon2i$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo",
        "$argon2id$v=19$m=65536,t=3,p=4$" + password, h + "$", h.replace("v=19", "v=16"), "", null}) {
      HsmException e = assertHsm(ErrorCode.INVALID_PARAMETER, () -> new UserRecord("a", "CU", notAHash, 0, false, null));
      assertFalse(e.getMessage().contains(password), e.getMessage());
    }
    UserRecord u = new UserRecord("alice", "CU", h, 2, true, new byte[] {1, 2});
    assertFalse(u.toString().contains(h), u.toString());
    assertFalse(u.toString().contains("argon2"), u.toString());
    byte[] spki = u.approvalKeySpki();
    spki[0] = 9;
    assertEquals(1, u.approvalKeySpki()[0], "defensive copies");
    assertEquals(u, new UserRecord("alice", "CU", h, 2, true, new byte[] {1, 2}));
    assertEquals(u.hashCode(), new UserRecord("alice", "CU", h, 2, true, new byte[] {1, 2}).hashCode());
    // A log entry's sealed hash (cluster-agent HashSeal) is a valid record, but never stored as it is.
    String sealed = UserRecord.SEALED_HASH_PREFIX + "A".repeat(60);
    UserRecord inEntry = new UserRecord("bob", "CU", sealed, 0, false, null);
    assertTrue(inEntry.sealedHash());
    assertFalse(u.sealedHash());
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new UserRecord("bob", "CU", UserRecord.SEALED_HASH_PREFIX + "short", 0, false, null));
    try (HsmToken hsm = HsmToken.open(SoftHsmFixture.newToken("users-bad"))) {
      assertHsm(ErrorCode.INVALID_PARAMETER, () -> hsm.users().get("a b"));
      assertHsm(ErrorCode.INVALID_PARAMETER, () -> hsm.users().delete(""));
      assertHsm(ErrorCode.INVALID_PARAMETER, () -> hsm.users().put(inEntry));
      assertTrue(hsm.users().get("bob").isEmpty());
    }
  }

  @Test
  void theStoredValueIsStrict() {
    UserRecord u = new UserRecord("alice", "CU", hash(), 1, true, new byte[] {1, 2, 3});
    byte[] e = DataRecordStore.encode(u, 5, UserRecords.CODEC);
    DataRecordStore.Stored<UserRecord> back = DataRecordStore.decode(e, UserRecords.CODEC);
    assertEquals(u, back.value());
    assertEquals(5, back.generation());
    for (int cut = 0; cut < e.length; cut++) {
      byte[] shorter = java.util.Arrays.copyOf(e, cut);
      assertThrows(IllegalArgumentException.class, () -> DataRecordStore.decode(shorter, UserRecords.CODEC), "cut at " + cut);
    }
    assertThrows(IllegalArgumentException.class,
        () -> DataRecordStore.decode(java.util.Arrays.copyOf(e, e.length + 1), UserRecords.CODEC), "trailing byte");
    byte[] zeroGeneration = DataRecordStore.encode(u, 0, UserRecords.CODEC);
    assertThrows(IllegalArgumentException.class, () -> DataRecordStore.decode(zeroGeneration, UserRecords.CODEC));
    byte[] badBoolean = e.clone();
    badBoolean[e.length - 4 - 3 - 1] = 2; // the locked byte sits before the key's length and 3 bytes
    assertThrows(IllegalArgumentException.class, () -> DataRecordStore.decode(badBoolean, UserRecords.CODEC));
    assertThrows(IllegalArgumentException.class, () -> DataRecordStore.decode(null, UserRecords.CODEC));
  }

  /** Measured cost of the token writes and reads (printed; only a loose bound is asserted). */
  @Test
  void measuresPutAndReadCosts() {
    TokenConfig config = SoftHsmFixture.newToken("users-cost");
    try (HsmToken hsm = HsmToken.open(config)) {
      for (int i = 0; i < 20; i++) {
        hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "k" + i, false);
      }
      int n = 100;
      long t0 = System.nanoTime();
      for (int i = 0; i < n; i++) {
        hsm.users().put(user("new" + i, "CU"));
      }
      long t1 = System.nanoTime();
      UserRecord r = user("same", "CU");
      for (int i = 0; i < n; i++) {
        hsm.users().put(r.withFailedLogins(i));
      }
      long t2 = System.nanoTime();
      for (int i = 0; i < 10_000; i++) {
        hsm.users().get("new" + (i % n));
      }
      long t3 = System.nanoTime();
      int rescanned = hsm.users().rescan().size();
      long t4 = System.nanoTime();
      System.out.printf("UserRecords on SoftHSM2 (20 keys + up to %d users on the token): create %.2f ms/put, "
          + "replace %.2f ms/put, cached get %.2f us, rescan of %d users %.1f ms%n", n + 1, (t1 - t0) / 1e6 / n,
          (t2 - t1) / 1e6 / n, (t3 - t2) / 1e3 / 10_000, rescanned, (t4 - t3) / 1e6);
      assertEquals(n + 1, rescanned);
      assertTrue((t2 - t1) / 1e6 / n < 200, "a replace took over 200 ms");
    }
  }

  /** A user record as builds before canonical names wrote it: label and name as typed ("Alice"). */
  private static byte[] legacy(String name, String role, String hash, int failed, long generation) {
    java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
    try (java.io.DataOutputStream out = new java.io.DataOutputStream(bytes)) {
      out.writeByte(DataRecordStore.FORMAT);
      out.writeLong(generation);
      DataRecordStore.writeString(out, name);
      DataRecordStore.writeString(out, role);
      DataRecordStore.writeString(out, hash);
      out.writeInt(failed);
      out.writeByte(0);
      out.writeInt(-1);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  @Test
  void recordsStoredUnderAnotherCaseAreFoundUnderTheirCanonicalNameAndRewrittenAtTheNextWrite() {
    TokenConfig config = SoftHsmFixture.newToken("users-legacy-case");
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      String hash = hash();
      plant(inspector, "Alice", legacy("Alice", "CU", hash, 2, 4));
      // Two names that differ only in case (possible before): one user now, the newer record wins.
      plant(inspector, "Bob", legacy("Bob", "CU", hash, 0, 3));
      plant(inspector, "bob", legacy("bob", "CO", hash, 0, 5));
      UserRecord alice = new UserRecord("alice", "CU", hash, 2, false, null);
      assertEquals(Optional.of(alice), hsm.users().get("alice"));
      assertEquals(Optional.of(alice), hsm.users().get("ALICE"));
      assertEquals("CO", hsm.users().get("BOB").orElseThrow().role(), "generation 5 beats 3");
      assertEquals(List.of("alice", "bob"), hsm.users().list().stream().map(UserRecord::name).toList());

      hsm.users().put(alice.withFailedLogins(3));
      assertEquals(0, handles(inspector, "Alice").length, "the legacy object is replaced...");
      assertEquals(1, handles(inspector, "alice").length, "...by one under the canonical label");
      assertTrue(hsm.users().delete("Bob"));
      assertEquals(0, handles(inspector, "Bob").length + handles(inspector, "bob").length, "both objects of bob removed");
      assertEquals(List.of(alice.withFailedLogins(3)), hsm.users().rescan());
    }
  }
}
