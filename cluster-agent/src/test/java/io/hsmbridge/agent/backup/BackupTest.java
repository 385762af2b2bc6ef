package io.hsmbridge.agent.backup;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.agent.users.PasswordHash;
import io.hsmbridge.agent.users.UsersDigest;
import io.hsmbridge.pkcs11.ClusterKeys;
import io.hsmbridge.pkcs11.CryptoService;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyAcl;
import io.hsmbridge.pkcs11.KeyInfo;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Backups on real SoftHSM2 tokens (docs/backups.md): made inside one HSM of a cluster, restored onto
 * another HSM of the cluster with every key working and every record back; and every altered file
 * (bit flips, truncations, moved, duplicated or dropped blobs, another cluster's backup) refused before
 * anything of it is written, the target token unchanged.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class BackupTest {
  private static final byte[] MSG = "backed up and restored".getBytes(StandardCharsets.UTF_8);
  private static final String AES = "000000000000000000000000000000a1";
  private static final String EC = "000000000000000000000000000000e1";
  private static final String RSA = "000000000000000000000000000000b1";
  private static final String EXPORTABLE = "000000000000000000000000000000c1";
  private static HsmToken source;
  private static HsmToken target;
  private static HsmToken foreign;
  private static byte[] backup;
  private static String hash;

  @BeforeAll
  static void clusterWithKeysUsersAndABackup() {
    hash = PasswordHash.hash("a-password-of-16".toCharArray());
    source = HsmToken.open(SoftHsmFixture.newToken("backup-src"));
    target = HsmToken.open(SoftHsmFixture.newToken("backup-dst"));
    foreign = HsmToken.open(SoftHsmFixture.newToken("backup-foreign"));
    source.clusterKeys().createClusterKey();
    source.backupKeys().createBackupKey();
    // The target joins the cluster: the cluster key and the PBK travel under its transport key.
    byte[] transport = target.clusterKeys().createTransportKey();
    ClusterKeys.JoinerKeys wrapped = source.clusterKeys().wrapForJoiner(transport);
    assertEquals(1, wrapped.backupKeys().size(), "the PBK travels with the cluster key");
    assertNotNull(wrapped.carrier(), "and so does its carrier");
    target.clusterKeys().installClusterKey(wrapped);
    assertTrue(target.backupKeys().hasBackupKey());
    foreign.clusterKeys().createClusterKey();
    foreign.backupKeys().createBackupKey();

    ClusterKeys ck = source.clusterKeys();
    ck.installReplica(ck.generateForReplication(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "aes", AES));
    ck.installReplica(ck.generateForReplication(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "ec", EC));
    ck.installReplica(ck.generateForReplication(KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY, "rsa", RSA));
    ck.installReplica(ck.newExportKey());
    ck.installExportableReplica(ck.generateExportableForReplication(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "exp", EXPORTABLE));
    source.users().put(new UserRecord("admin", "CO", hash, 0, false, null));
    source.users().put(new UserRecord("alice", "CU", hash, 2, false, null));
    source.keyAcls().put(new KeyAcl(AES, "alice", Set.of("bob")));
    source.keyAcls().put(KeyAcl.ownedBy(EC, "alice"));
    // The store keeps bytes within the bounds (the agent checks them as X.509): these only need to travel.
    source.keyCertificates().put(new io.hsmbridge.pkcs11.CertificateChain(EC,
        List.of("leaf certificate".getBytes(StandardCharsets.UTF_8), new byte[16 * 1024])));
    source.settings().put("quorum.admin", 2);
    source.appliedIndex().write(42);
    backup = BackupMaker.make(source, new BackupMaker.Origin("backup-aaaaaaaaaaaaaaaa", "test-cluster", "hsm1", 1_700_000_000_000L), n -> { });
  }

  @AfterAll
  static void close() {
    for (HsmToken t : new HsmToken[] {source, target, foreign}) {
      if (t != null) {
        t.close();
      }
    }
  }

  @Test
  @Order(1)
  void aBackupHoldsNothingReadableButItsHeader() {
    String text = new String(backup, StandardCharsets.ISO_8859_1);
    for (String secretOrName : List.of("alice", "admin", "argon2id", "aes", "rsa", "quorum.admin", AES)) {
      assertFalse(text.contains(secretOrName), "the file shows " + secretOrName);
    }
    BackupFile file = BackupFile.parse(backup);
    assertEquals("backup-aaaaaaaaaaaaaaaa", file.backupId());
    assertEquals(42, file.appliedIndex());
    assertEquals(5, file.keyBlobs().size(), "aes, ec, rsa, the export key and the exportable key");
  }

  @Test
  @Order(2)
  void everyAlteredFileIsRefusedBeforeAnythingIsWritten() {
    String before = state(target);
    Random random = new Random(20261205L);
    List<String> codes = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      byte[] flipped = backup.clone();
      int bit = random.nextInt(flipped.length * 8);
      flipped[bit / 8] ^= (byte) (1 << (bit % 8));
      codes.add(refused(flipped, "bit " + bit));
    }
    for (int i = 0; i < 20; i++) {
      int length = random.nextInt(backup.length);
      codes.add(refused(Arrays.copyOf(backup, length), "truncated to " + length));
    }
    BackupFile file = BackupFile.parse(backup);
    List<byte[]> swapped = new ArrayList<>(file.keyBlobs());
    java.util.Collections.swap(swapped, 0, 1);
    codes.add(refused(withBlobs(file, swapped), "two blobs swapped"));
    List<byte[]> duplicated = new ArrayList<>(file.keyBlobs());
    duplicated.set(2, duplicated.get(1));
    codes.add(refused(withBlobs(file, duplicated), "a blob duplicated in place of another"));
    byte[] appended = Arrays.copyOf(backup, backup.length + 4 + file.keyBlobs().get(0).length);
    ByteBuffer.wrap(appended, backup.length, appended.length - backup.length).putInt(file.keyBlobs().get(0).length)
        .put(file.keyBlobs().get(0));
    codes.add(refused(appended, "a blob appended"));
    // Another cluster's backup: its EBK does not unwrap under this cluster's PBK.
    foreign.clusterKeys().installReplica(foreign.clusterKeys().generateForReplication(KeySpec.AES_256,
        KeyUsage.ENCRYPT_DECRYPT, "theirs", "00000000000000000000000000000f01"));
    byte[] theirs = BackupMaker.make(foreign, new BackupMaker.Origin("backup-aaaaaaaaaaaaaaaa", "test-cluster", "hsm1", 1L), n -> { });
    HsmException e = assertThrows(HsmException.class, () -> BackupRestorer.restore(target, theirs, "test-cluster", n -> { }));
    assertEquals(ErrorCode.CRYPTO_FAILURE, e.code(), e.getMessage());
    assertEquals(before, state(target), "nothing of a refused backup reached the target");
    assertTrue(codes.stream().allMatch(c -> Set.of("INVALID_PARAMETER", "CRYPTO_FAILURE", "NOT_ALLOWED_BY_POLICY").contains(c)), codes.toString());
  }

  @Test
  @Order(3)
  void restoredOntoAnotherHsmOfTheClusterEveryKeyWorksAndEveryRecordIsBack() throws Exception {
    BackupRestorer.Restored r = BackupRestorer.restore(target, backup, "test-cluster", n -> { });
    assertEquals(5, r.keys());
    assertEquals(42, target.appliedIndex().read());
    assertEquals(UsersDigest.of(source), UsersDigest.of(target), "users, ACLs and settings as on the source");
    assertEquals(1, target.keyCertificates().rescan().size(), "the EC key's certificate chain is back");
    assertEquals(source.keyCertificates().list(), target.keyCertificates().list());
    // AES: what the source encrypted, the target decrypts.
    CryptoService.Encrypted sealed = source.crypto().encrypt(AES, Algorithm.AES_GCM, MSG, null);
    assertArrayEquals(MSG, target.crypto().decrypt(AES, Algorithm.AES_GCM, sealed.ciphertext(), sealed.iv(), null));
    // EC and RSA: what the target signs verifies with the source's public key, in the JDK.
    assertTrue(verifies("SHA256withECDSA", "EC", source.keys().publicKey(EC), target.crypto().sign(EC, Algorithm.ECDSA_SHA256, MSG)));
    assertTrue(verifies("SHA256withRSA", "RSA", source.keys().publicKey(RSA),
        target.crypto().sign(RSA, Algorithm.RSA_PKCS1_SHA256, MSG)));
    // The exportable key stayed exportable, the others did not become so.
    KeyInfo exp = target.keys().describe(EXPORTABLE);
    assertTrue(exp.exportable() && exp.sensitive(), exp.toString());
    for (String id : List.of(AES, EC, RSA)) {
      KeyInfo k = target.keys().describe(id);
      assertFalse(k.exportable(), id);
      assertTrue(k.sensitive(), id);
    }
    CryptoService.Encrypted byExportable = source.crypto().encrypt(EXPORTABLE, Algorithm.AES_GCM, MSG, null);
    assertArrayEquals(MSG, target.crypto().decrypt(EXPORTABLE, Algorithm.AES_GCM, byExportable.ciphertext(), byExportable.iv(), null));
    // The restore's EBK is gone: no ephemeral key stays behind.
    assertThrows(HsmException.class, () -> target.backupKeys().unseal(BackupFile.parse(backup).manifest(), BackupFile.parse(backup).aad()));
    // A second restore onto the now populated token is refused, nothing changed.
    String after = state(target);
    HsmException e = assertThrows(HsmException.class, () -> BackupRestorer.restore(target, backup, "test-cluster", n -> { }));
    assertEquals(ErrorCode.NOT_ALLOWED_BY_POLICY, e.code());
    assertEquals(after, state(target));
  }

  /**
   * Log compaction's catch-up: a token of the cluster that is behind a newer backup is brought to exactly
   * its state (a key deleted since is destroyed, a relabelled one relabelled, a new one installed, the user
   * model replaced); an altered file or an older backup changes nothing.
   */
  @Test
  @Order(4)
  void restoredOverATokenThatIsBehindItTheTokenEndsInTheBackupsState() {
    String aes2 = "000000000000000000000000000000a2";
    ClusterKeys ck = source.clusterKeys();
    ck.installReplica(ck.generateForReplication(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "aes2", aes2));
    source.keys().delete(RSA);
    source.keys().setLabel(AES, "aes renamed");
    source.users().put(new UserRecord("bob", "CU", hash, 0, false, null));
    source.users().delete("alice");
    source.keyAcls().delete(EC);
    source.settings().put("quorum.admin", 3);
    source.appliedIndex().write(50);
    byte[] newer = BackupMaker.make(source, new BackupMaker.Origin("backup-bbbbbbbbbbbbbbbb", "test-cluster", "hsm1",
        1_700_000_100_000L, 7), n -> { });
    assertEquals(7, BackupFile.parse(newer).appliedTerm());

    String before = state(target);
    Random random = new Random(4);
    for (int i = 0; i < 10; i++) {
      byte[] flipped = newer.clone();
      int bit = random.nextInt(flipped.length * 8);
      flipped[bit / 8] ^= (byte) (1 << (bit % 8));
      assertThrows(HsmException.class, () -> BackupRestorer.restoreOver(target, flipped, "test-cluster"), "bit " + bit);
      assertEquals(before, state(target), "bit " + bit + " changed the target");
    }

    BackupRestorer.Restored r = BackupRestorer.restoreOver(target, newer, "test-cluster");
    assertEquals(50, r.appliedIndex());
    assertEquals(7, r.appliedTerm());
    assertEquals(50, target.appliedIndex().read());
    assertEquals(UsersDigest.of(source), UsersDigest.of(target), "users, ACLs and settings as on the source");
    assertEquals(keys(source), keys(target), "the same keys with the same labels");
    CryptoService.Encrypted sealed = source.crypto().encrypt(aes2, Algorithm.AES_GCM, MSG, null);
    assertArrayEquals(MSG, target.crypto().decrypt(aes2, Algorithm.AES_GCM, sealed.ciphertext(), sealed.iv(), null));

    String after = state(target);
    HsmException older = assertThrows(HsmException.class, () -> BackupRestorer.restoreOver(target, backup, "test-cluster"));
    assertEquals(ErrorCode.NOT_ALLOWED_BY_POLICY, older.code(), older.getMessage());
    assertEquals(after, state(target), "an older backup changed nothing");
  }

  private static String keys(HsmToken t) {
    return t.keys().rescan().stream().map(k -> k.keyId() + "=" + k.label()).sorted().toList().toString();
  }

  private static String refused(byte[] file, String what) {
    HsmException e = assertThrows(HsmException.class, () -> BackupRestorer.restore(target, file, "test-cluster", n -> { }), what);
    return e.code().name();
  }

  private static byte[] withBlobs(BackupFile file, List<byte[]> blobs) {
    return new BackupFile(file.headerBytes(), file.header(), file.wrappedEbk(), file.manifest(), blobs).toBytes();
  }

  /** What a restore could change on a token: its keys, users, ACLs, settings and applied index. */
  private static String state(HsmToken t) {
    return t.keys().rescan().size() + "|" + UsersDigest.of(t) + "|" + t.appliedIndex().read() + "|"
        + HexFormat.of().formatHex(new byte[] {(byte) t.users().rescan().size()});
  }

  private static boolean verifies(String alg, String keyAlg, byte[] spki, byte[] signature) throws Exception {
    PublicKey pub = KeyFactory.getInstance(keyAlg).generatePublic(new X509EncodedKeySpec(spki));
    Signature v = Signature.getInstance(alg);
    v.initVerify(pub);
    v.update(MSG);
    if ("EC".equals(keyAlg) && signature.length == 64) {
      signature = rawToDer(signature);
    }
    return v.verify(signature);
  }

  private static byte[] rawToDer(byte[] raw) throws Exception {
    int half = raw.length / 2;
    org.bouncycastle.asn1.ASN1EncodableVector v = new org.bouncycastle.asn1.ASN1EncodableVector();
    v.add(new org.bouncycastle.asn1.ASN1Integer(new java.math.BigInteger(1, Arrays.copyOfRange(raw, 0, half))));
    v.add(new org.bouncycastle.asn1.ASN1Integer(new java.math.BigInteger(1, Arrays.copyOfRange(raw, half, raw.length))));
    return new org.bouncycastle.asn1.DERSequence(v).getEncoded();
  }
}
