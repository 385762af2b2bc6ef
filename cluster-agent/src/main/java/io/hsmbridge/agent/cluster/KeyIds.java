package io.hsmbridge.agent.cluster;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Key ids of keys created in a cluster, derived from the creation's request id. A retried creation
 * (the bridge retries on another HSM when one dies mid-request) carries the same request id, so it
 * produces a replica with the same key id, which every HSM's install treats as "already there": a
 * retry never creates a second key. The request id is an idempotency key, like AWS's ClientToken.
 */
public final class KeyIds {
  private static final byte[] DOMAIN = "hsmbridge.key-id.v1\0".getBytes(StandardCharsets.US_ASCII);

  private KeyIds() {}

  /** 32 lowercase hex characters: the first 16 bytes of SHA-256(domain || requestId). */
  public static String fromRequestId(String requestId) {
    try {
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      sha.update(DOMAIN);
      byte[] hash = sha.digest(requestId.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(hash, 0, 16);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 missing from the JDK", e);
    }
  }
}
