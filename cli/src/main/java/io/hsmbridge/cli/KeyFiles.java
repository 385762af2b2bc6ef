package io.hsmbridge.cli;

import io.hsmbridge.client.Pem;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.NoSuchAlgorithmException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.interfaces.RSAKey;

/**
 * An approver's RSA key files (quorum approvals and MFA): the private key as PKCS#8 PEM (0600), the public
 * key as SPKI PEM beside it ({@code NAME.pub.pem}). Errors name the file, never its content.
 */
final class KeyFiles {
  /** RSA-3072: ~128-bit security, as NIST SP 800-57 recommends beyond 2030; the server takes >= 2048. */
  static final int KEYGEN_BITS = 3072;
  static final int MIN_BITS = 2048;

  private KeyFiles() {}

  /** Where {@code keygen --out FILE} puts the public key: {@code x.pem} → {@code x.pub.pem}. */
  static Path publicKeyPathFor(Path privateKeyFile) {
    String name = privateKeyFile.getFileName().toString();
    String base = name.endsWith(".pem") ? name.substring(0, name.length() - ".pem".length()) : name;
    return privateKeyFile.resolveSibling(base + ".pub.pem");
  }

  /** Generates a key pair and writes both files; neither may exist (an approval key is never overwritten). */
  static KeyPair generate(Path privateKeyFile, Path publicKeyFile) throws IOException {
    for (Path p : new Path[] {privateKeyFile, publicKeyFile}) {
      if (Files.exists(p)) {
        throw new CliException(p + " already exists; refusing to overwrite a key (choose another --out)");
      }
    }
    KeyPair pair;
    try {
      KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
      g.initialize(KEYGEN_BITS);
      pair = g.generateKeyPair();
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK has no RSA key pair generator", e);
    }
    try {
      PrivateFiles.create(privateKeyFile, Pem.privateKey(pair.getPrivate()).getBytes(StandardCharsets.US_ASCII));
    } catch (FileAlreadyExistsException e) {
      throw new CliException(privateKeyFile + " already exists; refusing to overwrite a key");
    }
    // A public key is no secret, but 0600 costs nothing and keeps the pair's files alike.
    PrivateFiles.create(publicKeyFile, Pem.publicKey(pair.getPublic()).getBytes(StandardCharsets.US_ASCII));
    return pair;
  }

  static PrivateKey readPrivate(Path file) {
    try {
      return Pem.readRsaPrivateKey(read(file));
    } catch (IllegalArgumentException e) {
      throw new CliException(file + ": " + e.getMessage());
    }
  }

  static PublicKey readPublic(Path file) {
    PublicKey k;
    try {
      k = Pem.readRsaPublicKey(read(file));
    } catch (IllegalArgumentException e) {
      throw new CliException(file + ": " + e.getMessage());
    }
    return checkSize(k, file);
  }

  /** The public key of a private key file. */
  static PublicKey publicOf(Path privateKeyFile) {
    try {
      return checkSize(Pem.publicKeyOf(readPrivate(privateKeyFile)), privateKeyFile);
    } catch (IllegalArgumentException e) {
      throw new CliException(privateKeyFile + ": " + e.getMessage());
    }
  }

  private static PublicKey checkSize(PublicKey k, Path file) {
    int bits = ((RSAKey) k).getModulus().bitLength();
    if (bits < MIN_BITS) {
      throw new CliException(file + ": an approval key needs at least " + MIN_BITS + " bits, this one has " + bits);
    }
    return k;
  }

  /**
   * The certificates of a PEM file, in order, as DER (what {@code key certificates --set} stores).
   *
   * @throws CliException naming the file when it is missing or holds no certificate
   */
  static java.util.List<byte[]> certificates(Path file) {
    String pem = read(file);
    try {
      java.util.Collection<? extends java.security.cert.Certificate> certs =
          java.security.cert.CertificateFactory.getInstance("X.509")
              .generateCertificates(new java.io.ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII)));
      if (certs.isEmpty()) {
        throw new CliException(file + ": no PEM CERTIFICATE block");
      }
      java.util.List<byte[]> der = new java.util.ArrayList<>();
      for (java.security.cert.Certificate c : certs) {
        der.add(c.getEncoded());
      }
      return der;
    } catch (java.security.cert.CertificateException e) {
      throw new CliException(file + ": not a PEM file of X.509 certificates (" + e.getMessage() + ")");
    }
  }

  private static String read(Path file) {
    try {
      return Files.readString(file, StandardCharsets.US_ASCII);
    } catch (NoSuchFileException e) {
      throw new CliException("no such file: " + file);
    } catch (IOException e) {
      throw new CliException("cannot read " + file + ": " + e.getMessage());
    }
  }
}
