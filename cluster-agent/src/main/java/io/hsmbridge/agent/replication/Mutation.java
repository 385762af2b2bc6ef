package io.hsmbridge.agent.replication;

import io.hsmbridge.pkcs11.CertificateChain;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.KeyAcl;
import io.hsmbridge.pkcs11.ReplicaBlob;
import io.hsmbridge.pkcs11.UserRecord;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * One entry of the cluster's mutation log: what every HSM applies, in log order. Holds no PIN and no
 * plaintext key material: a replicated key travels only as its {@link ReplicaBlob} fields (the key
 * wrapped under the cluster key, plus metadata). User records carry an Argon2id password hash, never a
 * password ({@link UserRecord} refuses anything that is not an Argon2id PHC string).
 *
 * <p>Wire format (big-endian, {@link DataOutputStream}): byte {@link #FORMAT_VERSION}, byte kind, then
 * the kind's fields. Strings are an int length + UTF-8 bytes, byte arrays an int length + bytes (-1 for
 * null), ints 4 bytes, booleans one byte 0/1, enums by name, string lists an int count + strings. A
 * reader refuses an unknown version or kind, truncated entries, trailing bytes and fields that the
 * records' own constructors refuse (bad user names, key ids, hashes): an entry that could not be
 * applied cannot be submitted, because the same checks run when a mutation is constructed.
 */
public sealed interface Mutation permits Mutation.InstallReplica, Mutation.DeleteKey, Mutation.SetLabel,
    Mutation.PutUser, Mutation.DeleteUser, Mutation.PutAcl, Mutation.DeleteAcl, Mutation.InstallOwnedReplica, Mutation.PutSetting,
    Mutation.RecordLogin, Mutation.Activate, Mutation.LoginAttempt, Mutation.LoginOutcome, Mutation.UnlockUser,
    Mutation.Once, Mutation.Consume, Mutation.RotateKey, Mutation.SetCertificates, Mutation.RestoreCertificates {
  /**
   * The format agents submit: an {@link Entry}, the mutation inside an envelope that names the principal
   * it acts for, with the proof that this principal authenticated (docs/replication.md, "Who may submit
   * what"). Within a version, kinds are added without a new version (kinds 12..14, the login bookkeeping, were): every member of a cluster runs the
   * same build, and an older reader refuses a new kind as unknown.
   */
  byte FORMAT_VERSION = 2;
  /** The first format: the mutation alone, without a principal. Still readable; refused at apply. */
  byte LEGACY_FORMAT_VERSION = 1;
  /** Upper bound for any length field: a corrupt entry fails fast instead of allocating gigabytes. */
  int MAX_FIELD = 1 << 20;

  /** The kind's tag on the wire. */
  Kind kind();

  enum Kind {
    INSTALL_REPLICA(1), DELETE_KEY(2), SET_LABEL(3), PUT_USER(4), DELETE_USER(5), PUT_ACL(6), DELETE_ACL(7),
    INSTALL_OWNED_REPLICA(8), PUT_SETTING(9), RECORD_LOGIN(10), ACTIVATE(11), LOGIN_ATTEMPT(12), LOGIN_OUTCOME(13),
    UNLOCK_USER(14), ONCE(15), CONSUME(16), INSTALL_OWNED_EXPORTABLE(17), ROTATE_KEY(18), SET_CERTIFICATES(19),
    RESTORE_CERTIFICATES(20);

    final byte tag;

    Kind(int tag) {
      this.tag = (byte) tag;
    }

    static Kind of(byte tag) {
      for (Kind k : values()) {
        if (k.tag == tag) {
          return k;
        }
      }
      throw new IllegalArgumentException("unknown mutation kind " + tag);
    }
  }

  /** Installs a replica of a key (same id and policy) from a blob wrapped under the cluster key. Idempotent. */
  record InstallReplica(String keyId, String label, KeySpec spec, KeyUsage usage, byte[] wrapped, byte[] ecPoint)
      implements Mutation {
    public InstallReplica {
      Objects.requireNonNull(keyId, "keyId");
      Objects.requireNonNull(label, "label");
      Objects.requireNonNull(spec, "spec");
      Objects.requireNonNull(usage, "usage");
      Objects.requireNonNull(wrapped, "wrapped");
      wrapped = wrapped.clone();
      ecPoint = ecPoint == null ? null : ecPoint.clone();
    }

    public static InstallReplica of(ReplicaBlob blob) {
      return new InstallReplica(blob.keyId(), blob.label(), blob.spec(), blob.usage(), blob.wrapped(), blob.ecPoint());
    }

    public ReplicaBlob toBlob() {
      return new ReplicaBlob(keyId, label, spec, usage, wrapped.clone(), ecPoint == null ? null : ecPoint.clone());
    }

    @Override
    public byte[] wrapped() {
      return wrapped.clone();
    }

    @Override
    public byte[] ecPoint() {
      return ecPoint == null ? null : ecPoint.clone();
    }

    @Override
    public Kind kind() {
      return Kind.INSTALL_REPLICA;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof InstallReplica r && keyId.equals(r.keyId) && label.equals(r.label) && spec == r.spec
          && usage == r.usage && Arrays.equals(wrapped, r.wrapped) && Arrays.equals(ecPoint, r.ecPoint);
    }

    @Override
    public int hashCode() {
      return Objects.hash(keyId, label, spec, usage, Arrays.hashCode(wrapped), Arrays.hashCode(ecPoint));
    }

    @Override
    public String toString() {
      return "InstallReplica[" + keyId + ", " + spec + ", " + wrapped.length + " wrapped bytes]";
    }
  }

  /** Deletes a key; deleting a key that is not there is a no-op (so re-applying is harmless). */
  record DeleteKey(String keyId) implements Mutation {
    public DeleteKey {
      Objects.requireNonNull(keyId, "keyId");
    }

    @Override
    public Kind kind() {
      return Kind.DELETE_KEY;
    }
  }

  /** Relabels a key (both halves of a pair); a key that is not there is a no-op, and re-applying is harmless. */
  record SetLabel(String keyId, String label) implements Mutation {
    public SetLabel {
      Objects.requireNonNull(keyId, "keyId");
      Objects.requireNonNull(label, "label");
    }

    @Override
    public Kind kind() {
      return Kind.SET_LABEL;
    }
  }

  /**
   * An agent's repair of a key's chain (ClusterOperations' {@code agent.repair}, after the key's own
   * re-replication): the chain the repairing HSM holds, applied only where the token holds the key and has no
   * chain for it, checked as {@link SetCertificates} is. So a repair restores what drift took and never replaces
   * or brings back a chain its owner set or removed on the HSMs that kept it.
   */
  record RestoreCertificates(SetCertificates chain) implements Mutation {
    public RestoreCertificates {
      java.util.Objects.requireNonNull(chain, "chain");
      if (chain.certificates.isEmpty()) {
        throw HsmException.badParam("a chain to restore has at least one certificate");
      }
    }

    public String keyId() {
      return chain.keyId();
    }

    @Override
    public Kind kind() {
      return Kind.RESTORE_CERTIFICATES;
    }

    @Override
    public String toString() {
      return "RestoreCertificates[" + chain.keyId() + ", " + chain.certificates.size() + " certificates]";
    }
  }

  /**
   * Sets the X.509 chain stored beside an asymmetric key (DER, leaf first), or removes it when
   * {@code certificates} is empty. Applied only where the token holds the key (elsewhere a no-op, as an ACL),
   * and only when the leaf carries the key's public key ({@link CertificateChains}, checked again at apply);
   * re-applying is harmless. Bounds: {@link CertificateChain} (0..10 certificates, 16 KiB each, 64 KiB in all).
   */
  record SetCertificates(String keyId, List<byte[]> certificates) implements Mutation {
    public SetCertificates {
      if (!KeyAcl.isKeyId(keyId)) {
        throw HsmException.badParam("key id must be 32 hex characters");
      }
      keyId = keyId.toLowerCase(Locale.ROOT);
      certificates = CertificateChain.checkBounds(certificates);
    }

    @Override
    public List<byte[]> certificates() {
      List<byte[]> out = new ArrayList<>(certificates.size());
      certificates.forEach(c -> out.add(c.clone()));
      return List.copyOf(out);
    }

    @Override
    public Kind kind() {
      return Kind.SET_CERTIFICATES;
    }

    @Override
    public boolean equals(Object o) {
      if (!(o instanceof SetCertificates s) || !keyId.equals(s.keyId) || certificates.size() != s.certificates.size()) {
        return false;
      }
      for (int i = 0; i < certificates.size(); i++) {
        if (!Arrays.equals(certificates.get(i), s.certificates.get(i))) {
          return false;
        }
      }
      return true;
    }

    @Override
    public int hashCode() {
      int h = keyId.hashCode();
      for (byte[] c : certificates) {
        h = 31 * h + Arrays.hashCode(c);
      }
      return h;
    }

    @Override
    public String toString() {
      return "SetCertificates[" + keyId + ", " + certificates.size() + " certificates]";
    }
  }

  /**
   * Creates or replaces a cluster user (all fields; the password travels only as its Argon2id hash).
   * Re-applying is harmless. A change of one field (failed-login count, lock, password) is a whole new
   * record: concurrent changes of one user are last-writer-wins in log order.
   */
  record PutUser(UserRecord user) implements Mutation {
    public PutUser {
      Objects.requireNonNull(user, "user");
    }

    @Override
    public Kind kind() {
      return Kind.PUT_USER;
    }
  }

  /**
   * Deletes a cluster user and removes the name from every key's shares; deleting an absent user is a
   * no-op. Keys the user owns keep their owner name (the submitter must refuse to delete an owner).
   */
  record DeleteUser(String name) implements Mutation {
    public DeleteUser {
      name = UserRecord.checkName(name);
    }

    @Override
    public Kind kind() {
      return Kind.DELETE_USER;
    }
  }

  /**
   * Sets a key's owner and shares (share, unshare, change of owner). Applied only where the token holds
   * the key (elsewhere a no-op), so no HSM keeps an ACL for a key it does not have.
   */
  record PutAcl(KeyAcl acl) implements Mutation {
    public PutAcl {
      Objects.requireNonNull(acl, "acl");
    }

    @Override
    public Kind kind() {
      return Kind.PUT_ACL;
    }
  }

  /** Removes a key's ACL (the key stays); removing an absent ACL is a no-op. */
  record DeleteAcl(String keyId) implements Mutation {
    public DeleteAcl {
      if (!KeyAcl.isKeyId(keyId)) {
        throw HsmException.badParam("key id must be 32 hex characters");
      }
      keyId = keyId.toLowerCase(Locale.ROOT);
    }

    @Override
    public Kind kind() {
      return Kind.DELETE_ACL;
    }
  }

  /**
   * A key creation that carries its owner: one entry, so the log never holds a key without its ACL. An
   * HSM that does not hold the key yet writes the ACL, then installs the key (a crash in between is
   * repaired by the re-apply); an HSM that already holds the key (an earlier creation with the same id
   * won, as for INSTALL_REPLICA) changes neither key nor ACL, so a colliding creation cannot take over
   * someone else's key.
   *
   * <p>{@code exportable}: the key was wrapped under the cluster's export key and is installed exportable,
   * as it was made (kind {@link Kind#INSTALL_OWNED_EXPORTABLE}, same fields).
   */
  record InstallOwnedReplica(InstallReplica replica, KeyAcl acl, boolean exportable) implements Mutation {
    public InstallOwnedReplica {
      Objects.requireNonNull(replica, "replica");
      Objects.requireNonNull(acl, "acl");
      if (!acl.keyId().equals(replica.keyId().toLowerCase(Locale.ROOT))) {
        throw HsmException.badParam("the ACL is for another key than the replica");
      }
    }

    public InstallOwnedReplica(InstallReplica replica, KeyAcl acl) {
      this(replica, acl, false);
    }

    public static InstallOwnedReplica of(ReplicaBlob blob, KeyAcl acl) {
      return new InstallOwnedReplica(InstallReplica.of(blob), acl, false);
    }

    /** @param exportable the blob is wrapped under the export key (an exportable key's creation) */
    public static InstallOwnedReplica of(ReplicaBlob blob, KeyAcl acl, boolean exportable) {
      return new InstallOwnedReplica(InstallReplica.of(blob), acl, exportable);
    }

    @Override
    public Kind kind() {
      return exportable ? Kind.INSTALL_OWNED_EXPORTABLE : Kind.INSTALL_OWNED_REPLICA;
    }

    @Override
    public String toString() {
      return "InstallOwnedReplica[" + replica + ", owner " + acl.owner() + ", " + acl.shares().size() + " shares"
          + (exportable ? ", exportable" : "") + "]";
    }
  }

  /**
   * A user's change that must happen at most once per request id, however often the request is sent
   * (issue #11 "no ambiguous outcomes"): applied only if the log holds no outcome of the same user's
   * request id yet ({@link Settings#outcome}), which the same entry then records on every HSM. A client
   * that lost the answer sends the request again and gets "done", never a second change or an error
   * made by its own first attempt ("user exists"). The inner mutation is never another {@code Once}.
   */
  record Once(String requestId, Mutation inner) implements Mutation {
    /** As the front door allows (RequestValidator): 1 to 64 characters. */
    public static final int MAX_REQUEST_ID = 64;

    public Once {
      Objects.requireNonNull(inner, "inner");
      if (requestId == null || requestId.isEmpty() || requestId.length() > MAX_REQUEST_ID) {
        throw new IllegalArgumentException("a requestId is 1 to " + MAX_REQUEST_ID + " characters");
      }
      if (inner instanceof Once) {
        throw new IllegalArgumentException("a Once entry cannot hold another");
      }
    }

    @Override
    public Kind kind() {
      return Kind.ONCE;
    }
  }

  /**
   * A one-time credential of {@code user} is used: a quorum token, an MFA challenge. Refused at apply when
   * the log holds its use already ({@link Settings#consumed}), so of two requests presenting one token,
   * through any front doors, exactly the first in log order goes on. Recorded until {@code expiresAt}
   * (epoch millis; the credential is refused for its age after that), then pruned.
   */
  record Consume(String user, String id, long expiresAt) implements Mutation {
    /** Longest id of a one-time credential (a quorum token id or an MFA challenge id). */
    public static final int MAX_ID = 128;

    public Consume {
      UserRecord.checkName(user);
      if (id == null || id.isEmpty() || id.length() > MAX_ID) {
        throw new IllegalArgumentException("a one-time credential id is 1 to " + MAX_ID + " characters");
      }
      if (expiresAt <= 0) {
        throw new IllegalArgumentException("a one-time credential is recorded with its expiry");
      }
    }

    @Override
    public Kind kind() {
      return Kind.CONSUME;
    }
  }

  /** Sets a named cluster setting (a quorum value, a user's MFA switch) on every HSM. */
  record PutSetting(String name, long value) implements Mutation {
    public PutSetting {
      io.hsmbridge.pkcs11.ClusterSettings.checkName(name);
    }

    @Override
    public Kind kind() {
      return Kind.PUT_SETTING;
    }
  }

  /**
   * The outcome of one login, as builds before {@link LoginAttempt} wrote it (still applied, as then, for
   * logs that hold it; no longer submitted): a failure adds one and locks the user at
   * {@link #LOCKOUT_AFTER}; a success resets the count of an unlocked user. An absent user: no-op.
   */
  record RecordLogin(String name, boolean success) implements Mutation {
    /** Consecutive failed logins, counted cluster-wide, after which a user is locked. */
    public static final int LOCKOUT_AFTER = 5;

    public RecordLogin {
      name = UserRecord.checkName(name);
    }

    @Override
    public Kind kind() {
      return Kind.RECORD_LOGIN;
    }
  }

  /**
   * A login asks for the right to evaluate one password (docs/users.md, "Lockout"). Applied in log order
   * on every HSM ({@code LoginLedger}), it is admitted only while the user's confirmed failures plus the
   * attempts admitted and still pending stay below {@link RecordLogin#LOCKOUT_AFTER}; only an admitted
   * attempt evaluates the password, so at most that many wrong passwords are evaluated between two
   * successes, whatever the concurrency and whichever HSMs the logins reach.
   *
   * @param name the user (canonical)
   * @param attemptId the attempt's random id ({@value #ATTEMPT_ID_PATTERN}), repeated by its outcome
   * @param timestamp the submitting agent's clock (epoch millis): entries carry time so that every HSM
   *     judges a pending attempt's age alike
   */
  record LoginAttempt(String name, String attemptId, long timestamp) implements Mutation {
    public static final String ATTEMPT_ID_PATTERN = "[0-9a-f]{16}";

    public LoginAttempt {
      name = UserRecord.checkName(name);
      checkAttemptId(attemptId);
    }

    @Override
    public Kind kind() {
      return Kind.LOGIN_ATTEMPT;
    }
  }

  /**
   * What an admitted {@link LoginAttempt} found: a failure counts (and locks the user at
   * {@link RecordLogin#LOCKOUT_AFTER}); a success is accepted only if the attempt is still pending and the
   * user is not locked at this index, and then resets the count. The session is handed out only after
   * this entry was applied and accepted.
   */
  record LoginOutcome(String name, String attemptId, boolean success, long timestamp) implements Mutation {
    public LoginOutcome {
      name = UserRecord.checkName(name);
      checkAttemptId(attemptId);
    }

    @Override
    public Kind kind() {
      return Kind.LOGIN_OUTCOME;
    }
  }

  /**
   * An admin's unlock: clears the user's lock and failed-login count (its pending attempts stay and end
   * as they end). A kind of its own, because a PUT_USER keeps the stored login bookkeeping: a record read
   * before a lock (a password change in flight) must not unlock the user.
   */
  record UnlockUser(String name) implements Mutation {
    public UnlockUser {
      name = UserRecord.checkName(name);
    }

    @Override
    public Kind kind() {
      return Kind.UNLOCK_USER;
    }
  }

  /**
   * A rotation of a trusted key of the cluster ({@link Target}: the backup key, docs/backups.md "Rotating the
   * backup key"; the cluster key, docs/replication.md "Rotating the cluster key"): its next generation, made
   * inside the origin HSM and wrapped under the cluster's key carrier, which every HSM's SO unwraps. The label
   * holds the rotation's random id, so that two rotations racing for one generation are told apart: the first
   * applied wins on every HSM, the second is refused everywhere.
   */
  record RotateKey(Target target, int generation, String label, byte[] wrapped) implements Mutation {
    /** Which key a rotation rotates; its wire tag. */
    public enum Target {
      BACKUP_KEY(1), CLUSTER_KEY(2);

      final byte tag;

      Target(int tag) {
        this.tag = (byte) tag;
      }

      static Target of(byte tag) {
        for (Target t : values()) {
          if (t.tag == tag) {
            return t;
          }
        }
        throw new IllegalArgumentException("unknown rotation target " + tag);
      }
    }

    public RotateKey {
      Objects.requireNonNull(target, "target");
      if (generation < 2 || generation > io.hsmbridge.pkcs11.BackupKeys.MAX_GENERATION) {
        throw new IllegalArgumentException("a rotation makes generation 2.." + io.hsmbridge.pkcs11.BackupKeys.MAX_GENERATION);
      }
      if (label == null || label.isEmpty() || label.length() > 128) {
        throw new IllegalArgumentException("a rotation's label is 1..128 characters");
      }
      if (wrapped == null || wrapped.length < 24 || wrapped.length > 64) {
        throw new IllegalArgumentException("a rotation's wrapped key is an AES key wrapped with padding (24..64 bytes)");
      }
      wrapped = wrapped.clone();
    }

    @Override
    public byte[] wrapped() {
      return wrapped.clone();
    }

    @Override
    public Kind kind() {
      return Kind.ROTATE_KEY;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof RotateKey r && r.target == target && r.generation == generation && r.label.equals(label)
          && Arrays.equals(r.wrapped, wrapped);
    }

    @Override
    public int hashCode() {
      return Objects.hash(target, generation, label, Arrays.hashCode(wrapped));
    }

    @Override
    public String toString() {
      return "RotateKey[" + target + ", generation " + generation + "]";
    }
  }

  private static void checkAttemptId(String attemptId) {
    if (attemptId == null || !attemptId.matches(LoginAttempt.ATTEMPT_ID_PATTERN)) {
      throw HsmException.badParam("login attempt id must match " + LoginAttempt.ATTEMPT_ID_PATTERN);
    }
  }

  /**
   * Activation: creates the first admin, but only on a token that holds no user at all, so that of two
   * activations racing through different HSMs exactly the first in log order wins everywhere.
   */
  record Activate(UserRecord admin) implements Mutation {
    public Activate {
      Objects.requireNonNull(admin, "admin");
    }

    @Override
    public Kind kind() {
      return Kind.ACTIVATE;
    }
  }

  /**
   * This mutation alone, in the format-1 layout ({@link #LEGACY_FORMAT_VERSION} | kind | fields): an
   * entry without a principal, which {@link TokenApplier} refuses. Kept for reading old logs and for
   * tests of the field encoding; what agents submit is an {@link Entry} (format {@link #FORMAT_VERSION}).
   */
  default byte[] toBytes() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(LEGACY_FORMAT_VERSION);
      writeBody(this, out);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  /** Writes kind and fields. */
  private static void writeBody(Mutation m, DataOutputStream out) throws IOException {
    out.writeByte(m.kind().tag);
    if (m instanceof InstallReplica r) {
      writeReplica(out, r);
    } else if (m instanceof DeleteKey d) {
      writeString(out, d.keyId());
    } else if (m instanceof SetLabel l) {
      writeString(out, l.keyId());
      writeString(out, l.label());
    } else if (m instanceof PutUser p) {
      writeUser(out, p.user());
    } else if (m instanceof Activate a) {
      writeUser(out, a.admin());
    } else if (m instanceof PutSetting p) {
      writeString(out, p.name());
      out.writeLong(p.value());
    } else if (m instanceof RecordLogin l) {
      writeString(out, l.name());
      out.writeByte(l.success() ? 1 : 0);
    } else if (m instanceof LoginAttempt a) {
      writeString(out, a.name());
      writeString(out, a.attemptId());
      out.writeLong(a.timestamp());
    } else if (m instanceof LoginOutcome o) {
      writeString(out, o.name());
      writeString(out, o.attemptId());
      out.writeByte(o.success() ? 1 : 0);
      out.writeLong(o.timestamp());
    } else if (m instanceof UnlockUser u) {
      writeString(out, u.name());
    } else if (m instanceof DeleteUser d) {
      writeString(out, d.name());
    } else if (m instanceof PutAcl a) {
      writeAcl(out, a.acl());
    } else if (m instanceof DeleteAcl d) {
      writeString(out, d.keyId());
    } else if (m instanceof InstallOwnedReplica o) {
      writeReplica(out, o.replica());
      writeString(out, o.acl().owner());
      writeShares(out, o.acl());
    } else if (m instanceof Once o) {
      writeString(out, o.requestId());
      writeBody(o.inner(), out);
    } else if (m instanceof Consume c) {
      writeString(out, c.user());
      writeString(out, c.id());
      out.writeLong(c.expiresAt());
    } else if (m instanceof SetCertificates c) {
      writeChain(out, c);
    } else if (m instanceof RestoreCertificates r) {
      writeChain(out, r.chain());
    } else if (m instanceof RotateKey r) {
      out.writeByte(r.target().tag);
      out.writeInt(r.generation());
      writeString(out, r.label());
      writeBytes(out, r.wrapped());
    }
  }

  /**
   * Reads the mutation of a log entry of either format (1: the mutation alone; 2: an {@link Entry}, whose
   * envelope is read and checked for shape, then dropped). To apply an entry, read it with
   * {@link Entry#fromBytes}, which keeps the principal.
   *
   * @throws IllegalArgumentException on an unknown version or kind, a truncated entry, trailing bytes or
   *     a field its record refuses (e.g. a bad user name or password hash)
   */
  static Mutation fromBytes(byte[] data) {
    return decodeEntry(data).mutation();
  }

  /**
   * {@link Entry#toBytes()}: format {@link #FORMAT_VERSION}, the envelope, then kind and fields; without
   * the seal when {@code withSeal} is false (what the seal covers).
   */
  static byte[] encodeEntry(Entry e, boolean withSeal) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(FORMAT_VERSION);
      Actor a = e.actor();
      writeString(out, a.role().name());
      writeString(out, a.user());
      writeString(out, a.sessionId());
      out.writeLong(a.issuedAt());
      out.writeLong(a.expiresAt());
      writeBytes(out, a.proof());
      out.writeLong(e.timestamp());
      writeString(out, e.submitter());
      if (withSeal) {
        writeBytes(out, e.seal());
      }
      writeBody(e.mutation(), out);
    } catch (IOException x) {
      throw new UncheckedIOException(x);
    }
    return bytes.toByteArray();
  }

  /**
   * {@link Entry#fromBytes}: a format-2 entry with its envelope, or a format-1 entry (the mutation alone)
   * as an entry without actor.
   */
  static Entry decodeEntry(byte[] data) {
    try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(data))) {
      byte version = in.readByte();
      if (version == LEGACY_FORMAT_VERSION) {
        return Entry.legacy(readBody(in));
      }
      if (version != FORMAT_VERSION) {
        throw new IllegalArgumentException("unsupported mutation format version " + version);
      }
      Actor.Role role = Actor.Role.parse(readString(in));
      Actor actor = new Actor(role, readString(in), readString(in), in.readLong(), in.readLong(), readBytes(in));
      long timestamp = in.readLong();
      String submitter = readString(in);
      byte[] seal = readBytes(in);
      return new Entry(actor, timestamp, submitter, seal, readBody(in));
    } catch (IOException x) {
      throw new IllegalArgumentException("truncated mutation entry", x);
    }
  }

  private static void writeChain(DataOutputStream out, SetCertificates c) throws IOException {
    writeString(out, c.keyId());
    out.writeInt(c.certificates.size());
    for (byte[] der : c.certificates) {
      writeBytes(out, der);
    }
  }

  /** Reads kind and fields, and refuses trailing bytes. */
  private static Mutation readBody(DataInputStream in) throws IOException {
    try {
      Kind kind = Kind.of(in.readByte());
      Mutation m = switch (kind) {
        case INSTALL_REPLICA -> readReplica(in);
        case DELETE_KEY -> new DeleteKey(readString(in));
        case SET_LABEL -> new SetLabel(readString(in), readString(in));
        case PUT_USER -> new PutUser(readUser(in));
        case ACTIVATE -> new Activate(readUser(in));
        case PUT_SETTING -> new PutSetting(readString(in), in.readLong());
        case RECORD_LOGIN -> new RecordLogin(readString(in), readBoolean(in));
        case LOGIN_ATTEMPT -> new LoginAttempt(readString(in), readString(in), in.readLong());
        case LOGIN_OUTCOME -> new LoginOutcome(readString(in), readString(in), readBoolean(in), in.readLong());
        case UNLOCK_USER -> new UnlockUser(readString(in));
        case DELETE_USER -> new DeleteUser(readString(in));
        case PUT_ACL -> new PutAcl(new KeyAcl(readCanonicalKeyId(in), readString(in), readShares(in)));
        case DELETE_ACL -> new DeleteAcl(readCanonicalKeyId(in));
        case INSTALL_OWNED_REPLICA, INSTALL_OWNED_EXPORTABLE -> {
          boolean exportable = kind == Kind.INSTALL_OWNED_EXPORTABLE;
          InstallReplica r = readReplica(in);
          yield new InstallOwnedReplica(r, new KeyAcl(r.keyId(), readString(in), readShares(in)), exportable);
        }
        case ONCE -> readOnce(in);
        case CONSUME -> new Consume(readString(in), readString(in), in.readLong());
        case ROTATE_KEY -> new RotateKey(RotateKey.Target.of(in.readByte()), in.readInt(), readString(in), readBytes(in));
        case SET_CERTIFICATES -> new SetCertificates(readCanonicalKeyId(in), readCertificates(in));
        case RESTORE_CERTIFICATES -> new RestoreCertificates(new SetCertificates(readCanonicalKeyId(in), readCertificates(in)));
      };
      if (in.available() > 0) {
        throw new IllegalArgumentException(in.available() + " trailing bytes after a " + m.kind() + " mutation");
      }
      return m;
    } catch (HsmException e) {
      // A field the record refuses; the message never holds a password hash (see UserRecord).
      throw new IllegalArgumentException("invalid field in mutation entry: " + e.getMessage(), e);
    }
  }

  /**
   * A {@link Once}: its request id, then the inner mutation, whose kind is checked before it is read, so
   * that an entry of nested ONCE kinds fails at once instead of recursing as deep as its bytes allow.
   */
  private static Once readOnce(DataInputStream in) throws IOException {
    String requestId = readString(in);
    in.mark(1);
    if (in.readByte() == Kind.ONCE.tag) {
      throw new IllegalArgumentException("a Once entry cannot hold another");
    }
    in.reset();
    return new Once(requestId, readBody(in));
  }

  private static void writeUser(DataOutputStream out, UserRecord u) throws IOException {
    writeString(out, u.name());
    writeString(out, u.role());
    writeString(out, u.passwordHash());
    out.writeInt(u.failedLogins());
    out.writeByte(u.locked() ? 1 : 0);
    writeBytes(out, u.approvalKeySpki());
  }

  private static UserRecord readUser(DataInputStream in) throws IOException {
    return new UserRecord(readString(in), readString(in), readString(in), in.readInt(), readBoolean(in), readBytes(in));
  }

  private static void writeReplica(DataOutputStream out, InstallReplica r) throws IOException {
    writeString(out, r.keyId);
    writeString(out, r.label);
    writeString(out, r.spec.name());
    writeString(out, r.usage.name());
    writeBytes(out, r.wrapped);
    writeBytes(out, r.ecPoint);
  }

  private static InstallReplica readReplica(DataInputStream in) throws IOException {
    return new InstallReplica(readString(in), readString(in), KeySpec.valueOf(readString(in)),
        KeyUsage.valueOf(readString(in)), requireBytes(readBytes(in)), readBytes(in));
  }

  private static void writeAcl(DataOutputStream out, KeyAcl acl) throws IOException {
    writeString(out, acl.keyId());
    writeString(out, acl.owner());
    writeShares(out, acl);
  }

  private static void writeShares(DataOutputStream out, KeyAcl acl) throws IOException {
    out.writeInt(acl.shares().size());
    for (String user : acl.shares()) {
      writeString(out, user);
    }
  }

  /**
   * An int count (0..KeyAcl.MAX_SHARES) and that many user names in strictly ascending order, as written
   * (so duplicates are refused and an ACL has exactly one encoding).
   */
  private static java.util.Set<String> readShares(DataInputStream in) throws IOException {
    int n = in.readInt();
    if (n < 0 || n > KeyAcl.MAX_SHARES) {
      throw new IllegalArgumentException("bad share count " + n + " in mutation entry");
    }
    List<String> shares = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      String user = readString(in);
      if (i > 0 && shares.get(i - 1).compareTo(user) >= 0) {
        throw new IllegalArgumentException("shares not in ascending order (or repeated) in mutation entry");
      }
      shares.add(user);
    }
    return new HashSet<>(shares);
  }

  /**
   * An int count (0..CertificateChain.MAX_CERTIFICATES, checked before anything is read) and that many
   * DER certificates; their sizes are checked by {@link SetCertificates}'s constructor.
   */
  private static List<byte[]> readCertificates(DataInputStream in) throws IOException {
    int n = in.readInt();
    if (n < 0 || n > CertificateChain.MAX_CERTIFICATES) {
      throw new IllegalArgumentException("bad certificate count " + n + " in mutation entry");
    }
    List<byte[]> out = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      out.add(requireBytes(readBytes(in)));
    }
    return out;
  }

  /** A key id as written: 32 lowercase hex characters. */
  private static String readCanonicalKeyId(DataInputStream in) throws IOException {
    String keyId = readString(in);
    if (!KeyAcl.isKeyId(keyId) || !keyId.equals(keyId.toLowerCase(Locale.ROOT))) {
      throw new IllegalArgumentException("bad key id in mutation entry");
    }
    return keyId;
  }

  private static boolean readBoolean(DataInputStream in) throws IOException {
    byte b = in.readByte();
    if (b != 0 && b != 1) {
      throw new IllegalArgumentException("bad boolean " + b + " in mutation entry");
    }
    return b == 1;
  }

  private static void writeString(DataOutputStream out, String s) throws IOException {
    writeBytes(out, s.getBytes(StandardCharsets.UTF_8));
  }

  private static void writeBytes(DataOutputStream out, byte[] b) throws IOException {
    if (b == null) {
      out.writeInt(-1);
      return;
    }
    out.writeInt(b.length);
    out.write(b);
  }

  private static String readString(DataInputStream in) throws IOException {
    return new String(requireBytes(readBytes(in)), StandardCharsets.UTF_8);
  }

  private static byte[] requireBytes(byte[] b) {
    if (b == null) {
      throw new IllegalArgumentException("missing field in mutation entry");
    }
    return b;
  }

  private static byte[] readBytes(DataInputStream in) throws IOException {
    int n = in.readInt();
    if (n == -1) {
      return null;
    }
    if (n < 0 || n > MAX_FIELD) {
      throw new IllegalArgumentException("bad field length " + n + " in mutation entry");
    }
    byte[] b = in.readNBytes(n);
    if (b.length != n) {
      throw new java.io.EOFException("field of " + n + " bytes truncated to " + b.length);
    }
    return b;
  }
}
