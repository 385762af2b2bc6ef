package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.assertHsm;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Certificate chains as private data objects of a real SoftHSM2 token. The bytes need not be certificates
 * here: the store keeps what it is given within the bounds (the agent checks the X.509 side).
 */
class KeyCertificatesTest {
  private static final String ID1 = "0123456789abcdef0123456789abcdef";
  private static final String ID2 = "fedcba9876543210fedcba9876543210";

  private static byte[] bytes(int n, int fill) {
    byte[] b = new byte[n];
    Arrays.fill(b, (byte) fill);
    return b;
  }

  @Test
  void putGetReplaceDeleteSurviveAReopenAndStayApartFromKeysAndAcls() {
    TokenConfig config = SoftHsmFixture.newToken("certs");
    // The largest chain allowed: 4 certificates of 16 KiB (64 KiB in all), stored and read back whole.
    List<byte[]> big = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      big.add(bytes(CertificateChain.MAX_CERTIFICATE_BYTES, i + 1));
    }
    CertificateChain one = new CertificateChain(ID1.toUpperCase(), big);
    CertificateChain two = new CertificateChain(ID2, List.of(bytes(10, 7)));
    try (HsmToken hsm = HsmToken.open(config); TokenInspector inspector = new TokenInspector(config)) {
      hsm.keys().generate(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "a key", false);
      List<KeyInfo> keys = hsm.keys().list();
      hsm.keyAcls().put(KeyAcl.ownedBy(ID1, "alice"));
      int objects = inspector.objectCount();

      hsm.keyCertificates().put(two);
      hsm.keyCertificates().put(one);
      assertEquals(ID1, one.keyId(), "key ids are normalised to lowercase");
      assertEquals(CertificateChain.MAX_TOTAL_BYTES, one.totalBytes());
      assertEquals(Optional.of(one), hsm.keyCertificates().get(ID1.toUpperCase()));
      assertEquals(List.of(one, two), hsm.keyCertificates().list(), "sorted by key id");
      assertEquals(List.of(one, two), hsm.keyCertificates().rescan(), "read back from the token whole");
      assertEquals(objects + 2, inspector.objectCount());

      CertificateChain shorter = new CertificateChain(ID1, List.of(bytes(5, 9)));
      hsm.keyCertificates().put(shorter);
      assertEquals(objects + 2, inspector.objectCount(), "replace keeps one record");
      assertEquals(keys, hsm.keys().rescan(), "chains are not keys");
      assertEquals(List.of(KeyAcl.ownedBy(ID1, "alice")), hsm.keyAcls().rescan(), "nor ACLs");
    }
    try (HsmToken again = HsmToken.open(config)) {
      assertEquals(List.of(new CertificateChain(ID1, List.of(bytes(5, 9))), two), again.keyCertificates().list(),
          "survives a reopen");
      assertTrue(again.keyCertificates().delete(ID2.toUpperCase()));
      assertFalse(again.keyCertificates().delete(ID2));
      assertEquals(Optional.empty(), again.keyCertificates().get(ID2));
      assertHsm(ErrorCode.INVALID_PARAMETER, () -> again.keyCertificates().get("nope"));
    }
  }

  @Test
  void theBoundsAreCheckedWhereverAChainIsMade() {
    byte[] one = bytes(100, 1);
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new CertificateChain(ID1, List.of()));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new CertificateChain("0123", List.of(one)));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new CertificateChain(ID1, List.of(new byte[0])));
    assertHsm(ErrorCode.INVALID_PARAMETER,
        () -> new CertificateChain(ID1, List.of(bytes(CertificateChain.MAX_CERTIFICATE_BYTES + 1, 1))));
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new CertificateChain(ID1, Collections.nCopies(11, one)));
    assertEquals(10, new CertificateChain(ID1, Collections.nCopies(10, one)).certificates().size());
    List<byte[]> over = new ArrayList<>(Collections.nCopies(4, bytes(CertificateChain.MAX_CERTIFICATE_BYTES, 2)));
    over.add(new byte[1]);
    assertHsm(ErrorCode.INVALID_PARAMETER, () -> new CertificateChain(ID1, over));
    assertEquals(List.of(), CertificateChain.checkBounds(List.of()), "an empty change (removal) is within the bounds");
    // Copies in, copies out: nobody changes a stored chain through an array it handed over or got back.
    byte[] mine = one.clone();
    CertificateChain c = new CertificateChain(ID1, List.of(mine));
    mine[0] = 42;
    c.certificates().get(0)[1] = 42;
    assertArrayEquals(one, c.certificates().get(0));
  }

  @Test
  void theStoredValueIsStrict() {
    CertificateChain chain = new CertificateChain(ID1, List.of(bytes(3, 1), bytes(4, 2)));
    byte[] e = DataRecordStore.encode(chain, 1, KeyCertificates.CODEC);
    assertEquals(chain, DataRecordStore.decode(e, KeyCertificates.CODEC).value());
    for (int cut = 0; cut < e.length; cut++) {
      byte[] shorter = Arrays.copyOf(e, cut);
      assertThrows(IllegalArgumentException.class, () -> DataRecordStore.decode(shorter, KeyCertificates.CODEC), "cut at " + cut);
    }
    assertThrows(IllegalArgumentException.class,
        () -> DataRecordStore.decode(Arrays.copyOf(e, e.length + 1), KeyCertificates.CODEC));
    int count = 1 + 8 + 4 + 32; // format, generation, key id's length and characters
    byte[] zero = e.clone();
    zero[count + 3] = 0; // a count of 0: a stored chain has a certificate
    assertThrows(IllegalArgumentException.class, () -> DataRecordStore.decode(zero, KeyCertificates.CODEC));
    byte[] eleven = e.clone();
    eleven[count + 3] = 11;
    assertThrows(IllegalArgumentException.class, () -> DataRecordStore.decode(eleven, KeyCertificates.CODEC));
    byte[] lying = e.clone();
    lying[count + 4] = 0x7f; // the first certificate claims about 2 GB
    assertThrows(IllegalArgumentException.class, () -> DataRecordStore.decode(lying, KeyCertificates.CODEC));
    byte[] upper = e.clone();
    upper[1 + 8 + 4 + 10] = 'A'; // the 'a' of "abcdef": an upper-case key id is not what this store writes
    assertThrows(IllegalArgumentException.class, () -> DataRecordStore.decode(upper, KeyCertificates.CODEC));
    assertEquals(Set.of(chain), Set.of(DataRecordStore.decode(e, KeyCertificates.CODEC).value()), "equal and same hash");
  }
}
