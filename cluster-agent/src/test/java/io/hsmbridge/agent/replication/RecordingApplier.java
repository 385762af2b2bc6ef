package io.hsmbridge.agent.replication;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/** An in-memory {@link Applier} that records what it applied, in order; survives a peer restart like a token would. */
final class RecordingApplier implements Applier {
  record Applied(long index, Mutation mutation) {}

  private final List<Applied> applied = new ArrayList<>();
  private final AtomicLong lastApplied = new AtomicLong();

  @Override
  public synchronized void apply(long index, Mutation mutation) {
    applied.add(new Applied(index, mutation));
  }

  @Override
  public long lastApplied() {
    return lastApplied.get();
  }

  @Override
  public void applied(long index) {
    lastApplied.set(index);
  }

  synchronized List<Applied> entries() {
    return List.copyOf(applied);
  }

  synchronized List<Mutation> mutations() {
    return applied.stream().map(Applied::mutation).toList();
  }

  synchronized int count() {
    return applied.size();
  }
}
