package io.hsmbridge.cli.recovery;

import java.util.Base64;

/** PEM for public keys (SubjectPublicKeyInfo): what an operator copies between machines and compares. */
public final class Pem {
  private static final String BEGIN = "-----BEGIN PUBLIC KEY-----";
  private static final String END = "-----END PUBLIC KEY-----";

  private Pem() {}

  public static String publicKey(byte[] spki) {
    return BEGIN + "\n" + Base64.getMimeEncoder(64, "\n".getBytes()).encodeToString(spki) + "\n" + END + "\n";
  }

  /** The SubjectPublicKeyInfo of a PEM public key. */
  public static byte[] readPublicKey(String pem) {
    String t = pem.trim();
    if (!t.startsWith(BEGIN) || !t.endsWith(END)) {
      throw new IllegalArgumentException("not a PEM public key (" + BEGIN + " ... " + END + ")");
    }
    try {
      return Base64.getMimeDecoder().decode(t.substring(BEGIN.length(), t.length() - END.length()));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("the PEM public key is not base64");
    }
  }
}
