package io.hsmbridge.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** AgentConfig: every invalid value is CONFIG_INVALID with a message naming the key. */
class AgentConfigTest {
  @TempDir
  Path dir;

  private static Properties valid() {
    Properties p = new Properties();
    p.setProperty("hsm.id", "hsm-1");
    p.setProperty("pkcs11.library", "/usr/lib/softhsm/libsofthsm2.so");
    p.setProperty("token.label", "tok");
    p.setProperty("pin.user.file", "/run/secrets/user.pin");
    return p;
  }

  @Test
  void validConfigAndDefaults() {
    AgentConfig c = AgentConfig.from(valid());
    assertEquals("hsm-1", c.hsmId());
    assertEquals("tok", c.token().tokenLabel());
    assertFalse(c.token().initialize());
    assertFalse(c.token().repairCorruption());
    assertEquals(8, c.token().maxSessions());
    assertEquals(Duration.ofSeconds(5), c.token().borrowTimeout());
    assertNull(c.token().soPin());
    assertFalse(c.token().toString().contains("secret-pin"));
  }

  @Test
  void explicitValues() {
    Properties p = valid();
    p.remove("pin.user.file");
    p.setProperty("pin.user.env", "HSM_PIN");
    p.setProperty("pin.so.file", "/run/secrets/so.pin");
    p.setProperty("token.initialize", " true ");
    p.setProperty("integrity.repair", "true");
    p.setProperty("sessions.max", "4");
    p.setProperty("sessions.borrowTimeoutMs", "250");
    AgentConfig c = AgentConfig.from(p);
    assertTrue(c.token().initialize());
    assertTrue(c.token().repairCorruption());
    assertEquals(4, c.token().maxSessions());
    assertEquals(Duration.ofMillis(250), c.token().borrowTimeout());
    assertTrue(c.token().userPin().toString().contains("HSM_PIN"));
  }

  @Test
  void missingRequiredKeys() {
    for (String key : new String[] {"hsm.id", "pkcs11.library"}) {
      Properties p = valid();
      p.remove(key);
      assertInvalid(p, key);
      p.setProperty(key, "   ");
      assertInvalid(p, key);
    }
    Properties p = valid();
    p.remove("pin.user.file");
    assertInvalid(p, "pin.user.file or pin.user.env");

    p = valid();
    p.remove("token.label");
    assertInvalid(p, "token.label or token.serial");
  }

  @Test
  void badValues() {
    assertInvalid(with("hsm.id", "has space"), "hsm.id");
    assertInvalid(with("hsm.id", "x".repeat(65)), "hsm.id");
    assertInvalid(with("token.initialize", "yes"), "token.initialize");
    assertInvalid(with("integrity.repair", "TRUE1"), "integrity.repair");
    assertInvalid(with("sessions.max", "many"), "sessions.max");
    assertInvalid(with("sessions.max", "0"), "sessions.max");
    assertInvalid(with("sessions.max", "5000"), "sessions.max");
    assertInvalid(with("sessions.borrowTimeoutMs", "-1"), "sessions.borrowTimeoutMs");
    assertInvalid(with("sessions.borrowTimeoutMs", "1.5"), "sessions.borrowTimeoutMs");
    assertInvalid(with("token.label", "x".repeat(33)), "token.label");
    // initialising a token needs the SO PIN
    assertInvalid(with("token.initialize", "true"), "pin.so");
  }

  @Test
  void bothPinSourcesAreRefused() {
    Properties p = valid();
    p.setProperty("pin.user.env", "HSM_PIN");
    assertInvalid(p, "pin.user.file and pin.user.env");

    Properties so = valid();
    so.setProperty("pin.so.file", "/a");
    so.setProperty("pin.so.env", "B");
    assertInvalid(so, "pin.so.file and pin.so.env");
  }

  @Test
  void loadFromFile() throws IOException {
    Path f = dir.resolve("agent.properties");
    Files.writeString(f, "hsm.id = from-file\npkcs11.library=/lib.so\ntoken.label=t\npin.user.env=P\n",
        StandardCharsets.UTF_8);
    assertEquals("from-file", AgentConfig.load(f).hsmId());

    HsmException e = assertThrows(HsmException.class, () -> AgentConfig.load(dir.resolve("missing.properties")));
    assertEquals(ErrorCode.CONFIG_INVALID, e.code());
    assertTrue(e.getMessage().contains("missing.properties"), e.getMessage());
  }

  private static Properties with(String key, String value) {
    Properties p = valid();
    p.setProperty(key, value);
    return p;
  }

  private static void assertInvalid(Properties p, String named) {
    HsmException e = assertThrows(HsmException.class, () -> AgentConfig.from(p), () -> "accepted " + p);
    assertEquals(ErrorCode.CONFIG_INVALID, e.code(), e.getMessage());
    assertTrue(e.getMessage().contains(named), "message '" + e.getMessage() + "' names " + named);
    assertTrue(e.clientMessage().startsWith("CONFIG_INVALID: "), e.clientMessage());
  }
}
