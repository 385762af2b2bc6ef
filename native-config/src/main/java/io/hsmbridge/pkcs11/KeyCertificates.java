package io.hsmbridge.pkcs11;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The certificate chains of asymmetric keys, stored INSIDE the token beside the keys (what a JCE KeyStore's
 * {@code getCertificateChain} serves): one private CKO_DATA token object per key, CKA_APPLICATION
 * {@value #APPLICATION}, CKA_LABEL = the key id (32 lowercase hex characters), CKA_VALUE =
 * {@code 1 | generation (8 bytes) | key id | count (int) | certificates...} (the key id as int length +
 * UTF-8, each certificate as int length + DER bytes, big-endian, leaf first). Bounds: {@link CertificateChain}.
 *
 * <p>Like an ACL, a chain is not tied to the key object by the token: the mutation log's DELETE_KEY removes
 * both. Certificates are public data; the objects are private anyway, as every record of the user model is,
 * so only the agent's logged-in session reads them. Replacement, generations, the in-memory cache and
 * {@link #rescan()}: see {@link DataRecordStore}. Writes go through {@link KeyManager}'s object-write lock.
 * Thread-safe.
 */
public final class KeyCertificates {
  static final String APPLICATION = "hsmbridge.certs";

  static final DataRecordStore.Codec<CertificateChain> CODEC = new DataRecordStore.Codec<>() {
    @Override
    public String nameOf(CertificateChain c) {
      return c.keyId();
    }

    @Override
    public void write(DataOutputStream out, CertificateChain c) throws IOException {
      DataRecordStore.writeString(out, c.keyId());
      List<byte[]> certificates = c.certificates();
      out.writeInt(certificates.size());
      for (byte[] der : certificates) {
        DataRecordStore.writeBytes(out, der);
      }
    }

    @Override
    public CertificateChain read(DataInputStream in) throws IOException {
      String keyId = DataRecordStore.readString(in);
      int n = in.readInt();
      if (n < 1 || n > CertificateChain.MAX_CERTIFICATES) {
        throw new IllegalArgumentException("bad certificate count " + n);
      }
      List<byte[]> certificates = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        byte[] der = DataRecordStore.readBytes(in);
        if (der == null) {
          throw new IllegalArgumentException("missing certificate");
        }
        certificates.add(der);
      }
      CertificateChain chain = new CertificateChain(keyId, certificates); // the bounds, again
      if (!chain.keyId().equals(keyId)) {
        throw new IllegalArgumentException("key id not in lowercase");
      }
      return chain;
    }
  };

  private final DataRecordStore<CertificateChain> store;

  KeyCertificates(KeyManager keys) {
    this.store = new DataRecordStore<>(APPLICATION, keys, CODEC);
  }

  /**
   * The chain of key {@code keyId} (either case); empty when it has none.
   *
   * @throws HsmException INVALID_PARAMETER when {@code keyId} is not 32 hex characters
   */
  public Optional<CertificateChain> get(String keyId) {
    return store.get(KeyAcl.normaliseKeyId(keyId));
  }

  /** Every chain, sorted by key id. */
  public List<CertificateChain> list() {
    return store.list();
  }

  /** Creates or replaces the chain of {@code chain.keyId()}. Checks neither the key nor the certificates. */
  public void put(CertificateChain chain) {
    store.put(Objects.requireNonNull(chain, "chain"));
  }

  /**
   * Deletes the chain of {@code keyId}; false when the token held none.
   *
   * @throws HsmException INVALID_PARAMETER when {@code keyId} is not 32 hex characters
   */
  public boolean delete(String keyId) {
    return store.delete(KeyAcl.normaliseKeyId(keyId));
  }

  /** Re-reads the chains from the token (after a change behind this process's back); sorted by key id. */
  public List<CertificateChain> rescan() {
    return store.rescan();
  }

  /** The slow half of reading these records at one applied index, without locks: see {@link KeyManager#scanToken}. */
  public RecordScan<CertificateChain> scanToken() {
    return store.scanToken();
  }

  /** The records now, from an earlier {@link #scanToken}: see {@link KeyManager#settle}. */
  public List<CertificateChain> settle(RecordScan<CertificateChain> scanned) {
    return store.settle(scanned);
  }
}
