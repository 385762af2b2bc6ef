package io.hsmbridge.examples;

import io.hsmbridge.client.Aead;
import io.hsmbridge.client.Ciphertext;
import io.hsmbridge.client.HsmClient;
import io.hsmbridge.client.KeyHandle;
import io.hsmbridge.client.Signer;
import io.hsmbridge.jce.HsmBridgeProvider;
import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.agent.membership.ApplicationMember;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;
import io.hsmbridge.jce.HsmKeyGenParameterSpec;
import java.math.BigInteger;
import java.net.InetAddress;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.Security;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.Date;
import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;

/**
 * The examples of docs/java.md, written as an application would (public API only). The text between
 * {@code // docs:start NAME} and {@code // docs:end NAME} is what the guide shows under {@code <!-- snippet:
 * NAME -->}; {@code JavaGuideTest} checks that the two are the same and runs every example on a real cluster.
 */
public final class JavaGuideExamples {
  private JavaGuideExamples() {}

  /** Registers the provider configured by {@code configFile}. */
  public static Provider register(Path configFile) {
    // docs:start register
    HsmBridgeProvider provider = new HsmBridgeProvider().configure(configFile.toString()); // a new, configured one
    Security.addProvider(provider); // at the end of the list: the JDK brings cluster keys to it
    // docs:end register
    return provider;
  }

  /** Makes an EC key pair in the cluster and signs {@code message} with the key found in the KeyStore. */
  public static KeyPair makeAndSign(byte[] message, byte[][] signatureOut) throws Exception {
    // docs:start sign
    KeyPairGenerator generator = KeyPairGenerator.getInstance("EC", "HsmBridge");
    generator.initialize(new HsmKeyGenParameterSpec("payments-signer", 256)); // P-256, label = alias
    KeyPair pair = generator.generateKeyPair(); // the private key never leaves the HSMs

    KeyStore keys = KeyStore.getInstance("HsmBridge");
    keys.load(null, null); // the store is the cluster: no file, no password
    PrivateKey signingKey = (PrivateKey) keys.getKey("payments-signer", null);

    Signature signer = Signature.getInstance("SHA256withECDSA"); // the JDK picks HsmBridge for this key
    signer.initSign(signingKey);
    signer.update(message);
    byte[] signature = signer.sign(); // DER, verifiable by any JCA provider with pair.getPublic()
    // docs:end sign
    signatureOut[0] = signature;
    return pair;
  }

  /** Encrypts {@code plaintext} under a new AES key in the cluster, then decrypts it. */
  public static byte[] encryptAndDecrypt(byte[] plaintext, byte[] aad) throws Exception {
    // docs:start aes
    KeyGenerator aes = KeyGenerator.getInstance("AES", "HsmBridge");
    aes.init(new HsmKeyGenParameterSpec("orders-db", 256).withRequestId("orders-db-key-v1")); // safe to retry
    SecretKey key = aes.generateKey();

    Cipher encrypt = Cipher.getInstance("AES/GCM/NoPadding");
    encrypt.init(Cipher.ENCRYPT_MODE, key); // no IV: the HSM chooses it
    encrypt.updateAAD(aad);
    byte[] ciphertext = encrypt.doFinal(plaintext); // ciphertext || 16-byte tag
    byte[] iv = encrypt.getIV(); // the HSM's IV, known after doFinal: store it with the ciphertext

    Cipher decrypt = Cipher.getInstance("AES/GCM/NoPadding");
    decrypt.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, iv));
    decrypt.updateAAD(aad);
    byte[] opened = decrypt.doFinal(ciphertext); // AEADBadTagException when anything was changed
    // docs:end aes
    return opened;
  }

  /** Signs a CSR and a self-signed certificate with the key labelled {@code alias}; stores the certificate with it. */
  public static X509Certificate csrAndCertificate(String alias) throws Exception {
    KeyStore keys = KeyStore.getInstance("HsmBridge");
    keys.load(null, null);
    PrivateKey key = (PrivateKey) keys.getKey(alias, null);
    java.security.PublicKey publicKey = ((io.hsmbridge.jce.HsmPrivateKey) key).publicKey();
    // docs:start csr
    ContentSigner signer = new JcaContentSignerBuilder("SHA256withECDSA").setProvider("HsmBridge").build(key);
    PKCS10CertificationRequest csr =
        new JcaPKCS10CertificationRequestBuilder(new X500Name("CN=payments.example.com"), publicKey).build(signer);
    byte[] toSendToYourCa = csr.getEncoded();

    // Or a self-signed certificate, e.g. for tests:
    long now = System.currentTimeMillis();
    X509Certificate certificate = new JcaX509CertificateConverter().getCertificate(
        new JcaX509v3CertificateBuilder(new X500Name("CN=payments.example.com"), BigInteger.valueOf(now),
            new Date(now), new Date(now + 365L * 86_400_000), new X500Name("CN=payments.example.com"), publicKey)
            .build(signer));

    // The chain is stored beside the key in the cluster, on every HSM: TLS servers anywhere find it there.
    keys.setKeyEntry(alias, key, null, new Certificate[] {certificate});
    // docs:end csr
    if (toSendToYourCa.length == 0) {
      throw new IllegalStateException("empty CSR");
    }
    return certificate;
  }

  /** The typed client: a signer and an AEAD; returns the signature of {@code message}, checked by the JDK. */
  public static byte[] typedClient(String endpoint, Path caPem, Supplier<char[]> passwordSource, byte[] message)
      throws Exception {
    // docs:start typed
    try (HsmClient hsm = HsmClient.connect(HsmClient.options()
        .endpoints(endpoint) // host:port of any front door; more may follow, the others are learnt
        .ca(caPem)
        .user("alice")
        .password(passwordSource))) { // asked at each login: the first, and after a session ended
      KeyHandle key = hsm.keys().generate(KeySpec.EC_P256, "typed-signer");
      Signer signer = key.signer(Algorithm.ECDSA_SHA256);
      byte[] signature = signer.sign(message); // DER; key.publicKey() verifies it in the JVM

      Aead aead = hsm.keys().generate(KeySpec.AES_256, "typed-data").aead();
      Ciphertext sealed = aead.encrypt(message, null); // sealed.iv() is the HSM's IV
      byte[] opened = aead.decrypt(sealed, null);
      // docs:end typed
      Signature jdk = Signature.getInstance("SHA256withECDSA", "SunEC");
      jdk.initVerify(key.publicKey());
      jdk.update(opened);
      if (!jdk.verify(signature)) {
        throw new IllegalStateException("the signature does not verify");
      }
      return signature;
    }
  }

  /** Signs on a Vert.x context; the future completes on that same context. */
  public static CompletableFuture<Boolean> signOnContext(Context context, Signer signer, byte[] message) {
    CompletableFuture<Boolean> sameContext = new CompletableFuture<>();
    // docs:start vertx
    context.runOnContext(v -> signer.signAsync(message).whenComplete((signature, failure) -> {
      // Back on the caller's context (event loop or worker): the verticle's state is safe to touch here.
      sameContext.complete(failure == null && io.vertx.core.Vertx.currentContext() == context);
    }));
    // docs:end vertx
    return sameContext;
  }

  /**
   * A Vert.x application that is a member of the cluster: joins with the properties {@code cluster member-cert}
   * wrote, and signs {@code message} over the cluster's event bus; returns the signature.
   */
  public static byte[] eventBusClient(Path memberProperties, Supplier<char[]> passwordSource, byte[] message)
      throws Exception {
    // docs:start eventbus
    Vertx vertx = ApplicationMember.join(memberProperties, new VertxOptions()) // a member of the cluster
        .toCompletionStage().toCompletableFuture().get(60, TimeUnit.SECONDS);
    try (HsmClient hsm = HsmClient.connect(HsmClient.options()
        .eventBus(vertx) // no endpoints, no CA: the event bus is the cluster's own mutual-TLS link
        .memberLeft(action -> ApplicationMember.onMemberLeft(vertx, action)) // resend at once when a host dies
        .user("alice")
        .password(passwordSource))) {
      Signer signer = hsm.keys().generate(KeySpec.EC_P256, "bus-signer").signer(Algorithm.ECDSA_SHA256);
      return signer.sign(message);
    } finally {
      vertx.close(); // the application's Vert.x: the client never closes it
    }
    // docs:end eventbus
  }

  /** A TLS server socket on loopback whose key (and chain) are the cluster's. */
  public static SSLServerSocket tlsServer() throws Exception {
    // docs:start tls
    KeyStore keys = KeyStore.getInstance("HsmBridge");
    keys.load(null, null);
    KeyManagerFactory keyManagers = KeyManagerFactory.getInstance("SunX509");
    keyManagers.init(keys, new char[0]); // key pairs that have a certificate chain in the cluster
    SSLContext tls = SSLContext.getInstance("TLS");
    tls.init(keyManagers.getKeyManagers(), null, null);
    SSLServerSocket server = (SSLServerSocket) tls.getServerSocketFactory()
        .createServerSocket(0, 50, InetAddress.getLoopbackAddress());
    // docs:end tls
    return server;
  }
}
