package io.hsmbridge.client;

import java.io.ByteArrayOutputStream;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.interfaces.RSAPrivateCrtKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.RSAPublicKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * PEM for approvers' RSA keys, with the JDK only: private keys as unencrypted PKCS#8 ({@code PRIVATE KEY},
 * what {@code openssl genpkey} writes; OpenSSL's older {@code RSA PRIVATE KEY} is read too), public keys as
 * SubjectPublicKeyInfo ({@code PUBLIC KEY}). Error messages name the problem, never the key's content.
 */
public final class Pem {
  private static final Pattern BLOCK = Pattern.compile(
      "-----BEGIN ([A-Z0-9 ]+)-----\\R(.*?)-----END \\1-----", Pattern.DOTALL);
  /** DER of AlgorithmIdentifier { rsaEncryption, NULL }. */
  private static final byte[] RSA_ALGORITHM = {
      0x30, 0x0d, 0x06, 0x09, 0x2a, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};

  private Pem() {}

  /** A {@code PRIVATE KEY} block (PKCS#8, unencrypted: protect the file, e.g. 0600). */
  public static String privateKey(PrivateKey key) {
    return block("PRIVATE KEY", key.getEncoded());
  }

  /** A {@code PUBLIC KEY} block (DER SubjectPublicKeyInfo). */
  public static String publicKey(PublicKey key) {
    return block("PUBLIC KEY", key.getEncoded());
  }

  /**
   * Reads an RSA private key from the first key block of {@code pem}.
   *
   * @throws IllegalArgumentException when there is no such block, it is encrypted, or it is no RSA key
   */
  public static PrivateKey readRsaPrivateKey(String pem) {
    Matcher m = BLOCK.matcher(pem);
    while (m.find()) {
      String type = m.group(1);
      switch (type) {
        case "ENCRYPTED PRIVATE KEY" -> throw encrypted();
        case "PRIVATE KEY" -> {
          return rsaPrivate(new PKCS8EncodedKeySpec(body(m.group(2))));
        }
        case "RSA PRIVATE KEY" -> {
          if (m.group(2).contains("ENCRYPTED")) {
            throw encrypted(); // "Proc-Type: 4,ENCRYPTED" of OpenSSL's traditional format
          }
          return rsaPrivate(new PKCS8EncodedKeySpec(pkcs8FromPkcs1(body(m.group(2)))));
        }
        default -> {
          // e.g. a certificate or parameters before the key: keep looking
        }
      }
    }
    throw new IllegalArgumentException("no PEM 'PRIVATE KEY' block found");
  }

  /**
   * Reads an RSA public key from the first {@code PUBLIC KEY} block of {@code pem}.
   *
   * @throws IllegalArgumentException when there is none or it is no RSA key
   */
  public static PublicKey readRsaPublicKey(String pem) {
    Matcher m = BLOCK.matcher(pem);
    while (m.find()) {
      if (m.group(1).equals("PUBLIC KEY")) {
        try {
          return KeyFactory.getInstance("RSA").generatePublic(new X509EncodedKeySpec(body(m.group(2))));
        } catch (GeneralSecurityException e) {
          throw new IllegalArgumentException("the PEM 'PUBLIC KEY' block is not an RSA public key");
        }
      }
    }
    throw new IllegalArgumentException("no PEM 'PUBLIC KEY' block found");
  }

  /** The public half of an RSA private key (a PKCS#8 RSA key carries the public exponent). */
  public static RSAPublicKey publicKeyOf(PrivateKey key) {
    if (!(key instanceof RSAPrivateCrtKey k)) {
      throw new IllegalArgumentException("the public key can only be derived from an RSA private key with CRT"
          + " parameters; give the public key instead");
    }
    try {
      return (RSAPublicKey) KeyFactory.getInstance("RSA")
          .generatePublic(new RSAPublicKeySpec(k.getModulus(), k.getPublicExponent()));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("the JDK has no RSA key factory", e);
    }
  }

  private static PrivateKey rsaPrivate(PKCS8EncodedKeySpec spec) {
    try {
      return KeyFactory.getInstance("RSA").generatePrivate(spec);
    } catch (GeneralSecurityException e) {
      throw new IllegalArgumentException("the PEM private key is not an RSA key (approval keys are RSA)");
    }
  }

  private static IllegalArgumentException encrypted() {
    return new IllegalArgumentException("the PEM private key is encrypted; give an unencrypted PKCS#8 key"
        + " (openssl pkcs8 -topk8 -nocrypt) in a file only you can read");
  }

  private static byte[] body(String base64) {
    StringBuilder b = new StringBuilder(base64.length());
    for (String line : base64.split("\\R")) {
      if (!line.contains(":")) { // skip RFC 1421 headers such as Proc-Type
        b.append(line.strip());
      }
    }
    try {
      return Base64.getDecoder().decode(b.toString());
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("the PEM block is not valid base64");
    }
  }

  /** A PEM block of {@code type} ({@code PUBLIC KEY}, {@code CERTIFICATE}, ...) around {@code der}, ending with a newline. */
  public static String block(String type, byte[] der) {
    return "-----BEGIN " + type + "-----\n"
        + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
        + "\n-----END " + type + "-----\n";
  }

  /** Wraps a PKCS#1 RSAPrivateKey in a PKCS#8 PrivateKeyInfo: {@code SEQUENCE {0, rsaEncryption, OCTET STRING}}. */
  static byte[] pkcs8FromPkcs1(byte[] pkcs1) {
    ByteArrayOutputStream inner = new ByteArrayOutputStream();
    inner.writeBytes(new byte[] {0x02, 0x01, 0x00});
    inner.writeBytes(RSA_ALGORITHM);
    inner.write(0x04);
    inner.writeBytes(derLength(pkcs1.length));
    inner.writeBytes(pkcs1);
    ByteArrayOutputStream outer = new ByteArrayOutputStream();
    outer.write(0x30);
    outer.writeBytes(derLength(inner.size()));
    outer.writeBytes(inner.toByteArray());
    return outer.toByteArray();
  }

  private static byte[] derLength(int n) {
    if (n < 0x80) {
      return new byte[] {(byte) n};
    }
    if (n < 0x100) {
      return new byte[] {(byte) 0x81, (byte) n};
    }
    if (n < 0x10000) {
      return new byte[] {(byte) 0x82, (byte) (n >> 8), (byte) n};
    }
    return new byte[] {(byte) 0x83, (byte) (n >> 16), (byte) (n >> 8), (byte) n};
  }
}
