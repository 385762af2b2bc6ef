package io.hsmbridge.agent.replication;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.ReplicaBlob;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class MutationTest {
  private static final String ID = "0123456789abcdef0123456789abcdef";

  @Test
  void installReplicaRoundTripsWithAndWithoutAnEcPoint() {
    Mutation.InstallReplica ec = new Mutation.InstallReplica(ID, "lab€l", KeySpec.EC_P256, KeyUsage.SIGN_VERIFY,
        new byte[] {1, 2, 3}, new byte[] {4, 5});
    assertEquals(ec, Mutation.fromBytes(ec.toBytes()));
    Mutation.InstallReplica aes = new Mutation.InstallReplica(ID, "", KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT,
        new byte[40], null);
    Mutation back = Mutation.fromBytes(aes.toBytes());
    assertEquals(aes, back);
    assertNull(((Mutation.InstallReplica) back).ecPoint());
  }

  @Test
  void deleteKeyRoundTrips() {
    Mutation d = new Mutation.DeleteKey(ID);
    assertEquals(d, Mutation.fromBytes(d.toBytes()));
    byte[] bytes = d.toBytes();
    assertEquals(Mutation.LEGACY_FORMAT_VERSION, bytes[0]);
    assertEquals(2, bytes[1]);
  }

  @Test
  void setLabelRoundTripsWithKindThreeAndTheSameStrictReader() {
    Mutation.SetLabel l = new Mutation.SetLabel(ID, "new läbel");
    assertEquals(l, Mutation.fromBytes(l.toBytes()));
    assertEquals(new Mutation.SetLabel(ID, ""), Mutation.fromBytes(new Mutation.SetLabel(ID, "").toBytes()));
    byte[] bytes = l.toBytes();
    assertEquals(Mutation.LEGACY_FORMAT_VERSION, bytes[0]);
    assertEquals(3, bytes[1]);
    assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(Arrays.copyOf(bytes, bytes.length - 1)));
    assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(Arrays.copyOf(bytes, bytes.length + 1)));
    // Only the key id, no label: truncated.
    byte[] idOnly = new Mutation.DeleteKey(ID).toBytes();
    idOnly[1] = 3;
    assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(idOnly));
    // A null label (length -1) is refused, as for every string field.
    byte[] nullLabel = Arrays.copyOf(idOnly, idOnly.length + 4);
    nullLabel[idOnly.length] = nullLabel[idOnly.length + 1] = nullLabel[idOnly.length + 2] = nullLabel[idOnly.length + 3] = -1;
    assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(nullLabel));
    assertThrows(NullPointerException.class, () -> new Mutation.SetLabel(ID, null));
    assertThrows(NullPointerException.class, () -> new Mutation.SetLabel(null, "x"));
  }

  @Test
  void setCertificatesRoundTripsWithKind19AndRefusesLyingLengthsAndCounts() {
    byte[] leaf = new byte[1200];
    byte[] ca = new byte[900];
    Arrays.fill(leaf, (byte) 1);
    Arrays.fill(ca, (byte) 2);
    Mutation.SetCertificates c = new Mutation.SetCertificates(ID.toUpperCase(), java.util.List.of(leaf, ca));
    assertEquals(ID, c.keyId(), "key id normalised");
    assertEquals(c, Mutation.fromBytes(c.toBytes()));
    Mutation.SetCertificates none = new Mutation.SetCertificates(ID, java.util.List.of());
    assertEquals(none, Mutation.fromBytes(none.toBytes()), "an empty chain (removal) travels too");
    Entry e = new Entry(Actor.agent("hsm-1", 1), 1, "hsm-1", new byte[] {9}, c);
    assertEquals(c, Entry.fromBytes(e.toBytes()).mutation(), "inside an entry");
    byte[] bytes = c.toBytes();
    assertEquals(Mutation.LEGACY_FORMAT_VERSION, bytes[0]);
    assertEquals(19, bytes[1]);
    for (int cut = 2; cut < bytes.length; cut += 97) {
      byte[] shorter = Arrays.copyOf(bytes, cut);
      assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(shorter), "cut at " + cut);
    }
    assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(Arrays.copyOf(bytes, bytes.length - 1)));
    assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(Arrays.copyOf(bytes, bytes.length + 1)));
    int count = 2 + 4 + 32; // format, kind, the key id's length and characters
    assertEquals(2, java.nio.ByteBuffer.wrap(bytes, count, 4).getInt());
    // The first certificate's length lies: 16 KiB + 1 (over the bound), 2 GB, negative, one byte more than there is.
    for (int lie : new int[] {16 * 1024 + 1, Integer.MAX_VALUE, -2, 1201}) {
      byte[] lying = bytes.clone();
      java.nio.ByteBuffer.wrap(lying, count + 4, 4).putInt(lie);
      assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(lying), "length " + lie);
    }
    // The count lies: more than the entry holds, 11 (over the bound, refused before reading), negative.
    for (int lie : new int[] {3, 11, -1, Integer.MAX_VALUE}) {
      byte[] lying = bytes.clone();
      java.nio.ByteBuffer.wrap(lying, count, 4).putInt(lie);
      assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(lying), "count " + lie);
    }
    byte[] upper = bytes.clone();
    upper[2 + 4 + 10] = 'A'; // an upper-case key id is not what a writer writes
    assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(upper));
    // The constructor refuses what could not be applied: 11 entries, one too large, 64 KiB + 1 in all, an empty one.
    byte[] small = new byte[10];
    byte[] max = new byte[16 * 1024];
    assertThrows(io.hsmbridge.pkcs11.HsmException.class,
        () -> new Mutation.SetCertificates(ID, java.util.Collections.nCopies(11, small)));
    assertThrows(io.hsmbridge.pkcs11.HsmException.class,
        () -> new Mutation.SetCertificates(ID, java.util.List.of(new byte[16 * 1024 + 1])));
    assertThrows(io.hsmbridge.pkcs11.HsmException.class,
        () -> new Mutation.SetCertificates(ID, java.util.List.of(max, max, max, max, new byte[1])));
    assertThrows(io.hsmbridge.pkcs11.HsmException.class, () -> new Mutation.SetCertificates(ID, java.util.List.of(new byte[0])));
    assertThrows(io.hsmbridge.pkcs11.HsmException.class, () -> new Mutation.SetCertificates("0123", java.util.List.of(small)));
    // A repair's chain (agent only, applied where one is missing): kind 20, never empty.
    Mutation.RestoreCertificates restore = new Mutation.RestoreCertificates(new Mutation.SetCertificates(ID, java.util.List.of(small)));
    assertEquals(restore, Mutation.fromBytes(restore.toBytes()));
    assertEquals(20, restore.toBytes()[1]);
    assertThrows(io.hsmbridge.pkcs11.HsmException.class,
        () -> new Mutation.RestoreCertificates(new Mutation.SetCertificates(ID, java.util.List.of())));
    // Copies in, copies out.
    byte[] mine = small.clone();
    Mutation.SetCertificates m = new Mutation.SetCertificates(ID, java.util.List.of(mine));
    mine[0] = 5;
    m.certificates().get(0)[1] = 5;
    assertArrayEquals(small, m.certificates().get(0));
  }

  @Test
  void convertsToAndFromAReplicaBlob() {
    ReplicaBlob blob = new ReplicaBlob(ID, "k", KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY, new byte[] {7, 8}, null);
    Mutation.InstallReplica m = Mutation.InstallReplica.of(blob);
    ReplicaBlob again = m.toBlob();
    assertEquals(blob.keyId(), again.keyId());
    assertEquals(blob.spec(), again.spec());
    assertArrayEquals(blob.wrapped(), again.wrapped());
  }

  @Test
  void isImmutable() {
    byte[] wrapped = {1, 2, 3};
    Mutation.InstallReplica m = new Mutation.InstallReplica(ID, "k", KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, wrapped, null);
    wrapped[0] = 9;
    m.wrapped()[1] = 9;
    assertArrayEquals(new byte[] {1, 2, 3}, m.wrapped());
    assertFalse(m.toString().contains(Arrays.toString(new byte[] {1, 2, 3})), "no key bytes in toString");
  }

  @Test
  void refusesUnknownVersionsKindsTruncationAndTrailingBytes() {
    byte[] good = new Mutation.DeleteKey(ID).toBytes();
    byte[] v2 = good.clone();
    v2[0] = 3;
    assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(v2));
    byte[] kind = good.clone();
    kind[1] = 42;
    assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(kind));
    assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(Arrays.copyOf(good, good.length - 1)));
    assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(Arrays.copyOf(good, good.length + 1)));
    assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(new byte[0]));
    byte[] huge = good.clone();
    huge[2] = 0x7f;
    assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(huge));
  }

  @Test
  void onceRoundTripsAndRefusesNestingWithoutRecursing() {
    Mutation.Once once = new Mutation.Once("req-1", new Mutation.DeleteKey("00000000000000000000000000000001"));
    Mutation back = Mutation.fromBytes(once.toBytes());
    assertEquals(once, back);
    assertThrows(IllegalArgumentException.class, () -> new Mutation.Once("", once.inner()));
    assertThrows(IllegalArgumentException.class, () -> new Mutation.Once("x".repeat(65), once.inner()));
    assertThrows(IllegalArgumentException.class, () -> new Mutation.Once("a", once));
    // 100,000 nested ONCE kinds, hand-made: refused at the first nesting, not by a stack overflow
    java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
    bytes.write(Mutation.LEGACY_FORMAT_VERSION);
    for (int i = 0; i < 100_000; i++) {
      bytes.write(15);
      bytes.writeBytes(new byte[] {0, 0, 0, 1, 'r'});
    }
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(bytes.toByteArray()));
    assertTrue(e.getMessage().contains("cannot hold another"), e.getMessage());
  }

  @Test
  void consumeRoundTripsAndEveryTruncationOfTheNewKindsIsRefused() {
    Mutation.Consume consume = new Mutation.Consume("alice", "q1.abc.1.2", 2_000L);
    assertEquals(consume, Mutation.fromBytes(consume.toBytes()));
    assertThrows(IllegalArgumentException.class, () -> new Mutation.Consume("alice", "", 1L));
    assertThrows(IllegalArgumentException.class, () -> new Mutation.Consume("alice", "x".repeat(129), 1L));
    assertThrows(IllegalArgumentException.class, () -> new Mutation.Consume("alice", "id", 0L));
    assertThrows(RuntimeException.class, () -> new Mutation.Consume("not a name!", "id", 1L));
    for (Mutation m : java.util.List.of(consume, new Mutation.Once("req-2", new Mutation.SetLabel(ID, "label")))) {
      byte[] bytes = m.toBytes();
      for (int cut = 0; cut < bytes.length; cut++) {
        int n = cut;
        assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(Arrays.copyOf(bytes, n)), m + " cut at " + n);
      }
      assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(Arrays.copyOf(bytes, bytes.length + 1)));
    }
  }

  @Test
  void rotateBackupKeyRoundTripsAndRefusesWhatCouldNotBeInstalled() {
    byte[] wrapped = new byte[40];
    Arrays.fill(wrapped, (byte) 7);
    Mutation.RotateKey r = new Mutation.RotateKey(Mutation.RotateKey.Target.BACKUP_KEY, 2, "hsmbridge backup key g2 0011223344556677", wrapped);
    assertEquals(r, Mutation.fromBytes(r.toBytes()));
    wrapped[0] = 9;
    assertEquals(7, r.wrapped()[0], "a copy, not the caller's array");
    assertFalse(r.toString().contains("7, 7"), r.toString());
    assertThrows(IllegalArgumentException.class, () -> new Mutation.RotateKey(Mutation.RotateKey.Target.BACKUP_KEY, 1, "x", new byte[40]), "generation 1 is never rotated in");
    assertThrows(IllegalArgumentException.class, () -> new Mutation.RotateKey(Mutation.RotateKey.Target.BACKUP_KEY, 2, "", new byte[40]));
    assertThrows(IllegalArgumentException.class, () -> new Mutation.RotateKey(Mutation.RotateKey.Target.BACKUP_KEY, 2, "x", new byte[8]));
    byte[] bytes = r.toBytes();
    for (int cut = 0; cut < bytes.length; cut++) {
      int n = cut;
      assertThrows(IllegalArgumentException.class, () -> Mutation.fromBytes(Arrays.copyOf(bytes, n)), "cut at " + n);
    }
  }
}
