package io.hsmbridge.agent.replication;

import java.util.Objects;

/**
 * One log entry as agents submit it (format {@link Mutation#FORMAT_VERSION}): the {@link Mutation} and
 * its envelope, the {@link Actor} it acts for and the submitter's timestamp (epoch millis). Every HSM
 * re-checks at apply that this actor may make this mutation at that log index ({@link TokenApplier}).
 *
 * <p>Wire: byte 2 | role | user | session id | issued-at (long) | expires-at (long) | proof (bytes or
 * -1) | timestamp (long) | kind | fields, in {@link Mutation}'s encoding. A format-1 entry (the mutation
 * alone) reads as an entry with a null actor, which TokenApplier refuses.
 */
public record Entry(Actor actor, long timestamp, Mutation mutation) {
  public Entry {
    Objects.requireNonNull(mutation, "mutation");
  }

  public byte[] toBytes() {
    if (actor == null) {
      throw new IllegalStateException("an entry without actor cannot be written");
    }
    return Mutation.encodeEntry(this);
  }

  /**
   * @throws IllegalArgumentException on an unknown version or kind, a truncated entry, trailing bytes, or
   *     a field its record refuses
   */
  public static Entry fromBytes(byte[] data) {
    return Mutation.decodeEntry(data);
  }

  @Override
  public String toString() {
    return "Entry[" + actor + ", " + timestamp + ", " + mutation + "]";
  }
}
