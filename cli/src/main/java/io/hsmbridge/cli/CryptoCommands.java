package io.hsmbridge.cli;

import io.hsmbridge.client.Ciphertext;
import io.hsmbridge.client.Hsm;
import io.hsmbridge.protocol.Algorithm;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import java.util.HexFormat;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** The crypto commands: one protocol operation each, base64 for binary values on the command line. */
final class CryptoCommands {
  private CryptoCommands() {}

  /** A command whose {@code --alg} must be an algorithm of one kind. */
  abstract static class AlgCommand extends ClientCommand {
    /** The validated wire name of {@code --alg}. */
    protected String wireAlg;

    protected abstract String algOption();

    protected abstract Algorithm.Kind kind();

    @Override
    protected void validate() {
      try {
        wireAlg = Algorithm.parse(algOption(), kind()).wireName();
      } catch (IllegalArgumentException e) {
        throw usage("invalid --alg: " + e.getMessage());
      }
    }

    protected String b64(byte[] b) {
      return Base64.getEncoder().encodeToString(b);
    }

    protected int verdict(boolean valid) {
      out().println(valid ? "valid" : "invalid");
      return valid ? ExitCodes.OK : ExitCodes.FAILURE;
    }
  }

  @Command(name = "encrypt", description = "Encrypt; prints {\"iv\":..,\"ciphertext\":..} (base64; no iv for RSA_OAEP).")
  static final class Encrypt extends AlgCommand {
    /** Protected once the key's usage quorum is above 1. */
    @Mixin
    QuorumOptions quorum;

    @Option(names = "--key", required = true, paramLabel = "KEY_ID")
    String keyId;

    @Option(names = "--alg", defaultValue = "AES_GCM", paramLabel = "ALG",
        description = "AES_GCM (default), AES_CBC_PAD or RSA_OAEP.")
    String alg;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Option(names = "--aad-text", paramLabel = "STR", description = "Additional authenticated data (AES_GCM only).")
    String aad;

    @Override
    protected String algOption() {
      return alg;
    }

    @Override
    protected Algorithm.Kind kind() {
      return Algorithm.Kind.CIPHER;
    }

    @Override
    protected int run(Hsm hsm) {
      Ciphertext c = hsm.encrypt(keyId, wireAlg, input.read(cli().in()), aadBytes(aad));
      JsonObject o = new JsonObject();
      if (c.iv() != null) {
        o.put("iv", b64(c.iv()));
      }
      o.put("ciphertext", b64(c.ciphertext()));
      out().println(o.encode());
      return ExitCodes.OK;
    }
  }

  @Command(name = "decrypt", description = "Decrypt; writes the raw plaintext to stdout or --out FILE.")
  static final class Decrypt extends AlgCommand {
    /** Protected once the key's usage quorum is above 1. */
    @Mixin
    QuorumOptions quorum;

    @Option(names = "--key", required = true, paramLabel = "KEY_ID")
    String keyId;

    @Option(names = "--alg", defaultValue = "AES_GCM", paramLabel = "ALG",
        description = "AES_GCM (default), AES_CBC_PAD or RSA_OAEP.")
    String alg;

    @Option(names = "--iv", paramLabel = "B64", description = "The IV printed by encrypt (AES only).")
    String iv;

    @Option(names = "--ciphertext", required = true, paramLabel = "B64")
    String ciphertext;

    @Option(names = "--aad-text", paramLabel = "STR", description = "The AAD given to encrypt (AES_GCM only).")
    String aad;

    @Option(names = "--out", paramLabel = "FILE", description = "Write the plaintext to FILE (created 0600).")
    Path outFile;

    private byte[] ivBytes;
    private byte[] ciphertextBytes;

    @Override
    protected void validate() {
      super.validate();
      ivBytes = iv == null ? null : base64("--iv", iv);
      ciphertextBytes = base64("--ciphertext", ciphertext);
    }

    @Override
    protected String algOption() {
      return alg;
    }

    @Override
    protected Algorithm.Kind kind() {
      return Algorithm.Kind.CIPHER;
    }

    @Override
    protected int run(Hsm hsm) throws IOException {
      byte[] plaintext = hsm.decrypt(keyId, wireAlg, ciphertextBytes, ivBytes, aadBytes(aad));
      if (outFile == null) {
        out().write(plaintext);
        out().flush();
      } else {
        try (OutputStream o = Files.newOutputStream(create0600(outFile), StandardOpenOption.TRUNCATE_EXISTING)) {
          o.write(plaintext);
        }
      }
      return ExitCodes.OK;
    }

    private static Path create0600(Path p) throws IOException {
      if (!Files.exists(p)) {
        Files.createFile(p, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      }
      return p;
    }
  }

  @Command(name = "sign", description = "Sign; prints the base64 signature.")
  static final class Sign extends AlgCommand {
    /** Protected once the key's usage quorum is above 1. */
    @Mixin
    QuorumOptions quorum;

    @Option(names = "--key", required = true, paramLabel = "KEY_ID")
    String keyId;

    @Option(names = "--alg", required = true, paramLabel = "ALG",
        description = "RSA_PKCS1_SHA256|384|512, RSA_PSS_SHA256|384|512, ECDSA_SHA256|384|512, ED25519.")
    String alg;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Override
    protected String algOption() {
      return alg;
    }

    @Override
    protected Algorithm.Kind kind() {
      return Algorithm.Kind.SIGNATURE;
    }

    @Override
    protected int run(Hsm hsm) {
      out().println(b64(hsm.sign(keyId, wireAlg, input.read(cli().in()))));
      return ExitCodes.OK;
    }
  }

  @Command(name = "verify", description = "Verify a signature; prints valid (exit 0) or invalid (exit 1).")
  static final class Verify extends AlgCommand {
    /** Protected once the key's usage quorum is above 1. */
    @Mixin
    QuorumOptions quorum;

    @Option(names = "--key", required = true, paramLabel = "KEY_ID")
    String keyId;

    @Option(names = "--alg", required = true, paramLabel = "ALG", description = "As for sign.")
    String alg;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Option(names = "--signature", required = true, paramLabel = "B64")
    String signature;

    private byte[] signatureBytes;

    @Override
    protected void validate() {
      super.validate();
      signatureBytes = base64("--signature", signature);
    }

    @Override
    protected String algOption() {
      return alg;
    }

    @Override
    protected Algorithm.Kind kind() {
      return Algorithm.Kind.SIGNATURE;
    }

    @Override
    protected int run(Hsm hsm) {
      return verdict(hsm.verify(keyId, wireAlg, input.read(cli().in()), signatureBytes));
    }
  }

  @Command(name = "mac", description = "Compute an HMAC; prints it in base64.")
  static final class Mac extends AlgCommand {
    /** Protected once the key's usage quorum is above 1. */
    @Mixin
    QuorumOptions quorum;

    @Option(names = "--key", required = true, paramLabel = "KEY_ID")
    String keyId;

    @Option(names = "--alg", defaultValue = "HMAC_SHA256", paramLabel = "ALG",
        description = "HMAC_SHA256 (the only MAC of the HMAC_SHA256 key spec).")
    String alg;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Override
    protected String algOption() {
      return alg;
    }

    @Override
    protected Algorithm.Kind kind() {
      return Algorithm.Kind.MAC;
    }

    @Override
    protected int run(Hsm hsm) {
      out().println(b64(hsm.mac(keyId, wireAlg, input.read(cli().in()))));
      return ExitCodes.OK;
    }
  }

  @Command(name = "mac-verify", description = "Verify an HMAC; prints valid (exit 0) or invalid (exit 1).")
  static final class MacVerify extends AlgCommand {
    /** Protected once the key's usage quorum is above 1. */
    @Mixin
    QuorumOptions quorum;

    @Option(names = "--key", required = true, paramLabel = "KEY_ID")
    String keyId;

    @Option(names = "--alg", defaultValue = "HMAC_SHA256", paramLabel = "ALG", description = "As for mac.")
    String alg;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Option(names = "--mac", required = true, paramLabel = "B64")
    String mac;

    private byte[] macBytes;

    @Override
    protected void validate() {
      super.validate();
      macBytes = base64("--mac", mac);
    }

    @Override
    protected String algOption() {
      return alg;
    }

    @Override
    protected Algorithm.Kind kind() {
      return Algorithm.Kind.MAC;
    }

    @Override
    protected int run(Hsm hsm) {
      return verdict(hsm.macVerify(keyId, wireAlg, input.read(cli().in()), macBytes));
    }
  }

  @Command(name = "digest", description = "Hash inside the HSM; prints the digest in hex.")
  static final class Digest extends AlgCommand {
    @Option(names = "--alg", defaultValue = "SHA256", paramLabel = "ALG",
        description = "SHA256 (default), SHA384, SHA512.")
    String alg;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Override
    protected String algOption() {
      return alg;
    }

    @Override
    protected Algorithm.Kind kind() {
      return Algorithm.Kind.DIGEST;
    }

    @Override
    protected int run(Hsm hsm) {
      out().println(HexFormat.of().formatHex(hsm.digest(wireAlg, input.read(cli().in()))));
      return ExitCodes.OK;
    }
  }

  @Command(name = "random", description = "Random bytes from the token's RNG, in base64.")
  static final class RandomBytes extends ClientCommand {
    @Option(names = "--length", defaultValue = "32", paramLabel = "N",
        description = "Number of bytes, 1..4096 (default: ${DEFAULT-VALUE}).")
    int length;

    @Override
    protected void validate() {
      if (length < 1 || length > 4096) {
        throw usage("--length must be 1..4096, got " + length);
      }
    }

    @Override
    protected int run(Hsm hsm) {
      out().println(Base64.getEncoder().encodeToString(hsm.random(length)));
      return ExitCodes.OK;
    }
  }

  private static byte[] aadBytes(String aad) {
    return aad == null ? null : aad.getBytes(StandardCharsets.UTF_8);
  }
}
