package io.hsmbridge.pkcs11;

/**
 * The next generation of a rotated trusted key (the backup key, the cluster key), made inside the origin HSM
 * and wrapped under the cluster's carrier ({@link KeyGenerations}); the mutation log carries it to every HSM.
 *
 * @param generation its number (2, 3, ...)
 * @param label its CKA_LABEL: names the rotation that made it (a random id), so two racing rotations differ
 * @param wrapped the key wrapped under the carrier (AES key wrap with padding)
 */
public record NextGeneration(int generation, String label, byte[] wrapped) {
  public NextGeneration {
    wrapped = wrapped.clone();
  }

  @Override
  public byte[] wrapped() {
    return wrapped.clone();
  }

  @Override
  public String toString() {
    return "NextGeneration[" + generation + "]";
  }
}
