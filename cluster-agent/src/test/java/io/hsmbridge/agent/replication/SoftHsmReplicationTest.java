package io.hsmbridge.agent.replication;

import static io.hsmbridge.agent.replication.TestCluster.await;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.KeyInfo;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three real SoftHSM2 tokens share a cluster key; keys made on the first travel through the Raft log as
 * INSTALL_REPLICA entries (wrapped under the cluster key) and the production {@link TokenApplier} of every
 * peer installs them on its token.
 */
class SoftHsmReplicationTest {
  private static final byte[] M = "ordered by raft".getBytes(StandardCharsets.UTF_8);

  @TempDir
  Path dir;
  private final List<HsmToken> tokens = new ArrayList<>();
  private TestCluster cluster;

  @BeforeEach
  void formCluster() {
    for (int i = 1; i <= 3; i++) {
      tokens.add(HsmToken.open(SoftHsmFixture.newToken("raft-" + i)));
    }
    tokens.get(0).clusterKeys().createClusterKey();
    for (HsmToken joiner : tokens.subList(1, 3)) {
      byte[] transport = joiner.clusterKeys().createTransportKey();
      joiner.clusterKeys().installClusterKey(tokens.get(0).clusterKeys().wrapClusterKeyFor(transport));
    }
    cluster = new TestCluster(dir, tokens.stream().map(TokenApplier::unchecked).toList()).startAll();
  }

  @AfterEach
  void close() {
    if (cluster != null) {
      cluster.close();
    }
    tokens.forEach(HsmToken::close);
  }

  private static List<KeyInfo> sorted(HsmToken t) {
    return t.keys().list().stream().sorted(Comparator.comparing(KeyInfo::keyId)).toList();
  }

  @Test
  @Timeout(90)
  void keysMadeOnOneTokenAreInstalledOnEveryTokenThroughTheLog() throws Exception {
    HsmToken first = tokens.get(0);
    List<String> ids = new ArrayList<>();
    ids.add(first.keys().generate(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "ec via raft", false).keyId());
    ids.add(first.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "aes via raft", false).keyId());
    ids.add(first.keys().generate(KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY, "rsa via raft", false).keyId());
    long last = 0;
    for (String id : ids) {
      // Submitted through the third peer's client: any peer can submit, the leader orders.
      last = cluster.logs[2].submit(Mutation.InstallReplica.of(first.clusterKeys().wrapForReplication(id)))
          .get(20, TimeUnit.SECONDS);
    }
    long committed = last;
    for (MutationLog log : cluster.logs) {
      await("every token applied the log", 30_000, () -> log.appliedIndex() >= committed);
      assertNull(log.failure());
    }
    assertEquals(sorted(first), sorted(tokens.get(1)));
    assertEquals(sorted(first), sorted(tokens.get(2)));
    assertEquals(3, first.keys().count(), "the first token's own keys were installed once (idempotent)");

    String ec = ids.get(0);
    byte[] sig = tokens.get(2).crypto().sign(ec, Algorithm.ECDSA_SHA256, M);
    assertTrue(first.crypto().verify(ec, Algorithm.ECDSA_SHA256, M, sig), "token 1 verifies token 3's signature");
    String rsa = ids.get(2);
    byte[] rsaSig = tokens.get(2).crypto().sign(rsa, Algorithm.RSA_PSS_SHA256, M);
    assertTrue(first.crypto().verify(rsa, Algorithm.RSA_PSS_SHA256, M, rsaSig));
    assertArrayEquals(first.keys().publicKey(rsa), tokens.get(1).keys().publicKey(rsa));

    // DELETE_KEY goes through the log as well and removes the key everywhere; deleting it again is a no-op.
    long deleted = cluster.logs[0].submit(new Mutation.DeleteKey(ids.get(1))).get(20, TimeUnit.SECONDS);
    long again = cluster.logs[1].submit(new Mutation.DeleteKey(ids.get(1))).get(20, TimeUnit.SECONDS);
    assertTrue(again > deleted);
    for (MutationLog log : cluster.logs) {
      await("the delete is applied", 30_000, () -> log.appliedIndex() >= again);
      assertNull(log.failure());
    }
    for (HsmToken t : tokens) {
      assertEquals(2, t.keys().count(), t.label());
      assertTrue(t.keys().list().stream().noneMatch(k -> k.keyId().equals(ids.get(1))), t.label());
    }
  }

  /** Counts what reaches the token, for "nothing was re-applied". */
  private static final class Counting implements Applier {
    private final Applier delegate;
    private final java.util.concurrent.atomic.AtomicInteger applied = new java.util.concurrent.atomic.AtomicInteger();

    Counting(Applier delegate) {
      this.delegate = delegate;
    }

    @Override
    public void apply(long index, Mutation mutation) {
      applied.incrementAndGet();
      delegate.apply(index, mutation);
    }

    @Override
    public long lastApplied() {
      return delegate.lastApplied();
    }

    @Override
    public void applied(long index) {
      delegate.applied(index);
    }
  }

  @Test
  @Timeout(120)
  void keysCreatedForTheClusterAreRelabelledEverywhereAndARestartReappliesNothing() throws Exception {
    HsmToken first = tokens.get(0);
    String ec = "00000000000000000000000000000ec1";
    String aes = "00000000000000000000000000000ae5";
    // Created the cluster way: nothing on any token until the log has ordered it, then installed by every peer.
    cluster.logs[1].submit(Mutation.InstallReplica.of(
        first.clusterKeys().generateForReplication(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "ec", ec))).get(20, TimeUnit.SECONDS);
    cluster.logs[2].submit(Mutation.InstallReplica.of(
        first.clusterKeys().generateForReplication(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "aes", aes))).get(20, TimeUnit.SECONDS);
    long relabelled = cluster.logs[0].submit(new Mutation.SetLabel(ec, "ec renamed")).get(20, TimeUnit.SECONDS);
    for (MutationLog log : cluster.logs) {
      await("applied everywhere", 30_000, () -> log.appliedIndex() >= relabelled);
      assertNull(log.failure());
    }
    String digest = io.hsmbridge.pkcs11.KeyDigest.of(first.keys().rescan());
    for (HsmToken t : tokens) {
      assertEquals("ec renamed", t.keys().describe(ec).label(), t.label());
      assertEquals(relabelled, t.appliedIndex().read(), t.label() + ": the index is in the token");
      assertEquals(digest, io.hsmbridge.pkcs11.KeyDigest.of(t.keys().rescan()), t.label() + ": same keys, same digest");
    }
    CryptoCheck.aesAcross(tokens.get(0), tokens.get(2), aes, M);

    // Every agent restarts: a fresh TokenApplier reads its index from the token, so the replayed log is skipped.
    cluster.close();
    List<Counting> counting = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      Counting c = new Counting(TokenApplier.unchecked(tokens.get(i)));
      counting.add(c);
      cluster.replaceApplier(i, c);
    }
    cluster.startAll();
    long next = cluster.logs[0].submit(new Mutation.SetLabel(aes, "aes renamed")).get(20, TimeUnit.SECONDS);
    for (MutationLog log : cluster.logs) {
      await("the new entry is applied", 30_000, () -> log.appliedIndex() >= next);
    }
    for (int i = 0; i < 3; i++) {
      assertEquals(1, counting.get(i).applied.get(), tokens.get(i).label() + ": only the new entry reached the token");
      assertEquals("aes renamed", tokens.get(i).keys().describe(aes).label());
    }
  }
}
