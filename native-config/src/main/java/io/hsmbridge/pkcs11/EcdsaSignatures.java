package io.hsmbridge.pkcs11;

import io.hsmbridge.protocol.ErrorCode;
import java.io.IOException;
import java.math.BigInteger;
import java.util.Arrays;
import org.bouncycastle.asn1.ASN1Integer;
import org.bouncycastle.asn1.ASN1Sequence;
import org.bouncycastle.asn1.DERSequence;

/**
 * ECDSA signature encodings. PKCS#11 tokens speak raw r||s; JCA ({@code SHA256withECDSA}) speaks DER
 * SEQUENCE{r, s}. Clients get and give DER.
 */
final class EcdsaSignatures {
  private EcdsaSignatures() {}

  static byte[] rawToDer(byte[] raw) {
    if (raw.length % 2 != 0) {
      throw new HsmException(ErrorCode.INTERNAL, "token returned an odd-length ECDSA signature");
    }
    int half = raw.length / 2;
    BigInteger r = new BigInteger(1, Arrays.copyOfRange(raw, 0, half));
    BigInteger s = new BigInteger(1, Arrays.copyOfRange(raw, half, raw.length));
    try {
      return new DERSequence(new ASN1Integer[] {new ASN1Integer(r), new ASN1Integer(s)}).getEncoded();
    } catch (IOException e) {
      throw new HsmException(ErrorCode.INTERNAL, "cannot encode ECDSA signature");
    }
  }

  /** DER to raw with fixed-length halves; null when {@code der} is not a well-formed signature. */
  static byte[] derToRaw(byte[] der, int fieldBytes) {
    try {
      ASN1Sequence seq = ASN1Sequence.getInstance(der);
      if (seq.size() != 2 || !Arrays.equals(seq.getEncoded("DER"), der)) {
        return null;
      }
      BigInteger r = ASN1Integer.getInstance(seq.getObjectAt(0)).getPositiveValue();
      BigInteger s = ASN1Integer.getInstance(seq.getObjectAt(1)).getPositiveValue();
      byte[] out = new byte[2 * fieldBytes];
      if (!put(r, out, 0, fieldBytes) || !put(s, out, fieldBytes, fieldBytes)) {
        return null;
      }
      return out;
    } catch (IllegalArgumentException | IOException e) {
      return null;
    }
  }

  private static boolean put(BigInteger v, byte[] out, int offset, int length) {
    if (v.signum() <= 0) {
      return false;
    }
    byte[] b = v.toByteArray();
    int start = b[0] == 0 ? 1 : 0;
    int n = b.length - start;
    if (n > length) {
      return false;
    }
    System.arraycopy(b, start, out, offset + length - n, n);
    return true;
  }
}
