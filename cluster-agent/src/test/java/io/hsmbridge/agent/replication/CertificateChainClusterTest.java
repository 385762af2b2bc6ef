package io.hsmbridge.agent.replication;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.agent.users.Principal;
import io.hsmbridge.agent.users.UsersDigest;
import io.hsmbridge.pkcs11.CertificateChain;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collections;
import java.util.Date;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * key.setCertificates / key.certificates through three real agents ({@link TestAgents}: SoftHSM2 tokens, a
 * 3-peer Raft group, the agent handlers): a chain set on one HSM is read from the others and stored on every
 * token; only the key's owner sets it, a user it is shared with reads it, nobody else does either; a chain
 * that is too long or large, not DER, or whose leaf certifies another key is refused before anything is
 * committed, and an entry made round the agent's check is refused at apply on every HSM; a symmetric key has
 * no chain; deleting the key deletes its chain. Certificates are made with Bouncy Castle, signed by a
 * throwaway JDK key, the leaf carrying the cluster key's public key (from key.publicKey).
 */
class CertificateChainClusterTest extends AgentClusterTest {
  private static final String PASSWORD = "cert-test-pw-" + UUID.randomUUID();

  @Test
  @Timeout(300)
  void aChainSetOnOneHsmIsReadOnEveryHsmAndOnlyTheOwnerSetsAValidOne() throws Exception {
    TestAgents env = start("certs");
    JsonObject admin = env.activate(PASSWORD);
    JsonObject alice = env.cryptoUser(admin, "alice", PASSWORD, 0);
    JsonObject bob = env.cryptoUser(admin, "bob", PASSWORD, 1);
    JsonObject carol = env.cryptoUser(admin, "carol", PASSWORD, 2);
    String rsa = generate(env, alice, "RSA_2048");
    String ec = generate(env, alice, "EC_P256");
    String aes = generate(env, alice, "AES_256");
    env.call(0, alice, new JsonObject().put("op", "key.share").put("keyId", rsa).put("user", "bob"));

    KeyPair caKeys = ecKeyPair();
    byte[] ca = certificate("CN=throwaway CA", "CN=throwaway CA", caKeys.getPublic(), caKeys, true);
    byte[] rsaLeaf = certificate("CN=throwaway CA", "CN=alice rsa", publicKey(env, alice, rsa, "RSA"), caKeys, false);
    byte[] ecLeaf = certificate("CN=throwaway CA", "CN=alice ec", publicKey(env, alice, ec, "EC"), caKeys, false);

    // Set on HSM 1, read on HSMs 2 and 3, by the owner and by the user the key is shared with.
    JsonObject set = env.call(0, alice, setRequest(rsa, List.of(rsaLeaf, ca)));
    assertEquals(rsa, set.getString("keyId"));
    assertEquals(2, set.getInteger("count"));
    assertTrue(set.getLong("seq") > 0, "a change answers with its sequence: " + set.encode());
    for (int h = 0; h < 3; h++) {
      assertChain(List.of(rsaLeaf, ca), env.call(h, alice, readRequest(rsa)));
      assertChain(List.of(rsaLeaf, ca), env.call(h, bob, readRequest(rsa)));
    }
    for (HsmToken t : env.tokens) {
      assertEquals(new CertificateChain(rsa, List.of(rsaLeaf, ca)), t.keyCertificates().get(rsa).orElseThrow(), t.label());
    }
    assertChain(List.of(), env.call(1, alice, readRequest(ec)));
    // The users digest covers the chains: equal everywhere now, and it moves when a chain changes.
    String digest = sameDigestEverywhere(env);

    // A chain set on HSM 3 for the EC key (one certificate), read on HSM 1.
    assertEquals(1, env.call(2, alice, setRequest(ec, List.of(ecLeaf))).getInteger("count"));
    assertChain(List.of(ecLeaf), env.call(0, alice, readRequest(ec)));
    assertNotEquals(digest, sameDigestEverywhere(env), "a chain is part of the users digest");

    String before = everyTokensChains(env);
    // Not the owner: a user the key is shared with reads but does not set; a user without access does neither.
    assertCode(ErrorCode.ACCESS_DENIED, () -> env.call(1, bob, setRequest(rsa, List.of(rsaLeaf))));
    assertCode(ErrorCode.ACCESS_DENIED, () -> env.call(2, carol, setRequest(rsa, List.of())));
    assertCode(ErrorCode.ACCESS_DENIED, () -> env.call(2, carol, readRequest(rsa)));
    assertCode(ErrorCode.ACCESS_DENIED, () -> env.call(0, bob, readRequest(ec)));
    // Chains the cluster does not keep: 11 entries, one entry too large, too large in all, not DER, PEM, trailing
    // bytes, a leaf that is another key's (the EC key's leaf for the RSA key, the CA's own for the EC key).
    assertBadChain(env, alice, rsa, Collections.nCopies(11, ca), "at most 10");
    assertBadChain(env, alice, rsa, List.of(rsaLeaf, new byte[16 * 1024 + 1]), "16384");
    byte[] big = Arrays.copyOf(ca, 15 * 1024);
    assertBadChain(env, alice, rsa, List.of(big, big, big, big, big), "over 65536");
    byte[] garbage = new byte[600];
    new java.security.SecureRandom().nextBytes(garbage);
    assertBadChain(env, alice, rsa, List.of(garbage), "certificate 0 of the chain is not a DER-encoded X.509");
    assertBadChain(env, alice, rsa, List.of(rsaLeaf, "not a certificate".getBytes(StandardCharsets.US_ASCII)),
        "certificate 1 of the chain is not a DER-encoded X.509");
    assertBadChain(env, alice, rsa, List.of(pem(rsaLeaf)), "certificate 0 of the chain is not a DER-encoded X.509");
    assertBadChain(env, alice, rsa, List.of(Arrays.copyOf(rsaLeaf, rsaLeaf.length + 1)), "not a DER-encoded X.509");
    assertBadChain(env, alice, rsa, List.of(ecLeaf, ca), "carries another public key than key " + rsa);
    assertBadChain(env, alice, ec, List.of(ca), "carries another public key than key " + ec);
    HsmException symmetric = assertThrows(HsmException.class, () -> env.call(0, alice, setRequest(aes, List.of(ca))));
    assertEquals(ErrorCode.WRONG_KEY_TYPE, symmetric.code(), symmetric.getMessage());
    assertTrue(symmetric.getMessage().contains("RSA, EC and Ed25519 keys only"), symmetric.getMessage());
    assertChain(List.of(), env.call(0, alice, readRequest(aes)));
    assertEquals(before, everyTokensChains(env), "nothing refused changed any token");

    // An entry made round the agent's check (sealed by a cluster HSM, alice's real session): refused at apply everywhere.
    Actor aliceActor = Principal.of(new JsonObject().put(Principal.FIELD,
        Principal.toJson("alice", Role.CU, alice.getJsonObject(Principal.PROOF)))).session();
    long now = System.currentTimeMillis();
    long forged = env.cluster.logs[1].submit(new EntryProofs(env.tokens.get(1)).seal(aliceActor, now, "hsm-2",
        new Mutation.SetCertificates(rsa, List.of(ecLeaf)))).get(20, TimeUnit.SECONDS);
    for (int h = 0; h < 3; h++) {
      MutationLog log = env.cluster.logs[h];
      TestCluster.await("the forged chain reached every HSM", 30_000, () -> log.appliedIndex() >= forged);
      assertNull(log.failure(), "a refused entry does not stop a peer");
      String refusal = log.refusal(forged);
      assertNotNull(refusal, "refused on HSM " + h);
      assertTrue(refusal.contains("another public key"), refusal);
    }
    assertEquals(before, everyTokensChains(env), "the forged chain is stored nowhere");

    // Drift: HSM 3 loses the key and its chain behind the cluster's back. A repair from HSM 1 (anti-entropy's
    // agent.repair) restores both there, and the HSMs agree again.
    HsmToken third = env.tokens.get(2);
    third.keys().delete(rsa);
    third.keyCertificates().delete(rsa);
    assertTrue(third.keyCertificates().get(rsa).isEmpty());
    JsonObject repaired = env.call(0, alice, new JsonObject().put("op", "agent.repair").put("keyId", rsa));
    assertTrue(repaired.getLong("seq") > 0, repaired.encode());
    assertTrue(third.keys().holds(rsa), "the key is back on HSM 3");
    assertEquals(new CertificateChain(rsa, List.of(rsaLeaf, ca)), third.keyCertificates().get(rsa).orElseThrow(),
        "its chain came back with it");
    assertChain(List.of(rsaLeaf, ca), env.call(2, bob, readRequest(rsa)));
    sameDigestEverywhere(env);

    // An empty array removes a chain; deleting a key removes its chain on every HSM.
    assertEquals(0, env.call(1, alice, setRequest(ec, List.of())).getInteger("count"));
    assertChain(List.of(), env.call(2, alice, readRequest(ec)));
    env.call(2, alice, new JsonObject().put("op", "key.delete").put("keyId", rsa).put("requestId", UUID.randomUUID().toString()));
    for (HsmToken t : env.tokens) {
      assertEquals(List.of(), t.keyCertificates().rescan(), t.label() + " holds no chain of a deleted key");
    }
    assertCode(ErrorCode.UNKNOWN_KEY, () -> env.call(0, alice, readRequest(rsa)));
    sameDigestEverywhere(env);
  }

  // --- requests ---

  private static String generate(TestAgents env, JsonObject user, String spec) {
    return env.call(0, user, new JsonObject().put("op", "key.generate").put("spec", spec).put("label", spec.toLowerCase())
        .put("requestId", UUID.randomUUID().toString())).getString("keyId");
  }

  private static JsonObject setRequest(String keyId, List<byte[]> chain) {
    JsonArray a = new JsonArray();
    chain.forEach(der -> a.add(Base64.getEncoder().encodeToString(der)));
    return new JsonObject().put("op", "key.setCertificates").put("keyId", keyId).put("certificates", a)
        .put("requestId", UUID.randomUUID().toString());
  }

  private static JsonObject readRequest(String keyId) {
    return new JsonObject().put("op", "key.certificates").put("keyId", keyId);
  }

  private static void assertChain(List<byte[]> expected, JsonObject reply) {
    JsonArray got = reply.getJsonArray("certificates");
    assertNotNull(got, reply.encode());
    assertEquals(expected.size(), got.size(), reply.encode());
    for (int i = 0; i < expected.size(); i++) {
      assertArrayEquals(expected.get(i), Base64.getDecoder().decode(got.getString(i)), "certificate " + i);
    }
  }

  private static void assertBadChain(TestAgents env, JsonObject user, String keyId, List<byte[]> chain, String why) {
    HsmException e = assertThrows(HsmException.class, () -> env.call(0, user, setRequest(keyId, chain)));
    assertEquals(ErrorCode.INVALID_PARAMETER, e.code(), e.getMessage());
    assertTrue(e.getMessage().contains(why), e.getMessage());
  }

  private static void assertCode(ErrorCode code, Supplier<JsonObject> request) {
    HsmException e = assertThrows(HsmException.class, request::get);
    assertEquals(code, e.code(), e.getMessage());
  }

  /** Every token's chains, read from the token, as one string (equal on every HSM, asserted). */
  private static String everyTokensChains(TestAgents env) {
    String first = null;
    for (HsmToken t : env.tokens) {
      String s = t.keyCertificates().rescan().toString() + t.keyCertificates().list().hashCode();
      if (first == null) {
        first = s;
      }
      assertEquals(first, s, t.label());
    }
    return first;
  }

  private static String sameDigestEverywhere(TestAgents env) {
    String first = UsersDigest.of(env.tokens.get(0));
    for (HsmToken t : env.tokens) {
      assertEquals(first, UsersDigest.of(t), t.label());
    }
    return first;
  }

  // --- certificates (Bouncy Castle, signed by a throwaway JDK key) ---

  private static PublicKey publicKey(TestAgents env, JsonObject user, String keyId, String alg) throws Exception {
    byte[] spki = Base64.getDecoder().decode(env.call(1, user, new JsonObject().put("op", "key.publicKey").put("keyId", keyId))
        .getString("spki"));
    return KeyFactory.getInstance(alg).generatePublic(new X509EncodedKeySpec(spki));
  }

  private static KeyPair ecKeyPair() throws Exception {
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(new ECGenParameterSpec("secp256r1"));
    return g.generateKeyPair();
  }

  private static byte[] certificate(String issuer, String subject, PublicKey key, KeyPair signer, boolean ca) throws Exception {
    Instant now = Instant.now();
    JcaX509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(new X500Name(issuer),
        BigInteger.valueOf(now.toEpochMilli()), Date.from(now.minusSeconds(60)), Date.from(now.plusSeconds(3600)),
        new X500Name(subject), key);
    b.addExtension(Extension.basicConstraints, true, new BasicConstraints(ca));
    return b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(signer.getPrivate())).getEncoded();
  }

  private static byte[] pem(byte[] der) {
    return ("-----BEGIN CERTIFICATE-----\n" + Base64.getMimeEncoder().encodeToString(der) + "\n-----END CERTIFICATE-----\n")
        .getBytes(StandardCharsets.US_ASCII);
  }
}
