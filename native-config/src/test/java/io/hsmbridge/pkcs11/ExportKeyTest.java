package io.hsmbridge.pkcs11;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.security.SecureRandom;
import java.util.HexFormat;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.PKCS11Constants;

/**
 * Exportable keys replicated under the cluster's export key (issue #12 item 2): on two real SoftHSM2
 * tokens sharing a cluster key, the export key travels under the cluster key; an exportable key made on A
 * arrives on B exportable (sensitive, extractable by an ordinary wrapping key, not wrap-with-trusted) with
 * the same material; and the export key widens nothing: it cannot wrap a non-exportable key, an ordinary
 * key cannot wrap it, and what it unwraps comes out sensitive.
 */
class ExportKeyTest {
  private static final SecureRandom RANDOM = new SecureRandom();
  private static HsmToken a;
  private static HsmToken b;

  @BeforeAll
  static void formCluster() {
    a = HsmToken.open(SoftHsmFixture.newToken("export-a"));
    b = HsmToken.open(SoftHsmFixture.newToken("export-b"));
    a.clusterKeys().createClusterKey();
    b.clusterKeys().installClusterKey(a.clusterKeys().wrapClusterKeyFor(b.clusterKeys().createTransportKey()));
    assertFalse(a.clusterKeys().hasExportKey());
    ReplicaBlob exportKey = a.clusterKeys().newExportKey();
    for (HsmToken t : new HsmToken[] {a, b}) {
      t.clusterKeys().installReplica(exportKey);
      assertTrue(t.clusterKeys().hasExportKey());
    }
  }

  @AfterAll
  static void close() {
    a.close();
    b.close();
  }

  private static String newKeyId() {
    byte[] id = new byte[16];
    RANDOM.nextBytes(id);
    return HexFormat.of().formatHex(id);
  }

  /** A replicated (non-exportable) wrapping key on both tokens, as a user's key-encryption key. */
  private static String replicatedKek() {
    ReplicaBlob kek = a.clusterKeys().generateForReplication(KeySpec.AES_256, KeyUsage.WRAP_UNWRAP, "kek", newKeyId());
    a.clusterKeys().installReplica(kek);
    b.clusterKeys().installReplica(kek);
    return kek.keyId();
  }

  @Test
  void anExportableKeyArrivesExportableWithTheSameMaterial() {
    String kek = replicatedKek();
    for (KeySpec spec : new KeySpec[] {KeySpec.AES_256, KeySpec.EC_P256, KeySpec.RSA_2048}) {
      KeyUsage usage = spec == KeySpec.AES_256 ? KeyUsage.ENCRYPT_DECRYPT : KeyUsage.SIGN_VERIFY;
      ReplicaBlob blob = a.clusterKeys().generateExportableForReplication(spec, usage, "exportable " + spec, newKeyId());
      assertThrows(HsmException.class, () -> a.clusterKeys().installReplica(blob),
          "a blob under the export key does not unwrap under the cluster key");
      for (HsmToken t : new HsmToken[] {a, b}) {
        KeyInfo k = t.clusterKeys().installExportableReplica(blob);
        assertTrue(k.exportable(), spec + " on " + t.label());
        assertTrue(k.extractable(), spec + " on " + t.label());
        AttributeVector attrs = t.pool().call("read", s -> s.getAttrValues(t.keys().entry(blob.keyId()).handle(),
            PKCS11Constants.CKA_SENSITIVE, PKCS11Constants.CKA_WRAP_WITH_TRUSTED));
        assertTrue(attrs.sensitive(), "sensitive on " + t.label());
        assertFalse(attrs.wrapWithTrusted(), "not wrap-with-trusted on " + t.label());
      }
      // The same material on both: AES key wrap (with padding) is deterministic under one key.
      byte[] onA = a.keys().wrap(blob.keyId(), kek, Algorithm.AES_KEY_WRAP_PAD);
      byte[] onB = b.keys().wrap(blob.keyId(), kek, Algorithm.AES_KEY_WRAP_PAD);
      assertArrayEquals(onA, onB, spec + ": the replica is the same key");
    }
  }

  @Test
  void theExportKeyWidensNothing() {
    // A non-exportable key cannot travel under the export key (it is not trusted) ...
    ReplicaBlob plain = a.clusterKeys().generateForReplication(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "plain", newKeyId());
    a.clusterKeys().installReplica(plain);
    long exportKey = a.keys().entry(ClusterKeys.EXPORT_KEY_ID).handle();
    long plainKey = a.keys().entry(plain.keyId()).handle();
    assertThrows(Exception.class, () -> a.pool().call("wrap", s -> s.wrapKey(Mechanisms.aesKeyWrapPad(), exportKey, plainKey)));
    // ... an ordinary wrapping key cannot wrap the export key (it is wrap-with-trusted) ...
    String kek = replicatedKek();
    assertThrows(HsmException.class, () -> a.keys().wrap(ClusterKeys.EXPORT_KEY_ID, kek, Algorithm.AES_KEY_WRAP_PAD));
    long kekHandle = a.keys().entry(kek).handle();
    assertThrows(Exception.class, () -> a.pool().call("wrap", s -> s.wrapKey(Mechanisms.aesKeyWrapPad(), kekHandle, exportKey)));
    assertFalse(a.keys().describe(ClusterKeys.EXPORT_KEY_ID).exportable());
    // ... and what it unwraps comes out sensitive: asking for a readable key is refused by the token.
    ReplicaBlob blob = a.clusterKeys().generateExportableForReplication(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "x", newKeyId());
    AttributeVector readable = new AttributeVector().class_(PKCS11Constants.CKO_SECRET_KEY).keyType(PKCS11Constants.CKK_AES)
        .token(false).sensitive(false).extractable(true);
    assertThrows(Exception.class, () -> a.pool().call("unwrap", s -> s.unwrapKey(Mechanisms.aesKeyWrapPad(), exportKey,
        blob.wrapped(), readable)));
  }
}
