package io.hsmbridge.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The message of a crypto command: exactly one of {@code --in FILE} or {@code --text STR}. */
final class Input {
  /** The protocol's limit for plaintext and messages (docs/protocol.md, "Limits"). */
  static final int MAX_BYTES = 64 * 1024;

  @Option(names = "--in", paramLabel = "FILE", required = true,
      description = "Read the input from FILE ('-' for standard input).")
  Path file;

  @Option(names = "--text", paramLabel = "STR", required = true,
      description = "Use the UTF-8 bytes of STR as the input.")
  String text;

  byte[] read(InputStream stdin) {
    if (text != null) {
      return check(text.getBytes(StandardCharsets.UTF_8));
    }
    try {
      if (file.toString().equals("-")) {
        return check(stdin.readNBytes(MAX_BYTES + 1));
      }
      try (InputStream in = Files.newInputStream(file)) {
        return check(in.readNBytes(MAX_BYTES + 1));
      }
    } catch (NoSuchFileException e) {
      throw new CliException("no such file: " + file);
    } catch (IOException e) {
      throw new CliException("cannot read " + file + ": " + e.getMessage());
    }
  }

  private static byte[] check(byte[] b) {
    if (b.length > MAX_BYTES) {
      throw new CliException("input is larger than " + MAX_BYTES + " bytes, the protocol's limit");
    }
    return b;
  }
}
