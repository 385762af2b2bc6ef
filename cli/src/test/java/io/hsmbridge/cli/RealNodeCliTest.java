package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.*;

import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line against a REAL node process on a real SoftHSM2 token, as a new user would use it:
 * up, key generation, crypto round trips, one-line errors, down; and the demo tour end to end.
 */
class RealNodeCliTest {
  @TempDir
  Path home;

  @AfterEach
  void stopNode() {
    CliRun.run(home, "down");
  }

  @Test
  void upUseDown() {
    CliRun up = CliRun.run(home, "up", "--port", "0");
    assertEquals(0, up.code, up.toString());
    assertTrue(up.out.contains("hsmbridge is up"), up.out);

    String aes = keyId(CliRun.run(home, "key", "generate", "--spec", "AES_256", "--label", "cli-aes"));
    CliRun enc = CliRun.run(home, "encrypt", "--key", aes, "--text", "hello", "--aad-text", "ctx");
    assertEquals(0, enc.code, enc.toString());
    JsonObject c = new JsonObject(enc.out.trim());
    CliRun dec = CliRun.run(home, "decrypt", "--key", aes, "--iv", c.getString("iv"), "--ciphertext",
        c.getString("ciphertext"), "--aad-text", "ctx");
    assertEquals(0, dec.code, dec.toString());
    assertEquals("hello", dec.out);
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
    assertEquals(1, unknown.code);
    assertEquals(List.of("hsmbridge: UNKNOWN_KEY: no key with id 00000000000000000000000000000000"), unknown.errLines());
    CliRun wrongType = CliRun.run(home, "sign", "--key", aes, "--alg", "RSA_PKCS1_SHA256", "--text", "x");
    assertEquals(1, wrongType.code);
    assertEquals(1, wrongType.errLines().size(), wrongType.toString());
    assertTrue(wrongType.err.startsWith("hsmbridge: WRONG_KEY_TYPE: "), wrongType.err);

    CliRun list = CliRun.run(home, "key", "list");
    assertTrue(list.out.contains(aes) && list.out.contains(ec), list.out);

    assertEquals(0, CliRun.run(home, "down").code);
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

  private static String keyId(CliRun run) {
    assertEquals(0, run.code, run.toString());
    return new JsonObject(run.out.trim()).getString("keyId");
  }
}
