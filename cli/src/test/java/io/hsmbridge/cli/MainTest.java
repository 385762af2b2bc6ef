package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.protocol.KeySpec;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class MainTest {
  private static final String NOT_RUNNING = "hsmbridge: no local cluster running (start it with ./hsmbridge up)";

  @TempDir
  Path home;

  /** Exactly one stderr line, starting "hsmbridge: ", and the given exit code. */
  private static String oneError(CliRun r, int code) {
    assertEquals(code, r.code, r::toString);
    List<String> lines = r.errLines();
    assertEquals(1, lines.size(), r::toString);
    assertTrue(lines.get(0).startsWith("hsmbridge: "), r::toString);
    return lines.get(0);
  }

  @ParameterizedTest
  @ValueSource(strings = {
      "key list",
      "key describe 0123456789abcdef0123456789abcdef",
      "key generate --spec AES_256 --label t",
      "encrypt --key k --text hello",
      "sign --key k --alg ED25519 --text hello",
      "digest --text hello",
      "random --length 8"})
  void clientCommandWithoutClusterSaysSoInOneLine(String cmd) {
    CliRun r = CliRun.run(home, cmd.split(" "));
    assertEquals(NOT_RUNNING, oneError(r, ExitCodes.FAILURE));
    assertEquals("", r.out);
  }

  @Test
  void staleEndpointFileOfADeadProcessCountsAsNotRunning() throws IOException {
    Home h = new Home(home);
    Files.createDirectories(h.hsmDir());
    Files.writeString(h.endpointJson(), "{\"host\":\"127.0.0.1\",\"port\":7701,\"pid\":99999999,\"hsmId\":\"hsm1\"}");
    assertEquals(NOT_RUNNING, oneError(CliRun.run(home, "key", "list"), ExitCodes.FAILURE));
    CliRun status = CliRun.run(home, "status");
    assertEquals(ExitCodes.NOT_RUNNING, status.code, status::toString);
    assertTrue(status.out.startsWith("hsmbridge is not running"), status::toString);
  }

  @Test
  void badSpecListsEveryValidSpec() {
    String line = oneError(CliRun.run(home, "key", "generate", "--spec", "AES_512", "--label", "x"), ExitCodes.USAGE);
    assertTrue(line.contains("AES_512"), line);
    for (KeySpec s : KeySpec.values()) {
      assertTrue(line.contains(s.name()), line);
    }
  }

  @Test
  void specIsCaseInsensitiveAndAcceptsDashes() {
    // Parses fine, then fails only because nothing runs.
    assertEquals(NOT_RUNNING,
        oneError(CliRun.run(home, "key", "generate", "--spec", "ec-p256", "--label", "x"), ExitCodes.FAILURE));
  }

  @Test
  void usageNotAllowedForTheSpecIsAUsageErrorEvenWithoutACluster() {
    String line = oneError(CliRun.run(home, "key", "generate", "--spec", "EC_P256", "--label", "x",
        "--usage", "ENCRYPT_DECRYPT"), ExitCodes.USAGE);
    assertTrue(line.contains("--usage") && line.contains("not allowed"), line);
  }

  @Test
  void missingRequiredOptionNamesIt() {
    String line = oneError(CliRun.run(home, "key", "generate", "--label", "x"), ExitCodes.USAGE);
    assertTrue(line.contains("--spec"), line);
    assertTrue(line.endsWith("(see 'hsmbridge key generate --help')"), line);
  }

  @Test
  void unknownCommandListsTheCommands() {
    String line = oneError(CliRun.run(home, "frobnicate"), ExitCodes.USAGE);
    assertTrue(line.startsWith("hsmbridge: unknown command 'frobnicate'; one of: up, down, status, key"), line);
  }

  @Test
  void keyWithoutSubcommandIsAUsageError() {
    String line = oneError(CliRun.run(home, "key"), ExitCodes.USAGE);
    assertTrue(line.contains("generate, list, describe, delete, set-label, public"), line);
  }

  @Test
  void inAndTextAreExclusiveAndOneIsRequired() {
    oneError(CliRun.run(home, "encrypt", "--key", "k", "--text", "a", "--in", "f"), ExitCodes.USAGE);
    String line = oneError(CliRun.run(home, "encrypt", "--key", "k"), ExitCodes.USAGE);
    assertTrue(line.contains("--in") && line.contains("--text") && !line.contains("Error:"), line);
  }

  @Test
  void badAlgListsTheAlgorithmsOfThatKind() {
    String line = oneError(CliRun.run(home, "sign", "--key", "k", "--alg", "AES_GCM", "--text", "m"), ExitCodes.USAGE);
    assertTrue(line.contains("ECDSA_SHA256") && line.contains("ED25519") && !line.contains("HMAC_SHA256"), line);
  }

  @Test
  void badBase64IsAUsageError() {
    String line = oneError(CliRun.run(home, "verify", "--key", "k", "--alg", "ED25519", "--text", "m",
        "--signature", "!!not-base64!!"), ExitCodes.USAGE);
    assertTrue(line.contains("--signature is not valid base64"), line);
  }

  @Test
  void randomLengthIsChecked() {
    String line = oneError(CliRun.run(home, "random", "--length", "5000"), ExitCodes.USAGE);
    assertTrue(line.contains("1..4096"), line);
  }

  @Test
  void badEndpointFormat() {
    String line = oneError(CliRun.run(home, "key", "list", "--endpoint", "localhost"), ExitCodes.USAGE);
    assertTrue(line.contains("HOST:PORT"), line);
  }

  @Test
  void unreachableEndpointIsOneLine() throws IOException {
    int port;
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = s.getLocalPort();
    }
    String line = oneError(CliRun.run(home, "random", "--endpoint", "127.0.0.1:" + port), ExitCodes.FAILURE);
    assertTrue(line.startsWith("hsmbridge: NO_HSM_AVAILABLE: cannot connect to hsmbridge at 127.0.0.1:" + port), line);
  }

  @Test
  void debugAddsTheStackTrace() {
    CliRun r = CliRun.run(home, "--debug", "key", "list");
    assertEquals(ExitCodes.FAILURE, r.code);
    assertEquals(NOT_RUNNING, r.errLines().get(0));
    assertTrue(r.errLines().size() > 1 && r.err.contains("at io.hsmbridge.cli."), r::toString);
    CliRun e = CliRun.run(home, Map.of("HSMBRIDGE_DEBUG", "1"), "key", "list");
    assertTrue(e.errLines().size() > 1, e::toString);
  }

  @Test
  void upWithAMissingLibraryFailsInOneLineAndCreatesNothing() {
    String line = oneError(CliRun.run(home, Map.of(NodeLayout.LIBRARY_ENV, "/nonexistent/libpkcs11.so"), "up"),
        ExitCodes.FAILURE);
    assertEquals("hsmbridge: PKCS#11 library not found: /nonexistent/libpkcs11.so (from HSMBRIDGE_PKCS11_LIBRARY)",
        line);
    assertTrue(Files.notExists(new Home(home).userPin()));
  }

  @Test
  void upRejectsABadPort() {
    String line = oneError(CliRun.run(home, "up", "--port", "70000"), ExitCodes.USAGE);
    assertTrue(line.contains("--port must be 0..65535"), line);
  }

  @Test
  void downIsIdempotent() {
    CliRun r = CliRun.run(home, "down");
    assertEquals(0, r.code, r::toString);
    assertTrue(r.out.startsWith("hsmbridge is not running"), r::toString);
    assertEquals(0, CliRun.run(home, "down").code);
  }

  @Test
  void homeOptionWinsOverEnvironment(@TempDir Path other) {
    CliRun r = CliRun.run(home, "--home", other.toString(), "status");
    assertTrue(r.out.contains(other.toString()), r::toString);
    CliRun s = CliRun.run(home, "status", "--home", other.toString());
    assertTrue(s.out.contains(other.toString()), s::toString);
  }

  @Test
  void helpGoesToStdoutAndMentionsEveryCommand() {
    CliRun r = CliRun.run(home, "--help");
    assertEquals(0, r.code);
    assertEquals("", r.err);
    for (String c : List.of("up", "down", "status", "key", "encrypt", "decrypt", "sign", "verify", "mac",
        "mac-verify", "digest", "random", "demo")) {
      assertTrue(r.out.contains("\n  " + c + " "), c);
    }
  }
}
