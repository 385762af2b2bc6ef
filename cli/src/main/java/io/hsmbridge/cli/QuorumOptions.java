package io.hsmbridge.cli;

import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.QuorumApproval;
import io.hsmbridge.client.QuorumToken;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Function;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/**
 * The quorum options of every protected command (a picocli mixin; {@link ClientCommand} applies it):
 * <ul>
 *   <li>{@code --quorum-request FILE}: do not run the operation; ask the bridge for a quorum token for
 *       exactly the request this command would send, and write it to FILE for the approvers;</li>
 *   <li>{@code --quorum-token FILE --approval FILE...}: run the operation with the approvals.</li>
 * </ul>
 * The same command line must be given both times: the token pins the request's fields and values.
 */
final class QuorumOptions {
  static final int MAX_TTL_SECONDS = 3600;

  @Option(names = "--quorum-request", paramLabel = "FILE",
      description = "Do not run it: get a quorum token for exactly this request and write it to FILE"
          + " (for 'quorum approve').")
  Path requestFile;

  @Option(names = "--quorum-ttl", paramLabel = "SECONDS",
      description = "With --quorum-request: how long the token is valid, 1.." + MAX_TTL_SECONDS + " (default 600).")
  Integer ttlSeconds;

  @Option(names = "--quorum-token", paramLabel = "FILE",
      description = "Run with the approvals of this quorum token (the FILE --quorum-request wrote).")
  Path tokenFile;

  @Option(names = "--approval", paramLabel = "FILE", split = ",",
      description = "With --quorum-token: an approval 'quorum approve' wrote; repeat for each approver.")
  List<Path> approvalFiles = new ArrayList<>();

  /** The token and approvals read from their files, ready to send. */
  record Approved(QuorumToken token, List<QuorumApproval> approvals) {
    Hsm apply(Hsm hsm) {
      return hsm.withQuorum(token.tokenId(), approvals);
    }
  }

  boolean requestsToken() {
    return requestFile != null;
  }

  /**
   * Checks the combination of options and, with {@code --quorum-token}, reads and checks the files, all
   * before anything is sent.
   *
   * @return the approvals to send, or null when the command runs without a quorum
   */
  Approved prepare(Function<String, ParameterException> usage, long nowMillis) {
    if (requestFile != null && tokenFile != null) {
      throw usage.apply("--quorum-request and --quorum-token exclude each other: first request a token, then run"
          + " with it");
    }
    if (ttlSeconds != null && (requestFile == null || ttlSeconds < 1 || ttlSeconds > MAX_TTL_SECONDS)) {
      throw usage.apply("--quorum-ttl needs --quorum-request and must be 1.." + MAX_TTL_SECONDS);
    }
    if (!approvalFiles.isEmpty() && tokenFile == null) {
      throw usage.apply("--approval needs --quorum-token FILE");
    }
    if (tokenFile == null) {
      return null;
    }
    if (approvalFiles.isEmpty()) {
      throw usage.apply("--quorum-token needs at least one --approval FILE");
    }
    QuorumToken token = QuorumFiles.readToken(tokenFile);
    if (nowMillis >= token.expiresAt()) {
      throw new CliException("the quorum token in " + tokenFile + " expired at " + Instant.ofEpochMilli(token.expiresAt())
          + "; request a new one with --quorum-request");
    }
    List<QuorumApproval> approvals = new ArrayList<>();
    Set<String> users = new HashSet<>();
    for (Path f : approvalFiles) {
      QuorumApproval a = QuorumFiles.readApproval(f);
      if (!a.tokenId().equals(token.tokenId())) {
        throw new CliException(f + " approves token " + a.tokenId() + ", not " + token.tokenId() + " of " + tokenFile);
      }
      if (!users.add(a.user())) {
        throw new CliException("two approvals of " + a.user() + ": each approver counts once");
      }
      approvals.add(a);
    }
    return new Approved(token, approvals);
  }

  /**
   * Instead of running {@code command}, asks for a token for the request it would send and writes the
   * token file; prints what the approvers and the requester do next.
   */
  int requestToken(Hsm hsm, Hsm.Call command, PrintStream out) throws Exception {
    JsonObject operation = hsm.firstRequestOf(command);
    if (operation == null) {
      throw new CliException("this command sent no request a quorum could approve");
    }
    QuorumToken token = hsm.quorumToken(operation, ttlSeconds == null ? 0 : ttlSeconds);
    try {
      QuorumFiles.writeToken(requestFile, token);
    } catch (IOException e) {
      throw new CliException("cannot write " + requestFile + ": " + e.getMessage());
    }
    out.println("quorum token " + token.tokenId() + " for " + operation.getString("op") + " written to " + requestFile
        + " (valid until " + Instant.ofEpochMilli(token.expiresAt()) + ")");
    out.println("next: each approver signs it with their registered key:");
    out.println("  hsmbridge quorum approve --token " + requestFile + " --user NAME --key NAME.pem --out NAME.approval.json");
    out.println("then run this same command again with --quorum-token " + requestFile
        + " --approval NAME.approval.json (one --approval per approver)");
    return ExitCodes.OK;
  }
}
