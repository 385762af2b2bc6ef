package io.hsmbridge.agent.replication;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.protocol.ErrorCode;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The production {@link Applier}: installs replicas with {@code ClusterKeys.installReplica} (idempotent)
 * and deletes keys with {@code KeyManager.delete} (a missing key is already deleted).
 *
 * <p>Not done yet: the applied index is kept in memory only; it is meant to live in a token object
 * (issue #3 item 5). Until then a restarted agent re-applies the whole log, which is correct because
 * every mutation is idempotent, only slower.
 */
public final class TokenApplier implements Applier {
  private final HsmToken token;
  private final AtomicLong lastApplied = new AtomicLong();

  public TokenApplier(HsmToken token) {
    this.token = token;
  }

  @Override
  public void apply(long index, Mutation mutation) {
    if (mutation instanceof Mutation.InstallReplica r) {
      token.clusterKeys().installReplica(r.toBlob());
    } else if (mutation instanceof Mutation.DeleteKey d) {
      try {
        token.keys().delete(d.keyId());
      } catch (HsmException e) {
        if (e.code() != ErrorCode.UNKNOWN_KEY) {
          throw e;
        }
      }
    }
  }

  @Override
  public long lastApplied() {
    return lastApplied.get();
  }

  @Override
  public void applied(long index) {
    lastApplied.set(index);
  }
}
