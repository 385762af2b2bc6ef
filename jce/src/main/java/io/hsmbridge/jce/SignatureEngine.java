package io.hsmbridge.jce;

import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.io.ByteArrayOutputStream;
import java.security.AlgorithmParameters;
import java.security.GeneralSecurityException;
import java.security.InvalidAlgorithmParameterException;
import java.security.InvalidKeyException;
import java.security.InvalidParameterException;
import java.security.PrivateKey;
import java.security.ProviderException;
import java.security.PublicKey;
import java.security.Signature;
import java.security.SignatureException;
import java.security.SignatureSpi;
import java.security.spec.AlgorithmParameterSpec;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.util.List;

/**
 * {@code Signature} with a cluster key: the message is gathered here and signed by an HSM in one request
 * ({@code sign}, hash and signature inside the token). Verifying runs in the JVM with any provider's
 * public key: {@code initVerify} hands the work to the JDK.
 */
final class SignatureEngine extends SignatureSpi {
  /** The signature algorithms, by JCA name. RSASSA-PSS takes its hash from its parameters. */
  enum Variant {
    SHA256_RSA("SHA256withRSA", List.of(), Algorithm.RSA_PKCS1_SHA256),
    SHA384_RSA("SHA384withRSA", List.of(), Algorithm.RSA_PKCS1_SHA384),
    SHA512_RSA("SHA512withRSA", List.of(), Algorithm.RSA_PKCS1_SHA512),
    RSA_PSS("RSASSA-PSS", List.of("PSS"), null),
    SHA256_ECDSA("SHA256withECDSA", List.of(), Algorithm.ECDSA_SHA256),
    SHA384_ECDSA("SHA384withECDSA", List.of(), Algorithm.ECDSA_SHA384),
    SHA512_ECDSA("SHA512withECDSA", List.of(), Algorithm.ECDSA_SHA512),
    ED25519("Ed25519", List.of("EdDSA"), Algorithm.ED25519);

    private final String jcaName;
    private final List<String> aliases;
    private final Algorithm fixed;

    Variant(String jcaName, List<String> aliases, Algorithm fixed) {
      this.jcaName = jcaName;
      this.aliases = aliases;
      this.fixed = fixed;
    }

    String jcaName() {
      return jcaName;
    }

    List<String> aliases() {
      return aliases;
    }

    KeySpec.Family family() {
      return this == RSA_PSS ? KeySpec.Family.RSA : fixed.family();
    }
  }

  private final HsmBridgeProvider provider;
  private final Variant variant;
  private final ByteArrayOutputStream message = new ByteArrayOutputStream();
  /** The cluster's algorithm; for RSASSA-PSS null until parameters are set. */
  private Algorithm algorithm;
  private PSSParameterSpec pssParameters;
  private HsmKey key;
  /** Set by initVerify: the JDK's engine that verifies. */
  private Signature verifier;

  SignatureEngine(HsmBridgeProvider provider, Variant variant) {
    this.provider = provider;
    this.variant = variant;
    this.algorithm = variant.fixed;
  }

  @Override
  protected void engineInitSign(PrivateKey privateKey) throws InvalidKeyException {
    HsmKey k = Engines.handle(privateKey, variant.family(), KeyUsage.SIGN_VERIFY, "sign " + variant.jcaName);
    key = k;
    verifier = null;
    message.reset();
  }

  @Override
  protected void engineInitVerify(PublicKey publicKey) throws InvalidKeyException {
    try {
      Signature s = Signature.getInstance(variant.jcaName);
      if (pssParameters != null) {
        s.setParameter(pssParameters);
      }
      s.initVerify(publicKey);
      verifier = s;
      key = null;
    } catch (GeneralSecurityException e) {
      throw new InvalidKeyException("verifying " + variant.jcaName + " runs in the JVM with the public key; no JDK"
          + " provider took this one: " + e.getMessage(), e);
    }
  }

  @Override
  protected void engineUpdate(byte b) throws SignatureException {
    engineUpdate(new byte[] {b}, 0, 1);
  }

  @Override
  protected void engineUpdate(byte[] b, int off, int len) throws SignatureException {
    if (verifier != null) {
      verifier.update(b, off, len);
      return;
    }
    requireSigning();
    try {
      Engines.append(message, b, off, len);
    } catch (ProviderException e) {
      throw new SignatureException(e.getMessage());
    }
  }

  @Override
  protected byte[] engineSign() throws SignatureException {
    requireSigning();
    if (algorithm == null) {
      throw new SignatureException("RSASSA-PSS needs its parameters: setParameter(new PSSParameterSpec(\"SHA-256\","
          + " \"MGF1\", MGF1ParameterSpec.SHA256, 32, 1)) (or SHA-384/48, SHA-512/64)");
    }
    byte[] m = message.toByteArray();
    message.reset();
    String keyId = key.keyId();
    try {
      return provider.client().call(h -> h.sign(keyId, algorithm.wireName(), m));
    } catch (HsmBridgeException e) {
      if (e.code() == ErrorCode.WRONG_KEY_TYPE || e.code() == ErrorCode.INVALID_PARAMETER
          || e.code() == ErrorCode.CRYPTO_FAILURE || e.code() == ErrorCode.INPUT_TOO_LARGE) {
        throw new SignatureException(variant.jcaName + " with key " + keyId + ": " + e.getMessage(), e);
      }
      throw Engines.failure(variant.jcaName + " with key " + keyId, e);
    }
  }

  @Override
  protected boolean engineVerify(byte[] sigBytes) throws SignatureException {
    if (verifier == null) {
      throw new SignatureException("not initialised for verifying: initVerify with the public key");
    }
    return verifier.verify(sigBytes);
  }

  private void requireSigning() throws SignatureException {
    if (key == null) {
      throw new SignatureException("not initialised: initSign with a cluster key, or initVerify with a public key");
    }
  }

  @Override
  protected void engineSetParameter(AlgorithmParameterSpec params) throws InvalidAlgorithmParameterException {
    if (variant != Variant.RSA_PSS) {
      if (params != null) {
        throw new InvalidAlgorithmParameterException(variant.jcaName + " takes no parameters");
      }
      return;
    }
    if (!(params instanceof PSSParameterSpec pss)) {
      throw new InvalidAlgorithmParameterException("RSASSA-PSS takes a PSSParameterSpec");
    }
    algorithm = pssAlgorithm(pss);
    pssParameters = pss;
    if (verifier != null) {
      verifier.setParameter(pss);
    }
  }

  /** The cluster's PSS algorithm for the parameters: MGF1 with the message's hash, salt as long as the hash. */
  private static Algorithm pssAlgorithm(PSSParameterSpec pss) throws InvalidAlgorithmParameterException {
    String hash = pss.getDigestAlgorithm().replace("-", "").toUpperCase(java.util.Locale.ROOT);
    Algorithm a = switch (hash) {
      case "SHA256" -> Algorithm.RSA_PSS_SHA256;
      case "SHA384" -> Algorithm.RSA_PSS_SHA384;
      case "SHA512" -> Algorithm.RSA_PSS_SHA512;
      default -> null;
    };
    int hashBytes = a == null ? 0 : Integer.parseInt(hash.substring(3)) / 8;
    boolean mgf1SameHash = "MGF1".equalsIgnoreCase(pss.getMGFAlgorithm())
        && pss.getMGFParameters() instanceof MGF1ParameterSpec mgf
        && mgf.getDigestAlgorithm().replace("-", "").equalsIgnoreCase(hash);
    if (a == null || !mgf1SameHash || pss.getSaltLength() != hashBytes || pss.getTrailerField() != 1) {
      throw new InvalidAlgorithmParameterException("the cluster signs RSASSA-PSS with SHA-256, SHA-384 or SHA-512,"
          + " MGF1 of the same hash and a salt as long as the hash (32, 48, 64 bytes); asked: "
          + pss.getDigestAlgorithm() + ", " + pss.getMGFAlgorithm() + ", salt " + pss.getSaltLength());
    }
    return a;
  }

  @Override
  protected AlgorithmParameters engineGetParameters() {
    if (pssParameters == null) {
      return null;
    }
    try {
      AlgorithmParameters p = AlgorithmParameters.getInstance("RSASSA-PSS");
      p.init(pssParameters);
      return p;
    } catch (GeneralSecurityException e) {
      throw new ProviderException("the JDK has no RSASSA-PSS parameters", e);
    }
  }

  @Override
  @Deprecated
  protected void engineSetParameter(String param, Object value) {
    throw new InvalidParameterException("use setParameter(AlgorithmParameterSpec)");
  }

  @Override
  @Deprecated
  protected Object engineGetParameter(String param) {
    throw new InvalidParameterException("use getParameters()");
  }
}
