package io.hsmbridge.jce;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.client.FailoverSender.Endpoint;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.ProviderException;
import java.security.Security;
import java.util.List;
import java.util.Properties;
import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The provider's configuration (file, system properties) and what it says when it is wrong; the provider's
 * services as the JCA sees them. No cluster: what a cluster does is in cli's JceProviderTest, JceTlsTest and
 * JceResilienceTest.
 */
class JceConfigTest {
  @TempDir
  Path dir;

  @Test
  void aFileGivesEndpointsCaUserAndAPasswordReadAtEachLogin() throws Exception {
    Path password = dir.resolve("password");
    Files.writeString(password, "first password!\nignored second line\n");
    Path file = dir.resolve("jce.properties");
    Files.writeString(file, "endpoints = 10.0.0.1:7443, [::1]:7444\nca=/etc/hsmbridge/ca.pem\nuser=app\n"
        + "passwordFile=" + password + "\ntimeoutSeconds=7\n", StandardCharsets.UTF_8);
    JceConfig c = JceConfig.load(file);
    assertEquals(List.of(new Endpoint("10.0.0.1", 7443), new Endpoint("::1", 7444)), c.endpoints());
    assertEquals(Path.of("/etc/hsmbridge/ca.pem"), c.ca());
    assertEquals("app", c.user());
    assertEquals(7, c.timeout().toSeconds());
    assertArrayEquals("first password!".toCharArray(), c.password());
    Files.writeString(password, "rotated password\n");
    assertArrayEquals("rotated password".toCharArray(), c.password(), "read again at each login, never kept");
    assertFalse(c.toString().contains("password!"), c.toString());
    assertTrue(c.toString().contains("file " + password), c.toString());
  }

  @Test
  void whatIsMissingOrWrongIsNamed() throws Exception {
    Properties p = new Properties();
    p.setProperty("endpoints", "10.0.0.1:7443");
    p.setProperty("user", "app");
    IllegalArgumentException noCa = assertThrows(IllegalArgumentException.class, () -> JceConfig.from(p, "", "test"));
    assertTrue(noCa.getMessage().contains("ca"), noCa.getMessage());
    p.setProperty("plaintext", "true");
    assertNull(JceConfig.from(p, "", "test").ca(), "plaintext only when asked for");
    p.setProperty("endpoints", "no-port");
    IllegalArgumentException badEndpoint = assertThrows(IllegalArgumentException.class,
        () -> JceConfig.from(p, "", "test"));
    assertTrue(badEndpoint.getMessage().contains("host:port"), badEndpoint.getMessage());
    p.setProperty("endpoints", "10.0.0.1:7443");
    p.remove("user");
    assertTrue(assertThrows(IllegalArgumentException.class, () -> JceConfig.from(p, "", "test")).getMessage()
        .contains("user is required"));
    assertThrows(IllegalArgumentException.class, () -> JceConfig.load(dir.resolve("absent.properties")));
  }

  @Test
  void aPasswordFromAnUnsetVariableOrAMissingFileFailsSayingWhere() {
    Properties p = new Properties();
    p.setProperty("endpoints", "127.0.0.1:7443");
    p.setProperty("plaintext", "true");
    p.setProperty("user", "app");
    p.setProperty("passwordEnv", "HSMBRIDGE_TEST_SURELY_UNSET_VARIABLE");
    ProviderException env = assertThrows(ProviderException.class, () -> JceConfig.from(p, "", "t").password());
    assertTrue(env.getMessage().contains("HSMBRIDGE_TEST_SURELY_UNSET_VARIABLE"), env.getMessage());
    p.setProperty("passwordFile", dir.resolve("none").toString());
    ProviderException file = assertThrows(ProviderException.class, () -> JceConfig.from(p, "", "t").password());
    assertTrue(file.getMessage().contains("password file"), file.getMessage());
  }

  @Test
  void theProviderOffersItsEnginesOnlyForClusterKeys() throws Exception {
    HsmBridgeProvider p = new HsmBridgeProvider(JceConfig.of(List.of(new Endpoint("127.0.0.1", 1)), null, "app",
        () -> "unused password".toCharArray()));
    assertEquals("HsmBridge", p.getName());
    assertEquals(HsmKey.class.getName(), p.getService("Signature", "SHA256withECDSA").getAttribute("SupportedKeyClasses"));
    assertEquals(HsmKey.class.getName(), p.getService("Cipher", "AES/GCM/NoPadding").getAttribute("SupportedKeyClasses"));
    assertEquals(0, p.logins(), "nothing connects before first use");
    Security.addProvider(p);
    try {
      // Keys in memory still go to the JDK, even with this provider registered.
      KeyGenerator g = KeyGenerator.getInstance("AES");
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.ENCRYPT_MODE, g.generateKey());
      assertFalse(c.getProvider().getName().equals("HsmBridge"));
    } finally {
      Security.removeProvider("HsmBridge");
    }
    assertThrows(IllegalArgumentException.class, () -> new HsmBridgeProvider().configure(dir.resolve("x").toString()));
  }
}
