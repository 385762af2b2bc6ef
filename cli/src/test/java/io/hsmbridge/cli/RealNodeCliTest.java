package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line against REAL node processes on real SoftHSM2 tokens, as a new user would use it: a
 * cluster of two HSMs comes up, serves keys and crypto, grows to three, loses one, and goes down; and the
 * demo tour on its throwaway standalone node. One class, so the node JVMs start once per build.
 */
class RealNodeCliTest {
  @TempDir
  Path home;

  @AfterEach
  void stopCluster() {
    CliRun.run(home, "down");
  }

  @Test
  void clusterUpUseGrowShrinkDown() throws IOException {
    CliRun up = CliRun.run(home, "up", "--hsms", "2", "--port", "0");
    assertEquals(0, up.code, up + logs());
    assertTrue(up.out.contains("hsmbridge is up: 2 HSMs, durability 2"), up.out);
    assertTrue(up.out.lines().anyMatch(l -> l.matches(" +hsm2 +SERVING +token hsmbridge-hsm2, pid \\d+")), up.out);
    assertServing(List.of("hsm1", "hsm2"));
    CliRun again = CliRun.run(home, "up");
    assertEquals(0, again.code, again.toString());
    assertTrue(again.out.contains("hsmbridge is already running: 2 HSMs"), again.out);

    String aes = keyId(CliRun.run(home, "key", "generate", "--spec", "AES_256", "--label", "cli-aes"));
    CliRun enc = CliRun.run(home, "encrypt", "--key", aes, "--text", "hello", "--aad-text", "ctx");
    assertEquals(0, enc.code, enc.toString());
    JsonObject c = new JsonObject(enc.out.trim());
    assertDecrypts(aes, c);
    CliRun wrongAad = CliRun.run(home, "decrypt", "--key", aes, "--iv", c.getString("iv"), "--ciphertext",
        c.getString("ciphertext"), "--aad-text", "other");
    assertEquals(1, wrongAad.code);
    assertEquals(List.of("hsmbridge: CRYPTO_FAILURE: cryptographic operation failed"), wrongAad.errLines());

    String ec = keyId(CliRun.run(home, "key", "generate", "--spec", "EC_P256", "--label", "cli-ec"));
    CliRun sig = CliRun.run(home, "sign", "--key", ec, "--alg", "ECDSA_SHA256", "--text", "msg");
    assertEquals(0, sig.code, sig.toString());
    CliRun ok = CliRun.run(home, "verify", "--key", ec, "--alg", "ECDSA_SHA256", "--text", "msg", "--signature", sig.out.trim());
    assertEquals(0, ok.code, ok.toString());
    CliRun bad = CliRun.run(home, "verify", "--key", ec, "--alg", "ECDSA_SHA256", "--text", "msh", "--signature", sig.out.trim());
    assertEquals(1, bad.code, bad.toString());
    CliRun unknown = CliRun.run(home, "key", "describe", "00000000000000000000000000000000");
    assertEquals(List.of("hsmbridge: UNKNOWN_KEY: no key with id 00000000000000000000000000000000"), unknown.errLines());

    CliRun add = CliRun.run(home, "hsm", "add");
    assertEquals(0, add.code, add + logs());
    assertTrue(add.out.contains("added hsm3: SERVING (token hsmbridge-hsm3, objects "), add.out);
    assertServing(List.of("hsm1", "hsm2", "hsm3"));
    CliRun list = CliRun.run(home, "hsm", "list");
    assertEquals(0, list.code, list.toString());
    assertEquals(4, list.out.lines().count(), list.out);
    assertDecrypts(aes, c);

    CliRun remove = CliRun.run(home, "hsm", "remove", "hsm2");
    assertEquals(0, remove.code, remove + logs());
    assertTrue(remove.out.contains("removed hsm2 (stopped pid "), remove.out);
    assertTrue(remove.out.contains("HSMs now    hsm1, hsm3"), remove.out);
    try (Stream<Path> removed = Files.list(home.resolve("removed"))) {
      assertTrue(Files.isDirectory(removed.findFirst().orElseThrow().resolve("tokens")), "the token is kept");
    }
    CliRun status = assertServing(List.of("hsm1", "hsm3"));
    assertFalse(status.out.contains("hsm2"), status.out);
    assertDecrypts(aes, c);
    CliRun keys = CliRun.run(home, "key", "list");
    assertTrue(keys.out.contains(aes) && keys.out.contains(ec), keys.out);
    CliRun check = CliRun.run(home, "cluster", "check");
    assertEquals(0, check.code, check + logs());
    assertTrue(check.out.strip().endsWith("consistent"), check.out);

    CliRun down = CliRun.run(home, "down");
    assertEquals(0, down.code, down.toString());
    assertTrue(down.out.matches("stopped hsm1 \\(pid \\d+\\), hsm3 \\(pid \\d+\\), bridge \\(pid \\d+\\)\\n"), down.out);
    assertEquals(3, CliRun.run(home, "status").code, "status after down");
  }

  @Test
  void demoTourPassesEveryCheck() {
    CliRun demo = CliRun.run(home, "demo");
    assertEquals(0, demo.code, demo.toString());
    assertTrue(demo.out.matches("(?s).*demo: all \\d+ checks passed.*"), demo.out);
    assertTrue(demo.out.lines().noneMatch(l -> l.startsWith("FAIL")), demo.out);
    assertTrue(demo.out.lines().filter(l -> l.startsWith("ok ")).count() >= 30, "the tour checks every spec and op: " + demo.out);
  }

  /** status exits 0 and shows exactly these HSMs, each SERVING. */
  private CliRun assertServing(List<String> hsms) {
    CliRun status = CliRun.run(home, "status");
    assertEquals(0, status.code, status.toString());
    assertTrue(status.out.startsWith("hsmbridge is running: " + hsms.size() + " of " + hsms.size() + " HSMs healthy"),
        status + logs());
    for (String id : hsms) {
      assertTrue(status.out.lines().anyMatch(l -> l.matches(" +" + id + " +SERVING .*")), status.out);
    }
    return status;
  }

  private void assertDecrypts(String keyId, JsonObject c) {
    CliRun dec = CliRun.run(home, "decrypt", "--key", keyId, "--iv", c.getString("iv"), "--ciphertext",
        c.getString("ciphertext"), "--aad-text", "ctx");
    assertEquals(0, dec.code, dec.toString());
    assertEquals("hello", dec.out);
  }

  private static String keyId(CliRun run) {
    assertEquals(0, run.code, run.toString());
    return new JsonObject(run.out.trim()).getString("keyId");
  }

  /** The last lines of every node's log, for a failure message. */
  private String logs() {
    StringBuilder b = new StringBuilder();
    try (Stream<Path> dirs = Files.list(home)) {
      for (Path d : dirs.filter(Files::isDirectory).sorted().toList()) {
        Path log = d.resolve("node.log");
        if (Files.exists(log)) {
          List<String> lines = Files.readAllLines(log);
          b.append("\n--- ").append(log).append('\n')
              .append(String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size())));
        }
      }
    } catch (IOException e) {
      b.append("\n(cannot read the logs: ").append(e.getMessage()).append(')');
    }
    return b.toString();
  }
}
