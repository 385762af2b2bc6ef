package io.hsmbridge.cli;

import io.hsmbridge.client.QuorumApproval;
import io.hsmbridge.client.QuorumToken;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * The files of the quorum walk-through (docs/users.md): a token file ({@code {tokenId, document, expiresAt}},
 * written by {@code --quorum-request}, read by {@code quorum approve} and {@code --quorum-token}) and
 * approval files ({@code {tokenId, user, signature}}, written by {@code quorum approve}). They hold no
 * secret the approvers may not see, but the document describes the operation: they are created 0600.
 */
final class QuorumFiles {
  private QuorumFiles() {}

  static void writeToken(Path file, QuorumToken token) throws IOException {
    PrivateFiles.write(file, (token.toJson().encodePrettily() + "\n").getBytes(StandardCharsets.UTF_8));
  }

  static QuorumToken readToken(Path file) {
    JsonObject o = json(file);
    if (o.getValue("tokenId") instanceof String id && o.getValue("document") instanceof String doc
        && o.getValue("expiresAt") instanceof Number exp) {
      return new QuorumToken(id, doc, exp.longValue());
    }
    throw new CliException(file + " is no quorum token file (it needs tokenId, document and expiresAt;"
        + " --quorum-request writes one)");
  }

  static void writeApproval(Path file, QuorumApproval approval) throws IOException {
    PrivateFiles.write(file, (approval.toJson().encodePrettily() + "\n").getBytes(StandardCharsets.UTF_8));
  }

  static QuorumApproval readApproval(Path file) {
    try {
      return QuorumApproval.fromJson(json(file));
    } catch (IllegalArgumentException e) {
      throw new CliException(file + " is no approval file: " + e.getMessage() + " ('quorum approve' writes one)");
    }
  }

  private static JsonObject json(Path file) {
    try {
      return new JsonObject(Files.readString(file, StandardCharsets.UTF_8));
    } catch (NoSuchFileException e) {
      throw new CliException("no such file: " + file);
    } catch (IOException e) {
      throw new CliException("cannot read " + file + ": " + e.getMessage());
    } catch (DecodeException | ClassCastException e) {
      throw new CliException(file + " is not a JSON object");
    }
  }
}
