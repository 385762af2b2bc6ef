package io.hsmbridge.agent.replication;

import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.ReplicaBlob;
import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;

/**
 * The proofs a log entry carries ({@link Actor}), made and checked INSIDE the token with the cluster's
 * session-proof key: an HMAC-SHA256 key with a reserved key id ({@value #KEY_ID}) that every HSM holds.
 * It is created like any replicated key: generated inside one HSM, wrapped under the trusted cluster
 * key, installed on every HSM by an {@code INSTALL_REPLICA} entry (the first in log order wins), so it is
 * sensitive, private and wrappable only under the cluster key; it has no owner, so no client may use it
 * (KeyAccess refuses a key without owner to everyone). A front door, a client, or anyone else without a
 * cluster token can therefore neither make nor check a proof.
 *
 * <p>Two proofs: a <b>session proof</b>, issued by the agent that verified a user's password, covers
 * {@code "hsmbridge.session-proof.v1", user, role, sessionId, issuedAt, expiresAt} (DataOutputStream,
 * strings as modified UTF-8); an entry's <b>seal</b>, made by the agent that submits it, covers
 * {@code "hsmbridge.entry-seal.v1"} and the entry's bytes without the seal (actor, session proof,
 * timestamp, submitter, mutation).
 * Thread-safe.
 */
public final class EntryProofs {
  /** The session-proof key's id: the ASCII bytes of "hsmbridgeproofk1" in hex. */
  public static final String KEY_ID = "68736d62726964676570726f6f666b31";
  static final String KEY_LABEL = "hsmbridge session-proof key";
  /** How long a session proof is valid: the bridge's longest session (auth.sessionMaxMinutes default). */
  public static final Duration SESSION_TTL = Duration.ofHours(8);
  /** Clock difference tolerated between the agent that issued a proof and the one that submits an entry. */
  public static final Duration SKEW = Duration.ofMinutes(5);
  private static final SecureRandom RANDOM = new SecureRandom();

  private final HsmToken token;

  public EntryProofs(HsmToken token) {
    this.token = token;
  }

  /** Whether this token holds the session-proof key (installed through the log). */
  public boolean hasKey() {
    return token.keys().holds(KEY_ID);
  }


  /**
   * A new session-proof key, generated inside this token and wrapped under the cluster key, for an
   * {@code INSTALL_REPLICA} entry; nothing is written to the token.
   */
  public ReplicaBlob newKey() {
    return token.clusterKeys().generateForReplication(KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, KEY_LABEL, KEY_ID);
  }

  /** A session proof for a user whose password (and MFA) this agent has just verified. */
  public Actor issue(Actor.Role role, String user, long now) {
    if (role == Actor.Role.AGENT) {
      throw new IllegalArgumentException("an agent's entries carry an entry proof, not a session proof");
    }
    byte[] id = new byte[16];
    RANDOM.nextBytes(id);
    String sessionId = Base64.getUrlEncoder().withoutPadding().encodeToString(id);
    long expiresAt = now + SESSION_TTL.toMillis();
    return new Actor(role, user, sessionId, now, expiresAt, mac(sessionMessage(role, user, sessionId, now, expiresAt)));
  }

  /**
   * Seals an entry this agent submits: an HMAC inside the token over the whole entry but the seal, so
   * that nobody without a cluster token can submit an entry, nor change one, nor choose its timestamp.
   */
  public Entry seal(Actor actor, long timestamp, String hsmId, Mutation m) {
    Entry unsealed = new Entry(inLogForm(actor), timestamp, hsmId, null, m);
    return unsealed.withSeal(mac(sealMessage(unsealed)));
  }

  /**
   * The first byte of a session proof in its log form: {@value #LOG_FORM_MARK} and a 32-byte HMAC (a session
   * proof itself is the 32-byte HMAC alone, so the two are told apart by length).
   */
  static final byte LOG_FORM_MARK = 'L';

  /**
   * {@code actor} as a log entry carries it: its session proof replaced by the proof's log form, an HMAC in
   * the token over the same fields under another label. A session proof is a bearer credential (user, role,
   * session id, times and proof are what a session token carries): written into the Raft log's files, or a
   * backup of them, it would let whoever reads them act as the user until the session expires. The log form
   * proves the same to every HSM that applies the entry (only a cluster token can make it, and only from a
   * session proof it verified), and no front door or agent takes it for a session ({@link #validSession}
   * refuses it).
   */
  public Actor inLogForm(Actor actor) {
    if (actor.role() == Actor.Role.AGENT || actor.proof() == null || isLogForm(actor) || !validSession(actor)) {
      // Only a proof this token verifies turns into a log form: a wrong one (a confused agent's) is logged as
      // it is, worthless as a credential, and refused on apply by every HSM.
      return actor;
    }
    return new Actor(actor.role(), actor.user(), actor.sessionId(), actor.issuedAt(), actor.expiresAt(),
        logFormProof(actor));
  }

  private byte[] logFormProof(Actor a) {
    byte[] mac = mac(logFormMessage(a));
    byte[] form = new byte[1 + mac.length];
    form[0] = LOG_FORM_MARK;
    System.arraycopy(mac, 0, form, 1, mac.length);
    return form;
  }

  static boolean isLogForm(Actor a) {
    byte[] p = a.proof();
    return p != null && p.length == 33 && p[0] == LOG_FORM_MARK;
  }

  /**
   * Whether the actor of a log entry proves a session made by a cluster token: the proof's log form, or (an
   * entry written before the log form existed) the session proof itself. Says nothing about expiry.
   */
  public boolean validInEntry(Actor a) {
    if (!isLogForm(a)) {
      return validSession(a);
    }
    return a.role() != Actor.Role.AGENT && verifies(a, () -> logFormProof(a));
  }

  /**
   * Whether {@code a}'s session proof was made by a cluster token (says nothing about expiry). A proof's log
   * form is not a session proof: refused.
   */
  public boolean validSession(Actor a) {
    if (a.role() == Actor.Role.AGENT || a.proof() == null || isLogForm(a)) {
      return false;
    }
    return verifies(a, () -> mac(sessionMessage(a.role(), a.user(), a.sessionId(), a.issuedAt(), a.expiresAt())));
  }

  /**
   * Whether {@code a}'s proof equals what the token makes for it ({@code expected}, a token HMAC), remembered
   * once it did. A session proof and a log form never share an entry: their bytes differ in length.
   */
  private boolean verifies(Actor a, java.util.function.Supplier<byte[]> expected) {
    VerifiedProof seen = VerifiedProof.of(a);
    if (verified.containsKey(seen)) {
      return true;
    }
    boolean valid = hasKey() && MessageDigest.isEqual(a.proof(), expected.get());
    if (valid) {
      if (verified.size() >= MAX_VERIFIED) {
        verified.clear(); // simpler than LRU: the sessions in use are verified again once each
      }
      verified.put(seen, Boolean.TRUE);
    }
    return valid;
  }

  /**
   * A session proof this token verified, field by field with the proof's bytes. Every request of a session
   * carries the same proof, and checking it again is a token HMAC (measured: the session check took 100-121 us
   * of a request's ~700 us on the host path, more than the HMAC operation the client asked for). Only the MAC's verdict
   * is remembered: expiry, logout, password change, lockout and deletion are checked on every request.
   * The key is the exact tuple the MAC covers plus the proof, so a tuple never verified is always MACed.
   */
  private record VerifiedProof(Actor.Role role, String user, String sessionId, long issuedAt, long expiresAt,
      java.nio.ByteBuffer proof) {
    static VerifiedProof of(Actor a) {
      return new VerifiedProof(a.role(), a.user(), a.sessionId(), a.issuedAt(), a.expiresAt(),
          java.nio.ByteBuffer.wrap(a.proof().clone()));
    }
  }

  /** Bound on remembered proofs (a session each); beyond it the memory is cleared and refilled. */
  static final int MAX_VERIFIED = 10_000;
  private final java.util.concurrent.ConcurrentHashMap<VerifiedProof, Boolean> verified =
      new java.util.concurrent.ConcurrentHashMap<>();

  /** Whether the entry's seal was made by a cluster token over exactly this entry. */
  public boolean validSeal(Entry e) {
    return e.actor() != null && e.seal() != null && hasKey() && MessageDigest.isEqual(e.seal(), mac(sealMessage(e)));
  }

  /**
   * The key of a quorum token's operation fingerprint ({@code RequestHash}): any cluster HSM recomputes it
   * from the token's id and its requester, so no front door or agent has to keep a token between its
   * issue and its use, and a restart of any process loses none.
   */
  public byte[] quorumNonce(String tokenId, String requester) {
    return mac(message(out -> {
      out.writeUTF("hsmbridge.quorum-nonce.v1");
      out.writeUTF(tokenId);
      out.writeUTF(requester);
    }));
  }

  /** The bytes a user with MFA signs to log in with challenge {@code challengeId}: recomputed by any cluster HSM. */
  public byte[] mfaChallenge(String challengeId, String user) {
    return mac(message(out -> {
      out.writeUTF("hsmbridge.mfa-challenge.v1");
      out.writeUTF(challengeId);
      out.writeUTF(user);
    }));
  }

  /** Whether a session proof's validity window holds {@code at} (with {@link #SKEW} before its issue). */
  public static boolean current(Actor a, long at) {
    return a.expiresAt() - a.issuedAt() <= SESSION_TTL.toMillis() && at >= a.issuedAt() - SKEW.toMillis()
        && at <= a.expiresAt();
  }

  private byte[] mac(byte[] message) {
    return token.crypto().mac(KEY_ID, Algorithm.HMAC_SHA256, message);
  }

  private static byte[] sessionMessage(Actor.Role role, String user, String sessionId, long issuedAt, long expiresAt) {
    return message(out -> {
      out.writeUTF("hsmbridge.session-proof.v1");
      out.writeUTF(user);
      out.writeUTF(role.name());
      out.writeUTF(sessionId);
      out.writeLong(issuedAt);
      out.writeLong(expiresAt);
    });
  }

  private static byte[] logFormMessage(Actor a) {
    return message(out -> {
      out.writeUTF("hsmbridge.session-in-log.v1");
      out.writeUTF(a.user());
      out.writeUTF(a.role().name());
      out.writeUTF(a.sessionId());
      out.writeLong(a.issuedAt());
      out.writeLong(a.expiresAt());
    });
  }

  private static byte[] sealMessage(Entry e) {
    return message(out -> {
      out.writeUTF("hsmbridge.entry-seal.v1");
      out.write(e.sealedBytes());
    });
  }

  private interface Writer {
    void write(DataOutputStream out) throws IOException;
  }

  private static byte[] message(Writer w) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      w.write(out);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }
}
