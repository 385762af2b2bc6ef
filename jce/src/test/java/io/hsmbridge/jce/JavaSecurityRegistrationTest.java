package io.hsmbridge.jce;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Provider;
import java.security.Security;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Registration by name in {@code java.security}, as an operator would do it without touching the
 * application: {@code security.provider.N=HsmBridge /path/to/jce.properties} finds the provider through
 * {@code META-INF/services/java.security.Provider} and configures it from the file. Checked in a child JVM
 * whose security properties add that line.
 */
class JavaSecurityRegistrationTest {
  @TempDir
  Path dir;

  @Test
  void aJavaSecurityLineRegistersAndConfiguresTheProvider() throws Exception {
    Path config = dir.resolve("jce.properties");
    Files.writeString(config, "endpoints=127.0.0.1:7443\nca=" + dir.resolve("ca.pem") + "\nuser=app\n",
        StandardCharsets.UTF_8);
    Path security = dir.resolve("extra.security");
    // The next index after the JDK's own providers: the JDK stops reading at the first missing one.
    int next = 1;
    while (Security.getProperty("security.provider." + next) != null) {
      next++;
    }
    Files.writeString(security, "security.provider." + next + "=HsmBridge " + config + "\n", StandardCharsets.UTF_8);
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    Process child = new ProcessBuilder(java.toString(), "-Djava.security.properties=" + security, "-cp",
        System.getProperty("java.class.path"), Child.class.getName()).redirectErrorStream(true).start();
    String out = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(child.waitFor(60, TimeUnit.SECONDS), "the child JVM ended");
    assertEquals(0, child.exitValue(), out);
    assertTrue(out.contains("HsmBridge configured=true"), out);
  }

  /** The child: asks the JDK for the provider by name, as JCA code would. */
  public static final class Child {
    public static void main(String[] args) throws IOException {
      Provider p = Security.getProvider("HsmBridge");
      System.out.println(p == null ? "no provider" : p.getName() + " configured=" + p.isConfigured());
    }
  }
}
