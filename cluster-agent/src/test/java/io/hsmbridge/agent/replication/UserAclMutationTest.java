package io.hsmbridge.agent.replication;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.agent.users.PasswordHash;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.KeyAcl;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Wire format of the user and key-ACL mutation kinds (4..8): round trips and a strict reader. */
class UserAclMutationTest {
  private static final String ID = "0123456789abcdef0123456789abcdef";
  private static final SecureRandom RANDOM = new SecureRandom();

  /** A string of PasswordHash's shape, without paying for a real Argon2id run. */
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

  private static List<Mutation> samples() {
    byte[] spki = new byte[91];
    RANDOM.nextBytes(spki);
    return List.of(
        new Mutation.PutUser(new UserRecord("alice", "CU", hash(), 3, true, spki)),
        new Mutation.PutUser(user("bob.b-2_", "CO")),
        new Mutation.DeleteUser("alice"),
        new Mutation.PutAcl(new KeyAcl(ID, "alice", Set.of("bob", "carol"))),
        new Mutation.PutAcl(KeyAcl.ownedBy(ID, "alice")),
        new Mutation.DeleteAcl(ID),
        new Mutation.InstallOwnedReplica(new Mutation.InstallReplica(ID, "lab€l", KeySpec.EC_P256, KeyUsage.SIGN_VERIFY,
            new byte[] {1, 2, 3}, new byte[] {4, 5}), new KeyAcl(ID, "alice", Set.of("bob"))),
        new Mutation.InstallOwnedReplica(new Mutation.InstallReplica(ID, "", KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT,
            new byte[40], null), KeyAcl.ownedBy(ID, "dave")),
        new Mutation.PutSetting(Settings.ADMIN_QUORUM, 3),
        new Mutation.PutSetting(Settings.keyUsageQuorum(ID), Long.MAX_VALUE),
        new Mutation.RecordLogin("alice", false),
        new Mutation.RecordLogin("bob", true),
        new Mutation.Activate(user("admin", "CO")),
        new Mutation.LoginAttempt("alice", "0123456789abcdef", 1_700_000_000_000L),
        new Mutation.LoginOutcome("alice", "0123456789abcdef", true, 1_700_000_000_123L),
        new Mutation.LoginOutcome("alice", "fedcba9876543210", false, -1),
        new Mutation.UnlockUser("carol"));
  }

  @Test
  void everyNewKindRoundTripsWithItsOwnKindByteAndFormatVersionOne() {
    int[] kinds = {4, 4, 5, 6, 6, 7, 8, 8, 9, 9, 10, 10, 11, 12, 13, 13, 14};
    List<Mutation> all = samples();
    for (int i = 0; i < all.size(); i++) {
      Mutation m = all.get(i);
      byte[] bytes = m.toBytes();
      assertEquals(Mutation.LEGACY_FORMAT_VERSION, bytes[0]);
      assertEquals(1, bytes[0]);
      assertEquals(kinds[i], bytes[1], m.toString());
      assertEquals(m, Mutation.fromBytes(bytes), m.toString());
      assertEquals(m.kind(), Mutation.fromBytes(bytes).kind());
    }
    Mutation.PutUser back = (Mutation.PutUser) Mutation.fromBytes(all.get(0).toBytes());
    assertArrayEquals(((Mutation.PutUser) all.get(0)).user().approvalKeySpki(), back.user().approvalKeySpki());
    assertNull(((Mutation.PutUser) Mutation.fromBytes(all.get(1).toBytes())).user().approvalKeySpki());
  }

  @Test
  void aRealArgon2idHashTravelsButNeverThePasswordAndToStringShowsNeither() {
    char[] password = "correct horse battery staple".toCharArray();
    String hash = PasswordHash.hash(password.clone());
    Mutation.PutUser put = new Mutation.PutUser(new UserRecord("alice", "CU", hash, 0, false, null));
    byte[] entry = put.toBytes();
    String asText = new String(entry, StandardCharsets.ISO_8859_1);
    assertFalse(asText.contains(new String(password)), "no password in the entry");
    assertTrue(asText.contains(hash), "the hash is what travels");
    Mutation.PutUser back = (Mutation.PutUser) Mutation.fromBytes(entry);
    assertTrue(PasswordHash.verify(password, back.user().passwordHash()), "the replicated hash still verifies");
    assertFalse(put.toString().contains(hash), put.toString());
    assertFalse(put.toString().contains("argon2"), put.toString());
    // A plaintext password in the hash field cannot be built, nor read from an entry.
    assertThrows(HsmException.class, () -> new UserRecord("alice", "CU", new String(password), 0, false, null));
    byte[] forged = putUserBytes("alice", "CU", new String(password), 0, 0, null);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(forged));
    assertFalse(e.getMessage().contains(new String(password)), e.getMessage());
    assertFalse(String.valueOf(e.getCause()).contains(new String(password)));
  }

  @Test
  void everyTruncationAndAnyTrailingByteIsRefused() {
    for (Mutation m : samples()) {
      byte[] bytes = m.toBytes();
      for (int cut = 0; cut < bytes.length; cut++) {
        byte[] shorter = Arrays.copyOf(bytes, cut);
        assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(shorter), m + " cut at " + cut);
      }
      assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(Arrays.copyOf(bytes, bytes.length + 1)), m.toString());
    }
  }

  @Test
  void garbageIsRefusedWithIllegalArgumentExceptionOnly() {
    Random random = new Random(42);
    List<Mutation> all = samples();
    for (int i = 0; i < 20_000; i++) {
      byte[] garbage;
      if (i % 2 == 0) {
        garbage = new byte[random.nextInt(64)];
        random.nextBytes(garbage);
        if (garbage.length > 1) {
          garbage[0] = 1;
          garbage[1] = (byte) (4 + random.nextInt(5));
        }
      } else {
        // One corrupted byte in a valid entry: refused, or (rarely) still a valid entry of its kind.
        garbage = all.get(random.nextInt(all.size())).toBytes();
        garbage[random.nextInt(garbage.length)] ^= (byte) (1 + random.nextInt(255));
      }
      byte[] g = garbage;
      try {
        Mutation m = Mutation.fromBytes(g);
        // Accepted: a valid entry (e.g. another label or hash byte), which round-trips.
        assertEquals(m, Mutation.fromBytes(m.toBytes()));
      } catch (IllegalArgumentException expected) {
        // refused
      } catch (RuntimeException other) {
        fail("garbage " + Arrays.toString(g) + " gave " + other, other);
      }
    }
  }

  @Test
  void fieldsTheRecordsRefuseAreRefusedByTheReader() {
    String h = hash();
    assertNotNull(Mutation.fromBytes(putUserBytes("alice", "CU", h, 0, 1, null)));
    refused(() -> Mutation.fromBytes(putUserBytes("al ice", "CU", h, 0, 0, null)));
    refused(() -> Mutation.fromBytes(putUserBytes("x".repeat(33), "CU", h, 0, 0, null)));
    refused(() -> Mutation.fromBytes(putUserBytes("alice", "", h, 0, 0, null)));
    refused(() -> Mutation.fromBytes(putUserBytes("alice", "CU", h, -1, 0, null)));
    refused(() -> Mutation.fromBytes(putUserBytes("alice", "CU", h, 0, 2, null)));
    refused(() -> Mutation.fromBytes(putUserBytes("alice", "CU", h, 0, 0, new byte[0])));
    refused(() -> Mutation.fromBytes(entry(5, out -> writeString(out, "a/b"))));
    refused(() -> Mutation.fromBytes(entry(7, out -> writeString(out, "0123"))));
    refused(() -> Mutation.fromBytes(entry(6, out -> {
      writeString(out, ID);
      writeString(out, "alice");
      out.writeInt(-1);
    })));
    refused(() -> Mutation.fromBytes(entry(6, out -> {
      writeString(out, ID);
      writeString(out, "alice");
      out.writeInt(KeyAcl.MAX_SHARES + 1);
    })));
    refused(() -> Mutation.fromBytes(entry(6, out -> {
      writeString(out, ID);
      writeString(out, "alice");
      out.writeInt(2);
      writeString(out, "bob");
      writeString(out, "bob");
    })));
    refused(() -> Mutation.fromBytes(entry(6, out -> {
      writeString(out, ID);
      writeString(out, "alice");
      out.writeInt(1);
      writeString(out, "alice");
    })));
    // Only the canonical encoding: shares ascending, key ids in lowercase.
    refused(() -> Mutation.fromBytes(entry(6, out -> {
      writeString(out, ID);
      writeString(out, "alice");
      out.writeInt(2);
      writeString(out, "carol");
      writeString(out, "bob");
    })));
    refused(() -> Mutation.fromBytes(entry(6, out -> {
      writeString(out, ID.toUpperCase());
      writeString(out, "alice");
      out.writeInt(0);
    })));
    refused(() -> Mutation.fromBytes(entry(7, out -> writeString(out, ID.toUpperCase()))));
    refused(() -> Mutation.fromBytes(entry(6, out -> {
      writeString(out, ID);
      out.writeInt(-1); // a null owner
      out.writeInt(0);
    })));
  }

  @Test
  void constructorsRefuseWhatCouldNotBeApplied() {
    assertEquals(ErrorCode.INVALID_PARAMETER, assertThrows(HsmException.class, () -> new Mutation.DeleteUser("a b")).code());
    assertThrows(HsmException.class, () -> new Mutation.DeleteUser(null));
    assertThrows(HsmException.class, () -> new Mutation.DeleteAcl("not a key id"));
    assertEquals(ID, new Mutation.DeleteAcl(ID.toUpperCase()).keyId(), "normalised");
    assertThrows(NullPointerException.class, () -> new Mutation.PutUser(null));
    assertThrows(NullPointerException.class, () -> new Mutation.PutAcl(null));
    Mutation.InstallReplica r = new Mutation.InstallReplica(ID.toUpperCase(), "k", KeySpec.AES_128,
        KeyUsage.ENCRYPT_DECRYPT, new byte[24], null);
    assertNotNull(new Mutation.InstallOwnedReplica(r, KeyAcl.ownedBy(ID, "alice")), "key ids compare in either case");
    assertThrows(HsmException.class,
        () -> new Mutation.InstallOwnedReplica(r, KeyAcl.ownedBy("ffffffffffffffffffffffffffffffff", "alice")));
    Mutation.InstallOwnedReplica o = new Mutation.InstallOwnedReplica(r, KeyAcl.ownedBy(ID, "alice"));
    assertFalse(o.toString().contains(Arrays.toString(new byte[24])), "no key bytes in toString");
  }

  private static void refused(Executable read) {
    assertThrows(IllegalArgumentException.class, read);
  }

  @FunctionalInterface
  private interface Fields {
    void write(DataOutputStream out) throws IOException;
  }

  private static byte[] entry(int kind, Fields fields) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(1);
      out.writeByte(kind);
      fields.write(out);
    } catch (IOException e) {
      throw new AssertionError(e);
    }
    return bytes.toByteArray();
  }

  private static byte[] putUserBytes(String name, String role, String hash, int failed, int locked, byte[] spki) {
    return entry(4, out -> {
      writeString(out, name);
      writeString(out, role);
      writeString(out, hash);
      out.writeInt(failed);
      out.writeByte(locked);
      if (spki == null) {
        out.writeInt(-1);
      } else {
        out.writeInt(spki.length);
        out.write(spki);
      }
    });
  }

  private static void writeString(DataOutputStream out, String s) throws IOException {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    out.writeInt(b.length);
    out.write(b);
  }
}
