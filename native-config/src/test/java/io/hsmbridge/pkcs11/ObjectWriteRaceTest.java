package io.hsmbridge.pkcs11;

import static org.junit.jupiter.api.Assertions.*;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKO_DATA;

import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.xipki.pkcs11.wrapper.AttributeVector;

/**
 * Token objects created while other threads search the token (as an agent's digests and requests do beside its
 * applier) are stored as asked. SoftHSM2 2.6.1 can store a new object with template attributes replaced by
 * defaults and report success ({@link VerifiedCreation}); without the check, a run like the one below lost 1
 * ACL record of 1,832 (stored with CKA_TOKEN false and no value: no search finds it).
 */
class ObjectWriteRaceTest {

  @Test
  void aNewObjectIsComparedWithWhatItsTemplateAsked() throws Exception {
    try (HsmToken hsm = HsmToken.open(SoftHsmFixture.newToken("created-check"))) {
      AttributeVector asked = new AttributeVector().class_(CKO_DATA).token(true).private_(true).modifiable(false)
          .application("hsmbridge.test").label("record-1").value(new byte[] {1, 2, 3});
      hsm.keys().writeObjects("check", s -> {
        long h = VerifiedCreation.createObject(s, asked);
        assertEquals(List.of(), VerifiedCreation.differing(s, new long[] {h}, asked));
        AttributeVector other = new AttributeVector().class_(CKO_DATA).token(true).private_(true).modifiable(true)
            .application("hsmbridge.test").label("record-2").value(new byte[] {1, 2, 4});
        assertEquals(Set.of("CKA_MODIFIABLE", "CKA_LABEL", "CKA_VALUE"),
            Set.copyOf(VerifiedCreation.differing(s, new long[] {h}, other)));
        s.destroyObject(h);
        return null;
      });
      // Keys: every attribute of the generation templates is stored as asked (none is a false alarm).
      KeyInfo aes = hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "checked", false);
      KeyInfo ec = hsm.keys().generate(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "checked", true);
      KeyInfo rsa = hsm.keys().generate(KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY, "checked", false);
      assertEquals(Set.of(aes.keyId(), ec.keyId(), rsa.keyId()),
          Set.copyOf(hsm.keys().rescan().stream().map(KeyInfo::keyId).toList()));
    }
  }

  @Test
  void recordsAndKeysCreatedBesideSearchesAreAllOnTheToken() throws Exception {
    try (HsmToken hsm = HsmToken.open(SoftHsmFixture.newToken("write-race"))) {
      hsm.users().put(new UserRecord("user1", "CU", UserRecordsTest.hash(), 0, false, null));
      AtomicBoolean stop = new AtomicBoolean();
      Set<KeyAcl> written = ConcurrentHashMap.newKeySet();
      Set<String> keys = ConcurrentHashMap.newKeySet();
      AtomicInteger failed = new AtomicInteger();
      List<Thread> readers = new java.util.ArrayList<>();
      for (int r = 0; r < 4; r++) {
        readers.add(new Thread(() -> {
          while (!stop.get()) {
            hsm.keyAcls().scanToken();
            hsm.keys().scanToken();
          }
        }));
      }
      readers.forEach(Thread::start);
      java.security.SecureRandom random = new java.security.SecureRandom();
      long until = System.nanoTime() + 15_000_000_000L;
      try {
        for (int i = 0; i < 20_000 && System.nanoTime() < until; i++) {
          try {
            String id;
            if (i % 10 == 0) {
              id = hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "race", false).keyId();
              keys.add(id);
            } else {
              byte[] b = new byte[16];
              random.nextBytes(b);
              id = HexFormat.of().formatHex(b);
            }
            KeyAcl acl = KeyAcl.ownedBy(id, "user1");
            hsm.keyAcls().put(acl);
            written.add(acl);
          } catch (HsmException e) {
            failed.incrementAndGet(); // a creation that failed ATTEMPTS times: reported, nothing acknowledged
          }
        }
      } finally {
        stop.set(true);
        for (Thread r : readers) {
          r.join();
        }
      }
      Set<KeyAcl> missing = new HashSet<>(written);
      missing.removeAll(hsm.keyAcls().rescan());
      Set<String> missingKeys = new HashSet<>(keys);
      missingKeys.removeAll(hsm.keys().rescan().stream().map(KeyInfo::keyId).toList());
      System.out.println("ObjectWriteRaceTest: " + written.size() + " ACL records and " + keys.size()
          + " keys written beside 4 searching threads, " + failed + " writes failed; missing from the token: "
          + missing.size() + " records, " + missingKeys.size() + " keys");
      assertTrue(written.size() > 100, "the loop wrote records");
      assertEquals(Set.of(), missing, "records acknowledged but not on the token");
      assertEquals(Set.of(), missingKeys, "keys acknowledged but not on the token");
    }
  }
}
