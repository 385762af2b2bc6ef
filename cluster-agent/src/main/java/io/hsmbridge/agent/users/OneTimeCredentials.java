package io.hsmbridge.agent.users;

import io.hsmbridge.agent.replication.EntryProofs;
import io.hsmbridge.agent.replication.Mutation;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.Access;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Op;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import java.util.EnumSet;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.LongSupplier;

/**
 * Quorum tokens and MFA challenges as cluster state (issue #11: "valid at every front door and kept across
 * the restart of any process"). Nothing is kept between a credential's issue and its use: its id carries
 * its times, and the secret part is an HMAC that any cluster HSM recomputes inside its token with the
 * session-proof key ({@link EntryProofs#quorumNonce}, {@link EntryProofs#mfaChallenge}). Its single use
 * goes through the mutation log ({@link Mutation.Consume}): of two requests presenting one credential,
 * through any front doors, exactly the first in log order goes on.
 *
 * <p>Ids: {@code q1.<random>.<issuedAt>.<expiresAt>} for a quorum token, {@code c1.<random>.<expiresAt>}
 * for an MFA challenge (epoch millis, random: 16 bytes base64url). Whoever changes an id's times changes
 * its secret, which only a cluster HSM can compute: a token whose times were edited matches no document
 * an approver signed, and a challenge whose time was edited matches no signature.
 */
public final class OneTimeCredentials {
  static final Duration CHALLENGE_TTL = Duration.ofMinutes(2);
  static final int DEFAULT_QUORUM_TTL_SECONDS = 600;
  static final int MAX_QUORUM_TTL_SECONDS = 3600;
  /** Clock difference tolerated between the HSM that issued a credential and the one it is presented to. */
  private static final long SKEW_MILLIS = EntryProofs.SKEW.toMillis();
  /** What a quorum can protect (admin services, key management, key usage). */
  public static final Set<Op> QUORUM_OPS = EnumSet.of(Op.USER_CREATE, Op.USER_DELETE, Op.USER_CHANGE_PASSWORD,
      Op.QUORUM_SET, Op.KEY_DELETE, Op.KEY_SET_LABEL, Op.KEY_SET_CERTIFICATES, Op.KEY_WRAP, Op.KEY_SHARE, Op.KEY_UNSHARE, Op.KEY_SET_QUORUM,
      Op.ENCRYPT, Op.DECRYPT, Op.SIGN, Op.VERIFY, Op.MAC, Op.MAC_VERIFY);
  private static final SecureRandom RANDOM = new SecureRandom();

  private final EntryProofs proofs;
  private final io.hsmbridge.pkcs11.ClusterSettings settings;
  private final Runnable ensureProofKey;
  private final Committer commit;
  private final LongSupplier clock;

  /**
   * @param ensureProofKey puts the session-proof key into every HSM first if the cluster has none yet
   * @param commit commits a credential's use through the log (as its user, or as this agent for a login)
   */
  public OneTimeCredentials(EntryProofs proofs, io.hsmbridge.pkcs11.ClusterSettings settings, Runnable ensureProofKey,
      Committer commit, LongSupplier clock) {
    this.proofs = proofs;
    this.settings = settings;
    this.ensureProofKey = ensureProofKey;
    this.commit = commit;
    this.clock = clock;
  }

  // --- MFA challenges -----------------------------------------------------------------------------

  /** auth.challenge: a challenge for {@code user} to sign with its registered key, valid 2 minutes. */
  public JsonObject challenge(String user) {
    ensureProofKey.run();
    long expiresAt = clock.getAsLong() + CHALLENGE_TTL.toMillis();
    String id = "c1." + randomPart() + "." + expiresAt;
    return new JsonObject().put("challengeId", id)
        .put("challenge", Base64.getEncoder().encodeToString(proofs.mfaChallenge(id, user)))
        .put("expiresAt", expiresAt);
  }

  /**
   * Whether {@code mfa} ({@code {challengeId, signature}}) answers a live challenge of {@code u} with its
   * approval key, and the challenge is used up now. False for anything else, never an exception.
   */
  boolean mfaAnswered(Object mfa, UserRecord u) {
    if (!(mfa instanceof JsonObject m) || !(m.getValue("challengeId") instanceof String id)
        || !(m.getValue("signature") instanceof String sig) || u.approvalKeySpki() == null) {
      return false;
    }
    long[] times = times(id, "c1", 1);
    long now = clock.getAsLong();
    if (times == null || times[0] <= now || times[0] > now + CHALLENGE_TTL.toMillis() + SKEW_MILLIS) {
      return false;
    }
    long expiresAt = times[0];
    byte[] signature;
    try {
      signature = Base64.getDecoder().decode(sig);
    } catch (IllegalArgumentException e) {
      return false;
    }
    if (!ApprovalKeys.verify(u.approvalKeySpki(), proofs.mfaChallenge(id, u.name()), signature)) {
      return false;
    }
    try {
      commit.commit(null, new Mutation.Consume(u.name(), id, expiresAt));
      return true;
    } catch (HsmException e) {
      return false; // used already (a replayed answer), or the log could not say: no login either way
    }
  }

  // --- quorum tokens ------------------------------------------------------------------------------

  /** quorum.token: the document approvers sign for exactly {@code body.operation}, requested by {@code p}. */
  public JsonObject quorumToken(JsonObject body, Principal p) {
    if (!(body.getValue("operation") instanceof JsonObject operation)) {
      throw HsmException.badParam("operation must be the request body of the operation to approve");
    }
    Op target = operation.getValue("op") instanceof String w ? Op.fromWire(w) : null;
    if (target == null || !QUORUM_OPS.contains(target)) {
      throw HsmException.badParam("operation.op must be one a quorum can protect: " + QUORUM_OPS.stream().map(Op::wire).toList());
    }
    if (!Access.allows(target, p.role())) {
      throw new HsmException(ErrorCode.ACCESS_DENIED, "access denied: role " + p.role() + " may not " + target.wire());
    }
    Object ttl = body.getValue("ttlSeconds", DEFAULT_QUORUM_TTL_SECONDS);
    if (!(ttl instanceof Number n) || n.intValue() < 1 || n.intValue() > MAX_QUORUM_TTL_SECONDS) {
      throw HsmException.badParam("ttlSeconds must be 1.." + MAX_QUORUM_TTL_SECONDS);
    }
    ensureProofKey.run();
    long now = clock.getAsLong();
    long expiresAt = now + n.intValue() * 1000L;
    String id = "q1." + randomPart() + "." + now + "." + expiresAt;
    String document = document(id, p.user(), target, operation, now, expiresAt);
    return new JsonObject().put("tokenId", id).put("document", document).put("expiresAt", expiresAt);
  }

  /** A quorum token a request presents: the document its approvals must sign, and the token's id and expiry. */
  record Presented(String tokenId, String document, long expiresAt) {}

  /**
   * The document of the token {@code body.quorum.tokenId} for this very request (its op and fields, this
   * requester), as it was issued: approvals signed for another operation or user do not verify over it.
   *
   * @throws HsmException QUORUM_NOT_MET for a malformed or expired token id
   */
  Presented presented(JsonObject body, Principal requester) {
    Op op = body.getValue("op") instanceof String w ? Op.fromWire(w) : null;
    String id = tokenIdOf(body);
    long[] times = times(id, "q1", 2);
    long now = clock.getAsLong();
    if (op == null || times == null || times[0] > now + SKEW_MILLIS || times[1] - times[0] > MAX_QUORUM_TTL_SECONDS * 1000L) {
      throw notMet("quorum token " + (id == null ? "missing: quorum.tokenId" : "id is not one this cluster issues"));
    }
    long issuedAt = times[0];
    long expiresAt = times[1];
    if (expiresAt <= now) {
      throw notMet("the quorum token has expired; request a new one");
    }
    return new Presented(id, document(id, requester.user(), op, body, issuedAt, expiresAt), expiresAt);
  }

  /**
   * Refuses a request that presents a quorum token this HSM knows to be used up, before anything else is
   * checked (as a front door did when it held the tokens): a used token is the answer, not "user exists".
   * The log's own refusal ({@link #useUp}) stays the rule; this only answers early.
   *
   * @throws HsmException QUORUM_NOT_MET
   */
  public void refuseUsed(JsonObject body, Principal requester) {
    String id = tokenIdOf(body);
    if (id != null && !id.isEmpty() && id.length() <= Mutation.Consume.MAX_ID
        && settings.get(io.hsmbridge.agent.replication.Settings.consumed(requester.user(), id), 0) != 0) {
      throw usedAlready(id);
    }
  }

  /**
   * Uses the token up through the log, once its approvals counted: of two requests presenting it, the
   * second is refused wherever it arrives. A token whose approvals did not count is not used up.
   *
   * @throws HsmException QUORUM_NOT_MET when it was used already
   */
  void useUp(Principal requester, Presented t) {
    try {
      commit.commit(requester, new Mutation.Consume(requester.user(), t.tokenId(), t.expiresAt()));
    } catch (HsmException e) {
      if (e.code() == ErrorCode.ACCESS_DENIED) {
        throw usedAlready(t.tokenId());
      }
      throw e;
    }
  }

  /**
   * The document approvers sign: who asks, for exactly which operation (its fields for people to read,
   * secrets hidden, keys sorted; its keyed fingerprint for the agents to match), from when until when.
   */
  private String document(String tokenId, String requester, Op op, JsonObject operation, long issuedAt, long expiresAt) {
    byte[] nonce = proofs.quorumNonce(tokenId, requester);
    return new JsonObject().put("tokenId", tokenId).put("requester", requester).put("op", op.wire())
        .put("operation", sorted(RequestHash.forApprovers(operation))).put("requestHash", RequestHash.of(operation, nonce))
        .put("issuedAt", issuedAt).put("expiresAt", expiresAt).encode();
  }

  /** The same JSON with every object's keys in order: the document does not depend on a body's field order. */
  private static Object sorted(Object v) {
    if (v instanceof JsonObject o) {
      JsonObject s = new JsonObject();
      for (String k : new TreeSet<>(o.fieldNames())) {
        s.put(k, sorted(o.getValue(k)));
      }
      return s;
    }
    if (v instanceof JsonArray a) {
      JsonArray s = new JsonArray();
      a.forEach(e -> s.add(sorted(e)));
      return s;
    }
    return v;
  }

  /** {@code body.quorum.tokenId}, or null. */
  private static String tokenIdOf(JsonObject body) {
    return body.getValue("quorum") instanceof JsonObject q && q.getValue("tokenId") instanceof String id ? id : null;
  }

  /**
   * The {@code count} times (epoch millis) an id of ours carries after its prefix and random part
   * ({@code <prefix>.<random>.<t1>[.<t2>]}), or null for any other string.
   */
  private static long[] times(String id, String prefix, int count) {
    if (id == null || id.length() > Mutation.Consume.MAX_ID) {
      return null;
    }
    String[] parts = id.split("\\.", -1);
    if (parts.length != 2 + count || !parts[0].equals(prefix)) {
      return null;
    }
    long[] times = new long[count];
    for (int i = 0; i < count; i++) {
      Long t = millis(parts[2 + i]);
      if (t == null) {
        return null;
      }
      times[i] = t;
    }
    return times;
  }

  private static HsmException usedAlready(String tokenId) {
    return notMet("quorum token " + tokenId + " was used already; request a new one");
  }

  private static Long millis(String s) {
    if (s.isEmpty() || s.length() > 15 || !s.chars().allMatch(Character::isDigit)) {
      return null;
    }
    return Long.parseLong(s);
  }

  private static String randomPart() {
    byte[] b = new byte[16];
    RANDOM.nextBytes(b);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
  }

  static HsmException notMet(String message) {
    return new HsmException(ErrorCode.QUORUM_NOT_MET, message);
  }
}
