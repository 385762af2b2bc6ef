package io.hsmbridge.jce;

import io.hsmbridge.client.Keys;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.client.KeyInfo;
import io.hsmbridge.protocol.KeySpec;
import java.security.GeneralSecurityException;
import java.security.ProviderException;
import java.security.SecureRandom;
import java.util.HexFormat;

/** A key creation as the generators ask for it: which spec, under which label, with which request id. */
final class Creation {
  private static final SecureRandom LABELS = new SecureRandom();

  private Creation() {}

  /** A label for a key whose generator was given none: {@code jce-} and 8 random hex characters. */
  static String defaultLabel() {
    byte[] b = new byte[4];
    LABELS.nextBytes(b);
    return "jce-" + HexFormat.of().formatHex(b);
  }

  /**
   * Creates the key in the cluster (replicated to every HSM before the answer) and returns its handle.
   *
   * @throws ProviderException what the cluster answered (e.g. a key spec this cluster's tokens refuse)
   */
  static HsmKey create(HsmBridgeProvider provider, KeySpec spec, String label, String requestId) {
    try {
      Keys.KeyRequest request = Keys.KeyRequest.of(spec).label(label);
      KeyInfo info = provider.client().keys().generate(requestId == null ? request : request.requestId(requestId)).info();
      return provider.client().call(h -> {
        try {
          return Handles.of(info, () -> h.publicKey(info.keyId()));
        } catch (GeneralSecurityException e) {
          throw new ProviderException("the cluster's public key of " + info.keyId() + " does not decode", e);
        }
      });
    } catch (HsmBridgeException e) {
      throw Engines.failure("creating a " + spec + " key", e);
    }
  }
}
