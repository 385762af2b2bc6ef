package io.hsmbridge.pkcs11;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;

/**
 * A digest of a token's key metadata, for anti-entropy: HSMs that applied the same mutations hold the
 * same keys with the same metadata and so have equal digests; a difference means drift to repair.
 * Covers only what replication promises to keep equal (id, spec, usage, label, policy), never handles
 * or key material.
 *
 * <p>Lowercase hex SHA-256 over the keys sorted by key id, one UTF-8 line per key:
 * {@code keyId|spec|usage|label|exportable|extractable\n}. In the label, {@code \}, {@code |}, CR and LF
 * are escaped ({@code \\ \| \r \n}) so that no label can imitate a line boundary or another key;
 * ordinary labels are hashed as they are.
 */
public final class KeyDigest {
  private KeyDigest() {}

  public static String of(List<KeyInfo> keys) {
    MessageDigest sha;
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
    keys.stream().sorted(Comparator.comparing(KeyInfo::keyId)).forEach(k -> sha.update(line(k).getBytes(StandardCharsets.UTF_8)));
    return HexFormat.of().formatHex(sha.digest());
  }

  static String line(KeyInfo k) {
    return k.keyId() + "|" + k.spec() + "|" + k.usage() + "|" + escape(k.label()) + "|" + k.exportable() + "|"
        + k.extractable() + "\n";
  }

  private static String escape(String label) {
    return label.replace("\\", "\\\\").replace("|", "\\|").replace("\r", "\\r").replace("\n", "\\n");
  }
}
