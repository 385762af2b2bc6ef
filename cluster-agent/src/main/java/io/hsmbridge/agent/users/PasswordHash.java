package io.hsmbridge.agent.users;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.Base64;
import org.bouncycastle.crypto.generators.Argon2BytesGenerator;
import org.bouncycastle.crypto.params.Argon2Parameters;

/**
 * Password hashing for cluster users: Argon2id (RFC 9106) from Bouncy Castle, stored in the PHC string
 * format {@code $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt b64>$<hash b64>} so the parameters
 * travel with the hash and can be raised later without breaking old hashes.
 *
 * <p>Defaults follow RFC 9106's second recommended option (64 MiB, 3 passes, 4 lanes), 16-byte salt,
 * 32-byte tag. Verification compares in constant time. Passwords are taken as char arrays and the
 * caller clears them; nothing here logs or returns a password.
 */
public final class PasswordHash {
  public static final int MIN_LENGTH = 12;
  public static final int MAX_LENGTH = 128;
  static final int DEFAULT_MEMORY_KIB = 64 * 1024;
  static final int DEFAULT_ITERATIONS = 3;
  static final int DEFAULT_LANES = 4;
  private static final int SALT_BYTES = 16;
  private static final int HASH_BYTES = 32;
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Base64.Encoder B64 = Base64.getEncoder().withoutPadding();
  private static final Base64.Decoder B64D = Base64.getDecoder();

  private PasswordHash() {}

  /** The password rules: {@value #MIN_LENGTH}..{@value #MAX_LENGTH} characters, no control characters. */
  public static void checkRules(char[] password) {
    if (password == null || password.length < MIN_LENGTH || password.length > MAX_LENGTH) {
      throw new IllegalArgumentException("a password must be " + MIN_LENGTH + " to " + MAX_LENGTH + " characters");
    }
    for (char c : password) {
      if (Character.isISOControl(c)) {
        throw new IllegalArgumentException("a password must not contain control characters");
      }
    }
  }

  /** Hashes with the default parameters and a fresh salt. */
  public static String hash(char[] password) {
    return hash(password, DEFAULT_MEMORY_KIB, DEFAULT_ITERATIONS, DEFAULT_LANES);
  }

  static String hash(char[] password, int memoryKib, int iterations, int lanes) {
    byte[] salt = new byte[SALT_BYTES];
    RANDOM.nextBytes(salt);
    byte[] tag = derive(password, salt, memoryKib, iterations, lanes, HASH_BYTES);
    return "$argon2id$v=19$m=" + memoryKib + ",t=" + iterations + ",p=" + lanes + "$" + B64.encodeToString(salt) + "$"
        + B64.encodeToString(tag);
  }

  /** True when {@code password} matches {@code encoded}; false for a wrong password or a malformed hash. */
  public static boolean verify(char[] password, String encoded) {
    String[] parts = encoded == null ? new String[0] : encoded.split("\\$");
    // "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
    if (parts.length != 6 || !parts[1].equals("argon2id") || !parts[2].equals("v=19")) {
      return false;
    }
    try {
      int m = 0;
      int t = 0;
      int p = 0;
      for (String kv : parts[3].split(",")) {
        int v = Integer.parseInt(kv.substring(2));
        switch (kv.substring(0, 2)) {
          case "m=": m = v; break;
          case "t=": t = v; break;
          case "p=": p = v; break;
          default: return false;
        }
      }
      if (m < 8 || m > 4 * 1024 * 1024 || t < 1 || t > 16 || p < 1 || p > 16) {
        return false; // a stored hash asking for absurd work is not trusted
      }
      byte[] salt = B64D.decode(parts[4]);
      byte[] expected = B64D.decode(parts[5]);
      byte[] actual = derive(password, salt, m, t, p, expected.length);
      return MessageDigest.isEqual(expected, actual);
    } catch (IllegalArgumentException | StringIndexOutOfBoundsException e) {
      return false;
    }
  }

  private static byte[] derive(char[] password, byte[] salt, int memoryKib, int iterations, int lanes, int length) {
    Argon2BytesGenerator gen = new Argon2BytesGenerator();
    gen.init(new Argon2Parameters.Builder(Argon2Parameters.ARGON2_id).withVersion(Argon2Parameters.ARGON2_VERSION_13)
        .withSalt(salt).withMemoryAsKB(memoryKib).withIterations(iterations).withParallelism(lanes).build());
    byte[] pw = toUtf8(password);
    try {
      byte[] out = new byte[length];
      gen.generateBytes(pw, out);
      return out;
    } finally {
      Arrays.fill(pw, (byte) 0);
    }
  }

  private static byte[] toUtf8(char[] password) {
    java.nio.ByteBuffer b = StandardCharsets.UTF_8.encode(java.nio.CharBuffer.wrap(password));
    byte[] out = new byte[b.remaining()];
    b.get(out);
    if (b.hasArray()) {
      Arrays.fill(b.array(), (byte) 0);
    }
    return out;
  }
}
