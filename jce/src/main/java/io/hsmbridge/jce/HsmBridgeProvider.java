package io.hsmbridge.jce;

import io.hsmbridge.client.HsmClient;
import java.nio.file.Path;
import java.security.Provider;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The JCA/JCE provider whose keys live in an hsmbridge cluster, registered as {@value #NAME}.
 *
 * <pre>
 * Provider p = new HsmBridgeProvider(JceConfig.load(Path.of("/etc/hsmbridge/jce.properties")));
 * Security.addProvider(p);
 * KeyStore ks = KeyStore.getInstance("HsmBridge");
 * ks.load(null, null);                                  // the store is the cluster
 * PrivateKey key = (PrivateKey) ks.getKey("web-tls", null);
 * Signature s = Signature.getInstance("SHA256withECDSA"); // the JDK picks this provider for the handle
 * </pre>
 *
 * <p>Every service accepts this provider's key handles only ({@link HsmKey}; attribute
 * {@code SupportedKeyClasses}), so adding the provider at the end of the list changes nothing for
 * ordinary keys, and the JDK's delayed provider selection brings a handle here. Public-key work (verifying,
 * encrypting to a public key) runs in the JVM with the pair's {@link HsmPrivateKey#publicKey()}.
 *
 * <p>The provider connects and logs in at first use, with the configuration given, or the one of the
 * system properties {@code hsmbridge.jce.*} (see {@link JceConfig}); {@link #configure(String)} takes a
 * configuration file as {@code java.security} allows ({@code security.provider.N=HsmBridge /path}).
 */
public final class HsmBridgeProvider extends Provider {
  private static final long serialVersionUID = 1L;
  public static final String NAME = "HsmBridge";
  private static final String KEY_CLASSES = HsmKey.class.getName();

  private final transient JceConfig config;
  private transient HsmClient client;

  /** A provider configured from system properties at first use ({@link JceConfig#fromSystemProperties()}). */
  public HsmBridgeProvider() {
    this(null);
  }

  /** A provider for the cluster and user of {@code config}. */
  public HsmBridgeProvider(JceConfig config) {
    super(NAME, "0.1", "hsmbridge: KeyStore, Signature, Cipher, Mac, KeyGenerator, KeyPairGenerator and SecureRandom"
        + " with keys that stay in an HSM cluster");
    this.config = config;
    register();
  }

  /**
   * A new provider configured by the file {@code configArg} (a {@link JceConfig#load(Path)} file); this one is
   * left as it was. Typed as this class, so that {@link #logins()} and {@link #logout()} are at hand.
   */
  @Override
  public HsmBridgeProvider configure(String configArg) {
    return new HsmBridgeProvider(JceConfig.load(Path.of(configArg)));
  }

  @Override
  public boolean isConfigured() {
    return config != null || System.getProperty(JceConfig.SYSTEM_PREFIX + "endpoints") != null
        || System.getProperty(JceConfig.CONFIG_FILE_PROPERTY) != null;
  }

  /**
   * The provider's typed client: one logged-in connection, made at first use, shared by the engines of every
   * thread; it fails over, retries and logs in again by itself ({@link HsmClient}).
   */
  synchronized HsmClient client() {
    if (client == null) {
      client = HsmClient.connect((config != null ? config : JceConfig.fromSystemProperties()).clientOptions());
    }
    return client;
  }

  /**
   * How many times the provider logged in since it connected (or since {@link #logout()}): 1 after first use;
   * more when sessions ended (expiry, logout elsewhere, a password change) and it logged in again by itself.
   * A host's failure or restart costs no login: sessions are cluster state. 0 before first use.
   */
  public synchronized long logins() {
    return client == null ? 0 : client.logins();
  }

  /** Logs the provider's session out and closes its connection; the next use connects and logs in again. */
  public synchronized void logout() {
    if (client != null) {
      client.close();
      client = null;
    }
  }

  private void register() {
    for (SignatureEngine.Variant v : SignatureEngine.Variant.values()) {
      service("Signature", v.jcaName(), v.aliases(), p -> new SignatureEngine(p, v));
    }
    for (CipherEngine.Mode m : CipherEngine.Mode.values()) {
      service("Cipher", m.transformation(), m.aliases(), p -> new CipherEngine(p, m));
    }
    service("Mac", "HmacSHA256", List.of(), p -> new MacEngine(p, "HmacSHA256"));
    // Named so that asking for them here says why they cannot work (the cluster's HMAC keys are HMAC_SHA256 keys).
    service("Mac", "HmacSHA384", List.of(), p -> new MacEngine(p, "HmacSHA384"));
    service("Mac", "HmacSHA512", List.of(), p -> new MacEngine(p, "HmacSHA512"));
    service("KeyGenerator", "AES", List.of(), p -> new SecretKeyGenerator(p, "AES"));
    service("KeyGenerator", "HmacSHA256", List.of(), p -> new SecretKeyGenerator(p, "HmacSHA256"));
    service("KeyPairGenerator", "RSA", List.of(), p -> new PairGenerator(p, "RSA"));
    service("KeyPairGenerator", "EC", List.of(), p -> new PairGenerator(p, "EC"));
    service("KeyPairGenerator", "Ed25519", List.of("EdDSA"), p -> new PairGenerator(p, "Ed25519"));
    service("SecureRandom", "HsmBridgeRNG", List.of(), p -> new RandomEngine(p));
    service("KeyStore", NAME, List.of(), p -> new ClusterKeyStore(p));
  }

  private void service(String type, String algorithm, List<String> aliases, Function<HsmBridgeProvider, Object> make) {
    Map<String, String> attributes = type.equals("SecureRandom") ? Map.of("ThreadSafe", "true")
        : type.equals("KeyStore") || type.endsWith("Generator") ? Map.of() : Map.of("SupportedKeyClasses", KEY_CLASSES);
    putService(new EngineService(this, type, algorithm, aliases, attributes, make));
  }

  /** A service whose engines get this provider (and through it the connection). */
  private static final class EngineService extends Service {
    private final transient Function<HsmBridgeProvider, Object> make;

    EngineService(HsmBridgeProvider p, String type, String algorithm, List<String> aliases,
        Map<String, String> attributes, Function<HsmBridgeProvider, Object> make) {
      super(p, type, algorithm, EngineService.class.getName(), aliases, attributes);
      this.make = make;
    }

    @Override
    public Object newInstance(Object constructorParameter) {
      return make.apply((HsmBridgeProvider) getProvider());
    }
  }
}
