package io.hsmbridge.pkcs11;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * The X.509 certificate chain stored beside one asymmetric key ({@link KeyCertificates}): DER encodings,
 * leaf first. Only sizes are checked here; whether the entries are certificates and whether the leaf
 * carries the key's public key is the caller's check (cluster-agent, before the change is committed and
 * again when it is applied), because it needs the key.
 *
 * @param keyId the key's id, 32 hex characters (normalised to lowercase)
 * @param certificates 1..{@value #MAX_CERTIFICATES} DER encodings of 1..{@value #MAX_CERTIFICATE_BYTES}
 *     bytes each, {@value #MAX_TOTAL_BYTES} bytes in all; held as copies (the accessor copies too)
 */
public record CertificateChain(String keyId, List<byte[]> certificates) {
  /** Most certificates in one chain (a leaf and nine issuers: far more than any real PKI needs). */
  public static final int MAX_CERTIFICATES = 10;
  /** Largest single certificate, DER. */
  public static final int MAX_CERTIFICATE_BYTES = 16 * 1024;
  /**
   * Largest chain, DER bytes summed. The stored record (and the mutation that carries it) holds each
   * certificate as a field of its own, so DataRecordStore's per-field bound (64 KiB) is never reached.
   */
  public static final int MAX_TOTAL_BYTES = 64 * 1024;

  /** @throws HsmException INVALID_PARAMETER for a bad key id, an empty chain or one over the bounds */
  public CertificateChain {
    keyId = KeyAcl.normaliseKeyId(keyId);
    certificates = checkBounds(certificates);
    if (certificates.isEmpty()) {
      throw HsmException.badParam("a stored certificate chain holds at least one certificate");
    }
  }

  /**
   * Copies of {@code certificates} when they are within the bounds (an empty list is within them: it means
   * "no chain" in a change).
   *
   * @throws HsmException INVALID_PARAMETER naming the bound that was crossed
   */
  public static List<byte[]> checkBounds(List<byte[]> certificates) {
    Objects.requireNonNull(certificates, "certificates");
    if (certificates.size() > MAX_CERTIFICATES) {
      throw HsmException.badParam("a certificate chain holds at most " + MAX_CERTIFICATES + " certificates, not "
          + certificates.size());
    }
    List<byte[]> copies = new ArrayList<>(certificates.size());
    long total = 0;
    for (int i = 0; i < certificates.size(); i++) {
      byte[] c = certificates.get(i);
      if (c == null || c.length == 0) {
        throw HsmException.badParam("certificate " + i + " of the chain is empty");
      }
      if (c.length > MAX_CERTIFICATE_BYTES) {
        throw HsmException.badParam("certificate " + i + " of the chain is " + c.length + " bytes, over "
            + MAX_CERTIFICATE_BYTES);
      }
      total += c.length;
      copies.add(c.clone());
    }
    if (total > MAX_TOTAL_BYTES) {
      throw HsmException.badParam("the certificate chain is " + total + " bytes, over " + MAX_TOTAL_BYTES);
    }
    return List.copyOf(copies);
  }

  @Override
  public List<byte[]> certificates() {
    return copies(certificates);
  }

  static List<byte[]> copies(List<byte[]> list) {
    List<byte[]> out = new ArrayList<>(list.size());
    list.forEach(b -> out.add(b.clone()));
    return List.copyOf(out);
  }

  /** The chain's bytes summed. */
  public int totalBytes() {
    return certificates.stream().mapToInt(b -> b.length).sum();
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof CertificateChain c) || !keyId.equals(c.keyId) || certificates.size() != c.certificates.size()) {
      return false;
    }
    for (int i = 0; i < certificates.size(); i++) {
      if (!Arrays.equals(certificates.get(i), c.certificates.get(i))) {
        return false;
      }
    }
    return true;
  }

  @Override
  public int hashCode() {
    int h = keyId.hashCode();
    for (byte[] b : certificates) {
      h = 31 * h + Arrays.hashCode(b);
    }
    return h;
  }

  @Override
  public String toString() {
    return "CertificateChain[" + keyId + ", " + certificates.size() + " certificates, " + totalBytes() + " bytes]";
  }
}
