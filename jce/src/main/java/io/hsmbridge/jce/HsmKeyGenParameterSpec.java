package io.hsmbridge.jce;

import java.security.spec.AlgorithmParameterSpec;
import java.util.Objects;

/**
 * What to call a key this provider's {@code KeyGenerator} or {@code KeyPairGenerator} makes, and the
 * request id that makes the creation safe to retry.
 *
 * <pre>
 * KeyPairGenerator g = KeyPairGenerator.getInstance("EC", "HsmBridge");
 * g.initialize(new HsmKeyGenParameterSpec("web-tls", 256));          // EC P-256 labelled web-tls
 * KeyGenerator k = KeyGenerator.getInstance("AES", "HsmBridge");
 * k.init(new HsmKeyGenParameterSpec("orders-db", 256).withRequestId("orders-db-key-1"));
 * </pre>
 *
 * @param label the key's label (KeyStore alias): 1 to 64 characters
 * @param size AES 128/256, RSA 2048/3072/4096, EC 256/384 (P-256, P-384), Ed25519 255; 0 for the default
 *     (AES 256, RSA 2048, EC 256)
 * @param requestId null, or 1 to 64 characters: a creation sent again with the same id returns the key the
 *     first made instead of a second key
 */
public record HsmKeyGenParameterSpec(String label, int size, String requestId) implements AlgorithmParameterSpec {
  public HsmKeyGenParameterSpec {
    Objects.requireNonNull(label, "label");
    if (label.isEmpty() || label.length() > 64) {
      throw new IllegalArgumentException("a label is 1 to 64 characters");
    }
    if (requestId != null && (requestId.isEmpty() || requestId.length() > 64)) {
      throw new IllegalArgumentException("a requestId is 1 to 64 characters");
    }
  }

  public HsmKeyGenParameterSpec(String label, int size) {
    this(label, size, null);
  }

  /** The same spec with a request id. */
  public HsmKeyGenParameterSpec withRequestId(String id) {
    return new HsmKeyGenParameterSpec(label, size, id);
  }
}
