package io.hsmbridge.agent.replication;

import java.util.Arrays;
import java.util.Objects;

/**
 * One log entry as agents submit it (format {@link Mutation#FORMAT_VERSION}): the {@link Mutation} in an
 * envelope that names the {@link Actor} it acts for (with the actor's session proof), the submitter's
 * timestamp (epoch millis), the HSM that submitted it and that HSM's seal, an HMAC made inside its token
 * over everything else ({@link EntryProofs}). Every HSM re-checks at apply that the seal verifies and
 * that this actor may make this mutation at that log index ({@link TokenApplier}).
 *
 * <p>Wire: byte 2 | actor role | actor user | session id | issued-at (long) | expires-at (long) | session
 * proof (bytes or -1) | timestamp (long) | submitter | seal (bytes or -1) | kind | fields, in
 * {@link Mutation}'s encoding. A format-1 entry (the mutation alone) reads as an entry without actor,
 * which TokenApplier refuses. {@link #toString()} shows no proof.
 */
public record Entry(Actor actor, long timestamp, String submitter, byte[] seal, Mutation mutation) {
  public Entry {
    Objects.requireNonNull(mutation, "mutation");
    if (actor != null) {
      Actor.checkName(submitter);
      if (seal != null && seal.length > Actor.MAX_PROOF) {
        throw new IllegalArgumentException("bad seal length in mutation entry");
      }
    }
    seal = seal == null ? null : seal.clone();
  }

  /** A format-1 entry: the mutation alone. */
  static Entry legacy(Mutation m) {
    return new Entry(null, 0, null, null, m);
  }

  @Override
  public byte[] seal() {
    return seal == null ? null : seal.clone();
  }

  /** This entry with another seal (what the seal covers stays). */
  public Entry withSeal(byte[] newSeal) {
    return new Entry(actor, timestamp, submitter, newSeal, mutation);
  }

  public byte[] toBytes() {
    if (actor == null) {
      throw new IllegalStateException("an entry without actor cannot be written");
    }
    return Mutation.encodeEntry(this, true);
  }

  /** What the seal covers: the entry's bytes without the seal. */
  byte[] sealedBytes() {
    return Mutation.encodeEntry(this, false);
  }

  /**
   * @throws IllegalArgumentException on an unknown version or kind, a truncated entry, trailing bytes, or
   *     a field its record refuses
   */
  public static Entry fromBytes(byte[] data) {
    return Mutation.decodeEntry(data);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Entry e && Objects.equals(actor, e.actor) && timestamp == e.timestamp
        && Objects.equals(submitter, e.submitter) && Arrays.equals(seal, e.seal) && mutation.equals(e.mutation);
  }

  @Override
  public int hashCode() {
    return Objects.hash(actor, timestamp, submitter, Arrays.hashCode(seal), mutation);
  }

  @Override
  public String toString() {
    return "Entry[" + actor + ", " + timestamp + ", by " + submitter + (seal == null ? " unsealed" : "") + ", " + mutation + "]";
  }
}
