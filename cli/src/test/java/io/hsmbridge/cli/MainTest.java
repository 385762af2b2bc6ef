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
    NodeDir bridge = new Home(home).bridge();
    Files.createDirectories(bridge.dir());
    Files.writeString(bridge.endpointJson(), "{\"role\":\"bridge\",\"host\":\"127.0.0.1\",\"port\":7701,\"pid\":99999999}");
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

  /** One request path (issue #11 item 5): bench measures a cluster, there is no in-process variant left. */
  @Test
  void benchHasNoInProcessPath() {
    String line = oneError(CliRun.run(home, "bench", "--in-process"), ExitCodes.USAGE);
    assertTrue(line.contains("--in-process"), line);
  }

  @Test
  void unknownCommandListsTheCommands() {
    String line = oneError(CliRun.run(home, "frobnicate"), ExitCodes.USAGE);
    assertTrue(line.startsWith("hsmbridge: unknown command 'frobnicate'; one of: up, down, status, hsm, cluster, audit, backup, recovery, login, logout,"
        + " whoami, user, quorum, key"), line);
  }

  @Test
  void auditWithoutSubcommandOrWithABadHsmIsAUsageError() {
    assertTrue(oneError(CliRun.run(home, "audit"), ExitCodes.USAGE).contains("verify, export"));
    assertTrue(oneError(CliRun.run(home, "audit", "export", "--hsm", "../x"), ExitCodes.USAGE).contains("--hsm"));
  }

  @Test
  void keyWithoutSubcommandIsAUsageError() {
    String line = oneError(CliRun.run(home, "key"), ExitCodes.USAGE);
    assertTrue(line.contains("generate, list, describe, delete, set-label, public, certificates, wrap, share, unshare, quorum"), line);
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
    String line = oneError(CliRun.run(home, "random", "--endpoint", "127.0.0.1:" + port, "--plaintext"), ExitCodes.FAILURE);
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
    assertTrue(Files.notExists(new Home(home).hsm("hsm1").userPin()));
    assertTrue(Files.notExists(new Home(home).clusterProperties()));
  }

  @Test
  void upRejectsABadPort() {
    String line = oneError(CliRun.run(home, "up", "--port", "70000"), ExitCodes.USAGE);
    assertTrue(line.contains("--port must be 0..65535"), line);
  }

  @Test
  void upChecksItsOptionsFirst() {
    assertTrue(oneError(CliRun.run(home, "up", "--hsms", "0"), ExitCodes.USAGE).contains("--hsms must be 1..9, got 0"));
    assertTrue(oneError(CliRun.run(home, "up", "--hsms", "10"), ExitCodes.USAGE).contains("--hsms must be 1..9"));
    assertTrue(oneError(CliRun.run(home, "up", "--durability", "0"), ExitCodes.USAGE)
        .contains("--durability must be 1..9"));
    assertTrue(Files.notExists(home.resolve("cluster.properties")));
  }

  /** A cluster of {@code hsms} HSMs recorded in the home, nothing running; and a library that exists. */
  private Map<String, String> recordedCluster(int hsms) throws IOException {
    ClusterLayout.newRecord(hsms, 0, 2).store(new Home(home).clusterProperties());
    return Map.of(NodeLayout.LIBRARY_ENV, Files.writeString(home.resolve("lib.so"), "").toString());
  }

  @Test
  void upDoesNotChangeTheNumberOfHsmsOfAnExistingCluster() throws IOException {
    Map<String, String> env = recordedCluster(3);
    assertEquals("hsmbridge: this cluster has 3 HSMs (hsm1, hsm2, hsm3); change that with ./hsmbridge hsm add"
        + " or ./hsmbridge hsm remove <hsmId>", oneError(CliRun.run(home, env, "up", "--hsms", "2"), ExitCodes.FAILURE));
  }

  @Test
  void upDoesNotTakeOverTheSingleNodeOfAnEarlierVersion() throws IOException {
    Map<String, String> env = Map.of(NodeLayout.LIBRARY_ENV, Files.writeString(home.resolve("lib.so"), "").toString());
    // What the single node of an earlier version left: HOME/hsm1/node.properties without a cluster record.
    NodeDir old = new Home(home).hsm(Home.FIRST_HSM);
    NodeLayout.prepareToken(old);
    Files.writeString(old.nodeProperties(), "hsm.id=hsm1\nbridge.tcp.port=7701\nbridge.tls=false\nstate.dir=" + old.dir() + "\n");
    assertEquals("hsmbridge: " + home + " holds the single node of an earlier hsmbridge version, whose keys would"
        + " not be replicated; move it away (or use --home) to create a cluster",
        oneError(CliRun.run(home, env, "up"), ExitCodes.FAILURE));
    assertTrue(Files.notExists(new Home(home).clusterProperties()));
  }

  @Test
  void hsmCommandsSayWhatIsMissingInOneLine() throws IOException {
    assertTrue(oneError(CliRun.run(home, "hsm"), ExitCodes.USAGE).contains("list, add, remove"));
    assertTrue(oneError(CliRun.run(home, "hsm", "remove", "bridge"), ExitCodes.USAGE).contains("not an HSM id"));
    assertEquals("hsmbridge: no cluster in " + home + " (create one with ./hsmbridge up)",
        oneError(CliRun.run(home, "hsm", "list"), ExitCodes.NOT_RUNNING));

    Map<String, String> env = recordedCluster(1);
    assertEquals("hsmbridge: refusing to remove hsm1: it is the cluster's only HSM (./hsmbridge down stops the cluster)",
        oneError(CliRun.run(home, env, "hsm", "remove", "hsm1"), ExitCodes.FAILURE));
    assertEquals("hsmbridge: no HSM hsm7 in this cluster (members: hsm1)",
        oneError(CliRun.run(home, env, "hsm", "remove", "hsm7"), ExitCodes.FAILURE));
    assertEquals("hsmbridge: the cluster must run to add an HSM; start it with ./hsmbridge up",
        oneError(CliRun.run(home, env, "hsm", "add"), ExitCodes.FAILURE));
    CliRun list = CliRun.run(home, "hsm", "list");
    assertEquals(ExitCodes.NOT_RUNNING, list.code, list::toString);
    assertTrue(list.out.matches("(?s)HSM +STATE +TOKEN +OBJECTS +PID\\nhsm1 +\\(not running\\) +- +- +-\\n"), list.out);
    assertEquals(NOT_RUNNING, oneError(CliRun.run(home, "cluster", "check"), ExitCodes.FAILURE));
    assertEquals(ExitCodes.NOT_RUNNING, CliRun.run(home, "status").code);
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
    for (String c : List.of("up", "down", "status", "hsm", "cluster", "login", "logout", "whoami", "user", "quorum", "key",
        "encrypt", "decrypt", "sign", "verify", "mac", "mac-verify", "digest", "random", "demo")) {
      assertTrue(r.out.contains("\n  " + c + " "), c);
    }
  }
}
