package io.hsmbridge.cli;

import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.KeyInfo;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import io.vertx.core.json.JsonArray;
import java.io.PrintStream;
import java.util.Base64;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code key ...}: create, list, describe, relabel and delete keys. */
@Command(name = "key", description = "Manage keys.",
    subcommands = {
        KeyCommands.Generate.class,
        KeyCommands.ListKeys.class,
        KeyCommands.Describe.class,
        KeyCommands.Delete.class,
        KeyCommands.SetLabel.class,
        KeyCommands.PublicKey.class})
final class KeyCommands extends CliCommand {

  @Override
  protected int execute() {
    throw usage("missing subcommand; one of: generate, list, describe, delete, set-label, public");
  }

  @Command(name = "generate", description = "Generate a key inside the HSM; prints its description as JSON.")
  static final class Generate extends ClientCommand {
    @Option(names = "--spec", required = true, paramLabel = "SPEC", converter = Converters.Spec.class,
        description = "Key spec: AES_128, AES_256, HMAC_SHA256, RSA_2048, RSA_3072, RSA_4096, EC_P256, EC_P384,"
            + " ED25519.")
    KeySpec keySpec;

    @Option(names = "--label", required = true, paramLabel = "LABEL", description = "1..64 printable ASCII characters.")
    String label;

    @Option(names = "--usage", paramLabel = "USAGE",
        description = "ENCRYPT_DECRYPT, SIGN_VERIFY or WRAP_UNWRAP (default: ENCRYPT_DECRYPT for AES,"
            + " SIGN_VERIFY otherwise).")
    String usage;

    @Option(names = "--exportable",
        description = "Allow 'key.wrap' to export the key under a wrapping key (default: not exportable).")
    boolean exportable;

    private KeyUsage keyUsage;

    @Override
    protected void validate() {
      try {
        keyUsage = usage == null ? null : KeyUsage.parseFor(keySpec, usage);
      } catch (IllegalArgumentException e) {
        throw usage("invalid --usage: " + e.getMessage());
      }
    }

    @Override
    protected int run(Hsm hsm) {
      out().println(hsm.generateKey(keySpec, label, keyUsage, exportable).toJson().encodePrettily());
      return ExitCodes.OK;
    }
  }

  @Command(name = "list", description = "List keys.")
  static final class ListKeys extends ClientCommand {
    @Option(names = "--label", paramLabel = "LABEL", description = "Only keys with exactly this label.")
    String label;

    @Option(names = "--json", description = "Print a JSON array of key descriptions.")
    boolean json;

    @Override
    protected int run(Hsm hsm) {
      List<KeyInfo> keys = hsm.listKeys(label);
      PrintStream out = out();
      if (json) {
        JsonArray a = new JsonArray();
        keys.forEach(k -> a.add(k.toJson()));
        out.println(a.encodePrettily());
      } else if (keys.isEmpty()) {
        out.println("no keys");
      } else {
        String fmt = "%-32s  %-11s  %-15s  %-10s  %s%n";
        out.printf(fmt, "KEY ID", "SPEC", "USAGE", "EXPORTABLE", "LABEL");
        for (KeyInfo k : keys) {
          out.printf(fmt, k.keyId(), k.spec(), k.usage(), k.exportable() ? "yes" : "no", k.label());
        }
      }
      return ExitCodes.OK;
    }
  }

  @Command(name = "describe", description = "Print a key's description as JSON.")
  static final class Describe extends ClientCommand {
    @Parameters(paramLabel = "KEY_ID")
    String keyId;

    @Override
    protected int run(Hsm hsm) {
      out().println(hsm.describe(keyId).toJson().encodePrettily());
      return ExitCodes.OK;
    }
  }

  @Command(name = "delete", description = "Delete a key.")
  static final class Delete extends ClientCommand {
    @Parameters(paramLabel = "KEY_ID")
    String keyId;

    @Override
    protected int run(Hsm hsm) {
      hsm.delete(keyId);
      out().println("deleted " + keyId);
      return ExitCodes.OK;
    }
  }

  @Command(name = "set-label", description = "Change a key's label.")
  static final class SetLabel extends ClientCommand {
    @Parameters(index = "0", paramLabel = "KEY_ID")
    String keyId;

    @Parameters(index = "1", paramLabel = "LABEL")
    String label;

    @Override
    protected int run(Hsm hsm) {
      out().println(hsm.setLabel(keyId, label).toJson().encodePrettily());
      return ExitCodes.OK;
    }
  }

  @Command(name = "public", description = "Print the public key of an RSA/EC/Ed25519 key (base64 DER SPKI, or PEM).")
  static final class PublicKey extends ClientCommand {
    @Parameters(paramLabel = "KEY_ID")
    String keyId;

    @Option(names = "--pem", description = "Print a PEM 'PUBLIC KEY' block.")
    boolean pem;

    @Override
    protected int run(Hsm hsm) {
      byte[] spki = hsm.publicKey(keyId);
      if (pem) {
        out().println("-----BEGIN PUBLIC KEY-----");
        out().println(Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(spki));
        out().println("-----END PUBLIC KEY-----");
      } else {
        out().println(Base64.getEncoder().encodeToString(spki));
      }
      return ExitCodes.OK;
    }
  }
}
