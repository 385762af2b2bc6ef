package io.hsmbridge.jce;

import io.hsmbridge.client.Hsm;
import java.util.List;

/** The certificate chains the cluster keeps beside key pairs ({@code key.certificates}, {@code key.setCertificates}). */
final class Chains {
  private Chains() {}

  /** The chain stored with the key, leaf first; empty when none. */
  static List<byte[]> read(Hsm h, String keyId) {
    return h.certificates(keyId);
  }

  /** Stores the chain (DER, leaf first) with the key on every HSM; the cluster checks the leaf is the key's. */
  static void write(Hsm h, String keyId, List<byte[]> der) {
    h.setCertificates(keyId, der);
  }
}
