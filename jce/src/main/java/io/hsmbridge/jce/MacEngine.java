package io.hsmbridge.jce;

import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.io.ByteArrayOutputStream;
import java.security.InvalidAlgorithmParameterException;
import java.security.InvalidKeyException;
import java.security.Key;
import java.security.spec.AlgorithmParameterSpec;
import javax.crypto.MacSpi;

/**
 * {@code Mac} with a cluster HMAC key: the message is gathered and MACed by an HSM in one request. The
 * cluster's HMAC keys are {@code HMAC_SHA256} keys, and tokens refuse HMAC-SHA384/512 with them, so
 * HmacSHA384 and HmacSHA512 are named here only to say so at {@code init}.
 */
final class MacEngine extends MacSpi {
  private final HsmBridgeProvider provider;
  private final String jcaName;
  private final ByteArrayOutputStream message = new ByteArrayOutputStream();
  private HsmKey key;

  MacEngine(HsmBridgeProvider provider, String jcaName) {
    this.provider = provider;
    this.jcaName = jcaName;
  }

  @Override
  protected int engineGetMacLength() {
    return 32;
  }

  @Override
  protected void engineInit(Key k, AlgorithmParameterSpec params) throws InvalidKeyException,
      InvalidAlgorithmParameterException {
    if (params != null) {
      throw new InvalidAlgorithmParameterException(jcaName + " takes no parameters");
    }
    HsmKey h = Engines.handle(k, KeySpec.Family.HMAC, KeyUsage.SIGN_VERIFY, "compute " + jcaName);
    if (!jcaName.equals("HmacSHA256")) {
      throw new InvalidKeyException("the cluster's HMAC keys are HMAC_SHA256 keys and compute HmacSHA256 only (tokens"
          + " refuse " + jcaName + " with a 256-bit HMAC key): use Mac.getInstance(\"HmacSHA256\")");
    }
    key = h;
    message.reset();
  }

  @Override
  protected void engineUpdate(byte input) {
    engineUpdate(new byte[] {input}, 0, 1);
  }

  @Override
  protected void engineUpdate(byte[] input, int offset, int len) {
    if (key == null) {
      throw new IllegalStateException("the Mac is not initialised");
    }
    Engines.append(message, input, offset, len);
  }

  @Override
  protected byte[] engineDoFinal() {
    if (key == null) {
      throw new IllegalStateException("the Mac is not initialised");
    }
    byte[] m = message.toByteArray();
    message.reset();
    String keyId = key.keyId();
    try {
      return provider.client().call(h -> h.mac(keyId, Algorithm.HMAC_SHA256.wireName(), m));
    } catch (HsmBridgeException e) {
      throw Engines.failure(jcaName + " with key " + keyId, e);
    }
  }

  @Override
  protected void engineReset() {
    message.reset();
  }
}
