package io.hsmbridge.agent;

import io.hsmbridge.pkcs11.CertificateChain;
import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import io.vertx.core.json.JsonObject;
import java.util.Base64;

/**
 * Typed, bounded access to the fields of a request body. Every accessor either returns a valid value
 * or throws an {@link HsmException} naming the field: BAD_REQUEST for a missing or ill-typed field,
 * INPUT_TOO_LARGE over a limit, INVALID_PARAMETER for a well-formed but unacceptable value. Used by
 * the bridge (to reject bad requests at the door) and by the agent (which trusts nobody).
 */
public final class RequestReader {
  /** Largest plaintext or message, decoded. */
  public static final int MAX_DATA_BYTES = 64 * 1024;
  /** Largest ciphertext: data plus room for a tag, padding or an RSA block. */
  public static final int MAX_CIPHERTEXT_BYTES = MAX_DATA_BYTES + 512;
  /** Largest wrapped key (an RSA-4096 private key wrapped with KWP is about 2.4 KiB). */
  public static final int MAX_WRAPPED_BYTES = 16 * 1024;
  /** Largest signature or MAC (RSA-4096: 512 bytes). */
  public static final int MAX_SIGNATURE_BYTES = 1024;
  public static final int MAX_LABEL_CHARS = 64;

  private final JsonObject body;

  public RequestReader(JsonObject body) {
    this.body = body;
  }

  public JsonObject body() {
    return body;
  }

  public String string(String field) {
    String v = optionalString(field);
    if (v == null) {
      throw bad("missing field '" + field + "'");
    }
    return v;
  }

  public String optionalString(String field) {
    Object v = body.getValue(field);
    if (v == null) {
      return null;
    }
    if (!(v instanceof String)) {
      throw bad("field '" + field + "' must be a string");
    }
    return (String) v;
  }

  public byte[] bytes(String field, int maxBytes) {
    byte[] v = optionalBytes(field, maxBytes);
    if (v == null) {
      throw bad("missing field '" + field + "' (base64)");
    }
    return v;
  }

  /** Decodes a standard-base64 field, refusing oversized input before decoding it. */
  public byte[] optionalBytes(String field, int maxBytes) {
    String v = optionalString(field);
    if (v == null) {
      return null;
    }
    if (v.length() > (maxBytes + 2) / 3 * 4) {
      throw new HsmException(ErrorCode.INPUT_TOO_LARGE, "field '" + field + "' exceeds " + maxBytes + " bytes");
    }
    byte[] decoded;
    try {
      decoded = Base64.getDecoder().decode(v);
    } catch (IllegalArgumentException e) {
      throw bad("field '" + field + "' is not valid base64");
    }
    // The length check above cannot tell maxBytes from maxBytes + 1 or + 2 (same base64 length).
    if (decoded.length > maxBytes) {
      throw new HsmException(ErrorCode.INPUT_TOO_LARGE, "field '" + field + "' exceeds " + maxBytes + " bytes");
    }
    return decoded;
  }

  public boolean bool(String field, boolean defaultValue) {
    Object v = body.getValue(field);
    if (v == null) {
      return defaultValue;
    }
    if (!(v instanceof Boolean)) {
      throw bad("field '" + field + "' must be true or false");
    }
    return (Boolean) v;
  }

  public int integer(String field) {
    Object v = body.getValue(field);
    if (!(v instanceof Number) || ((Number) v).doubleValue() != ((Number) v).intValue()) {
      throw bad(v == null ? "missing field '" + field + "'" : "field '" + field + "' must be an integer");
    }
    return ((Number) v).intValue();
  }

  public KeySpec spec() {
    try {
      return KeySpec.parse(string("spec"));
    } catch (IllegalArgumentException e) {
      throw HsmException.badParam(e.getMessage());
    }
  }

  public KeyUsage usage(KeySpec spec) {
    try {
      return KeyUsage.parseFor(spec, optionalString("usage"));
    } catch (IllegalArgumentException e) {
      throw HsmException.badParam(e.getMessage());
    }
  }

  public Algorithm alg(Algorithm.Kind kind) {
    try {
      return Algorithm.parse(string("alg"), kind);
    } catch (IllegalArgumentException e) {
      throw HsmException.badParam(e.getMessage());
    }
  }

  /** A key id: 32 hex characters. */
  public String keyId(String field) {
    String v = string(field);
    if (!isKeyId(v)) {
      throw HsmException.badParam("field '" + field + "' must be a key id (32 hex characters)");
    }
    return v.toLowerCase(java.util.Locale.ROOT);
  }

  /**
   * 32 hex characters. A loop, not String.matches: this runs on every keyed request, and matches()
   * compiles its pattern on each call (1.3 % of an agent's CPU under an HMAC load, profiled).
   */
  private static boolean isKeyId(String v) {
    if (v.length() != 32) {
      return false;
    }
    for (int i = 0; i < 32; i++) {
      char c = v.charAt(i);
      if (!(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')) {
        return false;
      }
    }
    return true;
  }

  /** A label: 1..64 printable ASCII characters. */
  public String label(String field) {
    String v = string(field);
    if (v.isEmpty() || v.length() > MAX_LABEL_CHARS || !v.matches("[\\x20-\\x7E]+")) {
      throw HsmException.badParam("field '" + field + "' must be 1.." + MAX_LABEL_CHARS + " printable ASCII characters");
    }
    return v;
  }

  /**
   * A certificate chain: a JSON array of standard-base64 DER certificates, leaf first, within
   * {@link CertificateChain}'s bounds (0..10 entries, each 1 byte..16 KiB, 64 KiB in all; empty = no chain).
   * Not a list or an entry not a base64 string: BAD_REQUEST. Over a bound: INVALID_PARAMETER (a chain the
   * cluster does not keep, said before anything is decoded). Whether the entries are certificates is the
   * agent's check ({@code CertificateChains}).
   */
  public java.util.List<byte[]> certificates(String field) {
    Object v = body.getValue(field);
    if (v == null) {
      throw bad("missing field '" + field + "' (an array of base64 DER certificates)");
    }
    if (!(v instanceof io.vertx.core.json.JsonArray a)) {
      throw bad("field '" + field + "' must be an array of base64 DER certificates");
    }
    if (a.size() > CertificateChain.MAX_CERTIFICATES) {
      throw HsmException.badParam("field '" + field + "' holds " + a.size() + " certificates; a chain holds at most "
          + CertificateChain.MAX_CERTIFICATES);
    }
    java.util.List<byte[]> out = new java.util.ArrayList<>(a.size());
    for (int i = 0; i < a.size(); i++) {
      if (!(a.getValue(i) instanceof String s)) {
        throw bad("field '" + field + "' entry " + i + " must be a base64 string");
      }
      if (s.length() > (CertificateChain.MAX_CERTIFICATE_BYTES + 2) / 3 * 4) {
        throw HsmException.badParam("field '" + field + "' entry " + i + " exceeds "
            + CertificateChain.MAX_CERTIFICATE_BYTES + " bytes");
      }
      try {
        out.add(Base64.getDecoder().decode(s));
      } catch (IllegalArgumentException e) {
        throw bad("field '" + field + "' entry " + i + " is not valid base64");
      }
    }
    return CertificateChain.checkBounds(out); // the exact sizes, and the total
  }

  private static HsmException bad(String message) {
    return new HsmException(ErrorCode.BAD_REQUEST, message);
  }
}
