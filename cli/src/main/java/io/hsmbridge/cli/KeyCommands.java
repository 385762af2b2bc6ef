package io.hsmbridge.cli;

import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.KeyInfo;
import io.hsmbridge.client.Pem;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import io.vertx.core.json.JsonArray;
import java.io.PrintStream;
import java.util.Base64;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code key ...}: create, list, describe, relabel, delete, export, share keys and set their quorum. A crypto
 * user's session is needed; management commands are the owner's, and protected once the key's management
 * quorum is above 1 ({@link QuorumOptions}).
 */
@Command(name = "key", description = "Manage keys.",
    subcommands = {
        KeyCommands.Generate.class,
        KeyCommands.ListKeys.class,
        KeyCommands.Describe.class,
        KeyCommands.Delete.class,
        KeyCommands.SetLabel.class,
        KeyCommands.PublicKey.class,
        KeyCommands.Certificates.class,
        KeyCommands.Wrap.class,
        KeyCommands.Share.class,
        KeyCommands.Unshare.class,
        KeyCommands.Quorum.class})
final class KeyCommands extends CliCommand {

  @Override
  protected int execute() {
    throw usage("missing subcommand; one of: generate, list, describe, delete, set-label, public, certificates, wrap,"
        + " share, unshare, quorum");
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
        String fmt = "%-32s  %-11s  %-15s  %-10s  %-12s  %s%n";
        out.printf(fmt, "KEY ID", "SPEC", "USAGE", "EXPORTABLE", "OWNER", "LABEL");
        for (KeyInfo k : keys) {
          out.printf(fmt, k.keyId(), k.spec(), k.usage(), k.exportable() ? "yes" : "no",
              k.owner() == null ? "-" : k.owner(), k.label());
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

  @Command(name = "delete", description = "Delete a key (its owner).")
  static final class Delete extends ClientCommand {
    @Parameters(paramLabel = "KEY_ID")
    String keyId;

    @Mixin
    QuorumOptions quorum;

    @Override
    protected int run(Hsm hsm) {
      hsm.delete(keyId);
      out().println("deleted " + keyId);
      return ExitCodes.OK;
    }
  }

  @Command(name = "set-label", description = "Change a key's label (its owner).")
  static final class SetLabel extends ClientCommand {
    @Parameters(index = "0", paramLabel = "KEY_ID")
    String keyId;

    @Parameters(index = "1", paramLabel = "LABEL")
    String label;

    @Mixin
    QuorumOptions quorum;

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
        out().print(Pem.block("PUBLIC KEY", spki));
      } else {
        out().println(Base64.getEncoder().encodeToString(spki));
      }
      return ExitCodes.OK;
    }
  }

  @Command(name = "certificates", description = "Print the certificate chain stored beside a key pair (PEM, leaf"
      + " first), or store one (--set, the key's owner) or remove it (--clear). The cluster checks that the leaf"
      + " certifies the key's own public key.")
  static final class Certificates extends ClientCommand {
    @Parameters(paramLabel = "KEY_ID")
    String keyId;

    @Option(names = "--set", paramLabel = "PEM_FILE",
        description = "A PEM file of 1 to 10 CERTIFICATE blocks, leaf first: stored on every HSM.")
    java.nio.file.Path set;

    @Option(names = "--clear", description = "Remove the stored chain.")
    boolean clear;

    @Mixin
    QuorumOptions quorum;

    @Override
    protected void validate() {
      if (set != null && clear) {
        throw usage("--set and --clear exclude each other");
      }
    }

    @Override
    protected int run(Hsm hsm) {
      if (set != null || clear) {
        List<byte[]> chain = clear ? List.of() : KeyFiles.certificates(set);
        hsm.setCertificates(keyId, chain);
        out().println(clear ? "removed the chain of " + keyId : "stored " + chain.size() + " certificate"
            + (chain.size() == 1 ? "" : "s") + " beside " + keyId);
        return ExitCodes.OK;
      }
      List<byte[]> chain = hsm.certificates(keyId);
      if (chain.isEmpty()) {
        cli().err().println("no certificate chain is stored beside " + keyId);
        return ExitCodes.OK;
      }
      for (byte[] der : chain) {
        out().print(Pem.block("CERTIFICATE", der));
      }
      return ExitCodes.OK;
    }
  }

  @Command(name = "wrap", description = "Export a key created --exportable, wrapped under another key on the HSM;"
      + " prints the wrapped key in base64 (the key's owner).")
  static final class Wrap extends ClientCommand {
    @Parameters(paramLabel = "KEY_ID", description = "The key to export.")
    String keyId;

    @Option(names = "--wrapping-key", required = true, paramLabel = "KEY_ID", description = "The key that wraps it.")
    String wrappingKeyId;

    @Option(names = "--alg", defaultValue = "AES_KEY_WRAP_PAD", paramLabel = "ALG",
        description = "AES_KEY_WRAP_PAD (default) or RSA_OAEP.")
    String alg;

    @Mixin
    QuorumOptions quorum;

    @Override
    protected void validate() {
      if (!alg.equals("AES_KEY_WRAP_PAD") && !alg.equals("RSA_OAEP")) {
        throw usage("--alg must be AES_KEY_WRAP_PAD or RSA_OAEP, got " + alg);
      }
    }

    @Override
    protected int run(Hsm hsm) {
      out().println(Base64.getEncoder().encodeToString(hsm.wrap(keyId, wrappingKeyId, alg)));
      return ExitCodes.OK;
    }
  }

  @Command(name = "share", description = "Let another crypto user use your key (crypto, describe, public key),"
      + " not manage it. Prints the key with its shares.")
  static final class Share extends ClientCommand {
    @Parameters(paramLabel = "KEY_ID")
    String keyId;

    @Option(names = "--with", required = true, paramLabel = "USER")
    String user;

    @Mixin
    QuorumOptions quorum;

    @Override
    protected int run(Hsm hsm) {
      out().println(hsm.shareKey(keyId, user).toJson().encodePrettily());
      return ExitCodes.OK;
    }
  }

  @Command(name = "unshare", description = "Take back a share of your key. Prints the key with its shares.")
  static final class Unshare extends ClientCommand {
    @Parameters(paramLabel = "KEY_ID")
    String keyId;

    @Option(names = "--with", required = true, paramLabel = "USER")
    String user;

    @Mixin
    QuorumOptions quorum;

    @Override
    protected int run(Hsm hsm) {
      out().println(hsm.unshareKey(keyId, user).toJson().encodePrettily());
      return ExitCodes.OK;
    }
  }

  @Command(name = "quorum", description = "Set how many approvals your key's management operations (delete, set-label,"
      + " wrap, share, unshare, quorum) and its crypto operations need (1 = none).")
  static final class Quorum extends ClientCommand {
    @Parameters(paramLabel = "KEY_ID")
    String keyId;

    @Option(names = "--management", required = true, paramLabel = "M", description = "1.." + QuorumCommands.MAX_QUORUM + ".")
    int management;

    @Option(names = "--usage", required = true, paramLabel = "N", description = "1.." + QuorumCommands.MAX_QUORUM + ".")
    int usage;

    @Mixin
    QuorumOptions quorum;

    @Override
    protected void validate() {
      if (management < 1 || management > QuorumCommands.MAX_QUORUM || usage < 1 || usage > QuorumCommands.MAX_QUORUM) {
        throw usage("--management and --usage must be 1.." + QuorumCommands.MAX_QUORUM);
      }
    }

    @Override
    protected int run(Hsm hsm) {
      out().println(hsm.setKeyQuorum(keyId, management, usage).encodePrettily());
      return ExitCodes.OK;
    }
  }
}
