package io.hsmbridge.agent.replication;

import io.hsmbridge.pkcs11.CryptoService;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.ReplicaBlob;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;

/**
 * Password hashes cross the log sealed. A user entry ({@code PUT_USER}, {@code ACTIVATE}) would otherwise
 * carry the user's Argon2id hash in the clear into every HSM's Raft log files, where whoever reads a data
 * directory could run an offline guessing attack against it. So the agent that submits the entry encrypts
 * the hash INSIDE its token (AES-256-GCM, the user name as associated data) under the cluster's hash-seal
 * key, and every HSM decrypts it inside its token when it applies the entry, storing the hash in the token
 * only ({@link UserRecord#sealedHash}). The key is replicated as the session-proof key is (reserved id
 * {@value #KEY_ID}, generated in one HSM, wrapped under the cluster key, installed everywhere by the first
 * {@code INSTALL_REPLICA} in log order; no owner, so no client can use it), and travels in backups like
 * every key. Entries written before it existed hold plain hashes and are applied as they are. Thread-safe.
 */
public final class HashSeal {
  /** The hash-seal key's id: the ASCII bytes of "hsmbridgehashsk1" in hex. */
  public static final String KEY_ID = "68736d62726964676568617368736b31";
  static final String KEY_LABEL = "hsmbridge password-hash seal key";

  private final HsmToken token;

  public HashSeal(HsmToken token) {
    this.token = token;
  }

  /** Whether this token holds the hash-seal key (installed through the log). */
  public boolean hasKey() {
    return token.keys().holds(KEY_ID);
  }

  /** A new hash-seal key, generated inside this token and wrapped for an {@code INSTALL_REPLICA} entry. */
  public ReplicaBlob newKey() {
    return token.clusterKeys().generateForReplication(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, KEY_LABEL, KEY_ID);
  }

  /**
   * {@code m} with its user record's hash sealed (a user entry, also inside a {@code ONCE}); {@code m} itself
   * when it carries no plain hash. {@code ensureKey} runs first when there is a hash to seal (it installs the
   * key through the log when this token has none).
   */
  public Mutation seal(Mutation m, Runnable ensureKey) {
    if (m instanceof Mutation.PutUser p && !p.user().sealedHash()) {
      ensureKey.run();
      return new Mutation.PutUser(seal(p.user()));
    }
    if (m instanceof Mutation.Activate a && !a.admin().sealedHash()) {
      ensureKey.run();
      return new Mutation.Activate(seal(a.admin()));
    }
    if (m instanceof Mutation.Once o) {
      Mutation inner = seal(o.inner(), ensureKey);
      return inner == o.inner() ? o : new Mutation.Once(o.requestId(), inner);
    }
    return m;
  }

  /** The record with its plain hash sealed under the hash-seal key. */
  private UserRecord seal(UserRecord u) {
    CryptoService.Encrypted e = token.crypto().encrypt(KEY_ID, Algorithm.AES_GCM,
        u.passwordHash().getBytes(StandardCharsets.US_ASCII), aad(u.name()));
    byte[] sealed = Arrays.copyOf(e.iv(), e.iv().length + e.ciphertext().length);
    System.arraycopy(e.ciphertext(), 0, sealed, e.iv().length, e.ciphertext().length);
    return u.withPasswordHash(UserRecord.SEALED_HASH_PREFIX + Base64.getEncoder().withoutPadding().encodeToString(sealed));
  }

  /**
   * The record with its hash opened inside the token, as it is stored; a record with a plain hash (an entry
   * from before sealing) as it is.
   *
   * @throws io.hsmbridge.pkcs11.HsmException when the seal does not open (another cluster's key, a
   *     changed entry, a user name that is not the one sealed with it)
   */
  public UserRecord open(UserRecord u) {
    if (!u.sealedHash()) {
      return u;
    }
    byte[] sealed = Base64.getDecoder().decode(u.passwordHash().substring(UserRecord.SEALED_HASH_PREFIX.length()));
    byte[] iv = Arrays.copyOf(sealed, IV_BYTES);
    byte[] ciphertext = Arrays.copyOfRange(sealed, IV_BYTES, sealed.length);
    byte[] hash = token.crypto().decrypt(KEY_ID, Algorithm.AES_GCM, ciphertext, iv, aad(u.name()));
    return u.withPasswordHash(new String(hash, StandardCharsets.US_ASCII));
  }

  private static final int IV_BYTES = 12;

  private static byte[] aad(String user) {
    return ("hsmbridge.password-hash.v1:" + user).getBytes(StandardCharsets.US_ASCII);
  }
}
