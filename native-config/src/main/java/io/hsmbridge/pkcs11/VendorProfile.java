package io.hsmbridge.pkcs11;

import io.hsmbridge.protocol.ErrorCode;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;

/**
 * A vendor profile: what a PKCS#11 implementation does that the rest of hsmbridge must know. Profiles
 * are data (properties files under {@code io/hsmbridge/pkcs11/profiles/} or an operator's directory),
 * parsed strictly: a missing, unknown or unparseable key fails loudly, naming the file and the key.
 *
 * @param name profile name
 * @param matchManufacturer required prefix of C_GetInfo manufacturerID
 * @param matchLibraryDescription required prefix of C_GetInfo libraryDescription ("" = any)
 * @param minLibraryVersion lowest library version, "major.minor"
 * @param maxLibraryVersion highest library version, "major.minor"
 * @param requiredMechanisms CKM names the token must list
 * @param oaepHashes hashes RSA-OAEP accepts (SHA1, SHA256...)
 * @param oaepLabel whether a non-empty OAEP label works
 * @param trustedSetBy the role that may set CKA_TRUSTED: SO or USER
 * @param trustedObjectPrivate whether a trusted object may be private
 * @param wrapWithTrustedEnforced whether CKA_WRAP_WITH_TRUSTED is enforced
 * @param unwrapTemplateMerged whether the token merges a wrapping key's unwrap template
 * @param ecdsaRawSignature true when CKM_ECDSA returns r||s
 * @param maxSessions cap on sessions, 0 = token-reported
 * @param objectStore how the integrity scan can inspect storage: softhsm2-files or none
 */
public record VendorProfile(
    String name,
    String matchManufacturer,
    String matchLibraryDescription,
    String minLibraryVersion,
    String maxLibraryVersion,
    List<String> requiredMechanisms,
    List<String> oaepHashes,
    boolean oaepLabel,
    String trustedSetBy,
    boolean trustedObjectPrivate,
    boolean wrapWithTrustedEnforced,
    boolean unwrapTemplateMerged,
    boolean ecdsaRawSignature,
    int maxSessions,
    String objectStore) {

  private static final Set<String> KEYS = Set.of(
      "name", "match.manufacturer", "match.libraryDescription", "match.libraryVersion.min",
      "match.libraryVersion.max", "mechanisms.required", "oaep.hashes", "oaep.label", "trusted.setBy",
      "trusted.objectPrivate", "wrapWithTrusted.enforced", "unwrapTemplate.merged", "ecdsa.signature",
      "sessions.max", "integrity.objectStore");

  /** Parses and validates a profile; {@code source} names the file in errors. */
  public static VendorProfile parse(Properties p, String source) {
    Set<String> unknown = new TreeSet<>(p.stringPropertyNames());
    unknown.removeAll(KEYS);
    if (!unknown.isEmpty()) {
      throw bad(source, "unknown key(s) " + unknown);
    }
    Reader r = new Reader(p, source);
    VendorProfile profile = new VendorProfile(
        r.string("name"),
        r.string("match.manufacturer"),
        r.stringOrEmpty("match.libraryDescription"),
        r.version("match.libraryVersion.min"),
        r.version("match.libraryVersion.max"),
        r.list("mechanisms.required"),
        r.list("oaep.hashes"),
        r.bool("oaep.label"),
        r.oneOf("trusted.setBy", "SO", "USER"),
        r.bool("trusted.objectPrivate"),
        r.bool("wrapWithTrusted.enforced"),
        r.bool("unwrapTemplate.merged"),
        "raw".equals(r.oneOf("ecdsa.signature", "raw", "der")),
        r.nonNegativeInt("sessions.max"),
        r.oneOf("integrity.objectStore", "softhsm2-files", "none"));
    for (String m : profile.requiredMechanisms) {
      if (Mechanisms.codeOf(m) == null) {
        throw bad(source, "mechanisms.required: unknown mechanism " + m);
      }
    }
    return profile;
  }

  /** Whether this profile describes a library with the given C_GetInfo values. */
  public boolean matches(String manufacturer, String libraryDescription, int major, int minor) {
    return manufacturer.trim().startsWith(matchManufacturer)
        && libraryDescription.trim().startsWith(matchLibraryDescription)
        && compare(major, minor, minLibraryVersion) >= 0
        && compare(major, minor, maxLibraryVersion) <= 0;
  }

  private static int compare(int major, int minor, String version) {
    String[] parts = version.split("\\.");
    int c = Integer.compare(major, Integer.parseInt(parts[0]));
    return c != 0 ? c : Integer.compare(minor, Integer.parseInt(parts[1]));
  }

  private static HsmException bad(String source, String why) {
    return new HsmException(ErrorCode.CONFIG_INVALID, "vendor profile " + source + ": " + why);
  }

  /** Strict typed access to the properties, with errors naming the key. */
  private static final class Reader {
    private final Properties p;
    private final String source;

    Reader(Properties p, String source) {
      this.p = p;
      this.source = source;
    }

    String stringOrEmpty(String key) {
      String v = p.getProperty(key);
      if (v == null) {
        throw bad(source, "missing key " + key);
      }
      return v.trim();
    }

    String string(String key) {
      String v = stringOrEmpty(key);
      if (v.isEmpty()) {
        throw bad(source, key + " must not be empty");
      }
      return v;
    }

    List<String> list(String key) {
      String v = string(key);
      return List.of(v.trim().split("\\s*,\\s*"));
    }

    boolean bool(String key) {
      String v = string(key).toLowerCase(Locale.ROOT);
      if (!v.equals("true") && !v.equals("false")) {
        throw bad(source, key + " must be true or false, not '" + v + "'");
      }
      return Boolean.parseBoolean(v);
    }

    String oneOf(String key, String... allowed) {
      String v = string(key);
      for (String a : allowed) {
        if (a.equals(v)) {
          return v;
        }
      }
      throw bad(source, key + " must be one of " + List.of(allowed) + ", not '" + v + "'");
    }

    int nonNegativeInt(String key) {
      String v = string(key);
      try {
        int n = Integer.parseInt(v);
        if (n >= 0) {
          return n;
        }
      } catch (NumberFormatException e) {
        // fall through to the error below
      }
      throw bad(source, key + " must be a non-negative integer, not '" + v + "'");
    }

    String version(String key) {
      String v = string(key);
      if (!v.matches("\\d+\\.\\d+")) {
        throw bad(source, key + " must look like 2.6, not '" + v + "'");
      }
      return v;
    }
  }
}
