package io.hsmbridge.cli;

import io.hsmbridge.client.ClientTls;
import io.hsmbridge.client.FailoverSender;
import io.hsmbridge.client.Hsm;
import io.hsmbridge.jce.HsmBridgeProvider;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Provider;
import java.util.ArrayList;
import java.util.List;

/** How the JCE tests reach a local cluster: as an application would, from a provider configuration file. */
final class JceClusters {
  private JceClusters() {}

  /**
   * A provider for the crypto user of {@code logins}, configured by a file that names the front doors of
   * {@code nodes}, the cluster CA and the user's password file ({@code Provider.configure}, as {@code
   * java.security} would).
   */
  static HsmBridgeProvider provider(Path home, TestLogins logins, String... nodes) {
    StringBuilder endpoints = new StringBuilder();
    for (String node : nodes) {
      endpoints.append(endpoints.length() == 0 ? "" : ",").append(endpoint(home, node));
    }
    Path file = home.resolve("jce-" + TestLogins.CRYPTO_USER + ".properties");
    String config = "endpoints=" + endpoints + "\n"
        + "ca=" + ca(home) + "\n"
        + "user=" + TestLogins.CRYPTO_USER + "\n"
        + "passwordFile=" + logins.passwordFile(TestLogins.CRYPTO_USER) + "\n";
    try {
      Files.writeString(file, config, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    Provider p = new HsmBridgeProvider().configure(file.toString());
    return (HsmBridgeProvider) p;
  }

  /** A new, activated one-HSM cluster ({@code up --hsms 1}) in a temp home, with the users of {@link TestLogins}. */
  static TestLogins upOneHsm(String name) throws IOException {
    Path home = Files.createTempDirectory("hsmbridge-" + name);
    CliRun up = CliRun.run(home, "up", "--hsms", "1", "--port", "0");
    org.junit.jupiter.api.Assertions.assertEquals(0, up.code, up.toString());
    return TestLogins.activate(home, Files.createTempDirectory("hsmbridge-" + name + "-logins"));
  }

  /** Unregisters and logs out {@code provider} (null: none was made), then stops the cluster of {@code logins}. */
  static void down(TestLogins logins, Provider provider, String test) throws IOException {
    java.security.Security.removeProvider(HsmBridgeProvider.NAME);
    if (provider instanceof HsmBridgeProvider p) {
      p.logout();
    }
    if (logins != null) {
      logins.down(test, "", null);
    }
  }

  /** A client facade logged in as the crypto user, for what the tests prepare outside the provider. */
  static Hsm hsm(Path home, TestLogins logins, String node) throws IOException {
    Hsm hsm = Hsm.connect(List.of(endpoint(home, node)), ClientTls.pinning(ca(home)));
    char[] password = logins.password(TestLogins.CRYPTO_USER);
    hsm.login(TestLogins.CRYPTO_USER, password);
    return hsm;
  }

  static Path ca(Path home) {
    return home.resolve("bridge").resolve("tls").resolve("ca.pem");
  }

  static FailoverSender.Endpoint endpoint(Path home, String node) {
    try {
      JsonObject ep = new JsonObject(Files.readString(home.resolve(node).resolve("endpoint.json")));
      return new FailoverSender.Endpoint(ep.getString("host"), ep.getInteger("port"));
    } catch (IOException e) {
      throw new UncheckedIOException("no endpoint of " + node, e);
    }
  }

  /** The front doors of every node of {@code home} that has one. */
  static List<FailoverSender.Endpoint> endpoints(Path home, String... nodes) {
    List<FailoverSender.Endpoint> out = new ArrayList<>();
    for (String n : nodes) {
      out.add(endpoint(home, n));
    }
    return out;
  }
}
