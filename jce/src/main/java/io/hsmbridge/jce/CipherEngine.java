package io.hsmbridge.jce;

import io.hsmbridge.client.Ciphertext;
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
import java.security.Key;
import java.security.NoSuchAlgorithmException;
import java.security.ProviderException;
import java.security.SecureRandom;
import java.security.interfaces.RSAKey;
import java.security.spec.AlgorithmParameterSpec;
import java.security.spec.InvalidParameterSpecException;
import java.security.spec.MGF1ParameterSpec;
import java.util.Arrays;
import java.util.List;
import javax.crypto.AEADBadTagException;
import javax.crypto.BadPaddingException;
import javax.crypto.Cipher;
import javax.crypto.CipherSpi;
import javax.crypto.IllegalBlockSizeException;
import javax.crypto.NoSuchPaddingException;
import javax.crypto.ShortBufferException;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.OAEPParameterSpec;
import javax.crypto.spec.PSource;

/**
 * {@code Cipher} with a cluster key. Input is gathered and sent in one request at {@code doFinal}
 * ({@code update} returns nothing). As in CloudHSM, the HSM chooses the IV of every encryption: init for
 * encryption without parameters and read {@code getIV()} (or {@code getParameters()}) after {@code doFinal};
 * decryption takes the IV as usual. RSA-OAEP decrypts with the private handle in the HSM; encrypting to the
 * public key runs in the JVM (this engine hands it to the JDK when given a public key).
 */
final class CipherEngine extends CipherSpi {
  /** The transformations, with the cluster's algorithm for each. */
  enum Mode {
    AES_GCM("AES/GCM/NoPadding", List.of(), Algorithm.AES_GCM),
    AES_CBC("AES/CBC/PKCS5Padding", List.of("AES/CBC/PKCS7Padding"), Algorithm.AES_CBC_PAD),
    RSA_OAEP("RSA/ECB/OAEPWithSHA-1AndMGF1Padding", List.of("RSA/ECB/OAEPPadding", "RSA/NONE/OAEPWithSHA-1AndMGF1Padding"),
        Algorithm.RSA_OAEP);

    private final String transformation;
    private final List<String> aliases;
    private final Algorithm algorithm;

    Mode(String transformation, List<String> aliases, Algorithm algorithm) {
      this.transformation = transformation;
      this.aliases = aliases;
      this.algorithm = algorithm;
    }

    String transformation() {
      return transformation;
    }

    List<String> aliases() {
      return aliases;
    }
  }

  private static final int GCM_IV_BYTES = 12;
  private static final int GCM_TAG_BITS = 128;
  private static final int AES_BLOCK = 16;

  private final HsmBridgeProvider provider;
  private final Mode mode;
  private final ByteArrayOutputStream input = new ByteArrayOutputStream();
  private final ByteArrayOutputStream aad = new ByteArrayOutputStream();
  private int opmode;
  private HsmKey key;
  /** Decryption: the IV given; encryption: the IV the HSM chose for the last doFinal (null before it). */
  private byte[] iv;
  /** Set when a public key was given for RSA-OAEP encryption: the JDK's engine that does it. */
  private Cipher publicKeyCipher;

  CipherEngine(HsmBridgeProvider provider, Mode mode) {
    this.provider = provider;
    this.mode = mode;
  }

  @Override
  protected void engineSetMode(String m) throws NoSuchAlgorithmException {
    if (!mode.transformation.split("/")[1].equalsIgnoreCase(m)) {
      throw new NoSuchAlgorithmException("this engine is " + mode.transformation);
    }
  }

  @Override
  protected void engineSetPadding(String padding) throws NoSuchPaddingException {
    if (!mode.transformation.split("/")[2].equalsIgnoreCase(padding)) {
      throw new NoSuchPaddingException("this engine is " + mode.transformation);
    }
  }

  @Override
  protected int engineGetBlockSize() {
    return mode == Mode.RSA_OAEP ? 0 : AES_BLOCK;
  }

  @Override
  protected int engineGetOutputSize(int inputLen) {
    int total = input.size() + Math.max(0, inputLen);
    if (mode == Mode.RSA_OAEP) {
      return key instanceof RSAKey r ? (r.getModulus().bitLength() + 7) / 8 : total;
    }
    if (opmode == Cipher.DECRYPT_MODE) {
      return total;
    }
    return mode == Mode.AES_GCM ? total + GCM_TAG_BITS / 8 : (total / AES_BLOCK + 1) * AES_BLOCK;
  }

  @Override
  protected byte[] engineGetIV() {
    return iv == null ? null : iv.clone();
  }

  @Override
  protected AlgorithmParameters engineGetParameters() {
    try {
      switch (mode) {
        case AES_GCM:
          return iv == null ? null : parameters("GCM", new GCMParameterSpec(GCM_TAG_BITS, iv));
        case AES_CBC:
          return iv == null ? null : parameters("AES", new IvParameterSpec(iv));
        default:
          return parameters("OAEP", oaepSha1());
      }
    } catch (GeneralSecurityException e) {
      throw new ProviderException("the JDK cannot encode " + mode.transformation + " parameters", e);
    }
  }

  private static AlgorithmParameters parameters(String name, AlgorithmParameterSpec spec)
      throws GeneralSecurityException {
    AlgorithmParameters p = AlgorithmParameters.getInstance(name);
    p.init(spec);
    return p;
  }

  private static OAEPParameterSpec oaepSha1() {
    return new OAEPParameterSpec("SHA-1", "MGF1", MGF1ParameterSpec.SHA1, PSource.PSpecified.DEFAULT);
  }

  @Override
  protected void engineInit(int opmode, Key key, SecureRandom random) throws InvalidKeyException {
    try {
      engineInit(opmode, key, (AlgorithmParameterSpec) null, random);
    } catch (InvalidAlgorithmParameterException e) {
      throw new InvalidKeyException(e.getMessage(), e);
    }
  }

  @Override
  protected void engineInit(int opmode, Key key, AlgorithmParameters params, SecureRandom random)
      throws InvalidKeyException, InvalidAlgorithmParameterException {
    AlgorithmParameterSpec spec = null;
    if (params != null) {
      try {
        Class<? extends AlgorithmParameterSpec> type = mode == Mode.AES_GCM ? GCMParameterSpec.class
            : mode == Mode.AES_CBC ? IvParameterSpec.class : OAEPParameterSpec.class;
        spec = params.getParameterSpec(type);
      } catch (InvalidParameterSpecException e) {
        throw new InvalidAlgorithmParameterException("not " + mode.transformation + " parameters: " + e.getMessage(), e);
      }
    }
    engineInit(opmode, key, spec, random);
  }

  @Override
  protected void engineInit(int opmode, Key key, AlgorithmParameterSpec params, SecureRandom random)
      throws InvalidKeyException, InvalidAlgorithmParameterException {
    if (opmode != Cipher.ENCRYPT_MODE && opmode != Cipher.DECRYPT_MODE) {
      throw new InvalidParameterException(mode.transformation + " here encrypts and decrypts (ENCRYPT_MODE,"
          + " DECRYPT_MODE); to move keys between HSMs use the cluster's key wrap and import");
    }
    input.reset();
    aad.reset();
    publicKeyCipher = null;
    this.key = null;
    this.opmode = opmode;
    if (mode == Mode.RSA_OAEP && opmode == Cipher.ENCRYPT_MODE) {
      initPublicKeyEncryption(key, params, random);
      return;
    }
    KeySpec.Family family = mode == Mode.RSA_OAEP ? KeySpec.Family.RSA : KeySpec.Family.AES;
    HsmKey k = Engines.handle(key, family, KeyUsage.ENCRYPT_DECRYPT,
        (opmode == Cipher.ENCRYPT_MODE ? "encrypt" : "decrypt") + " with " + mode.transformation);
    iv = opmode == Cipher.ENCRYPT_MODE ? encryptionParameters(params) : decryptionIv(params);
    this.key = k;
  }

  private void initPublicKeyEncryption(Key key, AlgorithmParameterSpec params, SecureRandom random)
      throws InvalidKeyException, InvalidAlgorithmParameterException {
    Key publicKey = key instanceof HsmPrivateKey h ? h.publicKey() : key;
    if (params != null) {
      requireOaepSha1(params);
    }
    try {
      Cipher c = Cipher.getInstance("RSA/ECB/OAEPWithSHA-1AndMGF1Padding");
      c.init(Cipher.ENCRYPT_MODE, publicKey, oaepSha1(), random);
      publicKeyCipher = c;
    } catch (GeneralSecurityException e) {
      throw new InvalidKeyException("RSA-OAEP encryption runs in the JVM with the public key; no JDK provider took"
          + " this one: " + e.getMessage(), e);
    }
  }

  /** Encryption takes no IV: the HSM chooses it. */
  private byte[] encryptionParameters(AlgorithmParameterSpec params) throws InvalidAlgorithmParameterException {
    if (params != null && mode != Mode.RSA_OAEP) {
      throw new InvalidAlgorithmParameterException("the HSM chooses the IV of every " + mode.transformation
          + " encryption (a caller's IV could repeat): init without parameters and read getIV() after doFinal");
    }
    return null;
  }

  private byte[] decryptionIv(AlgorithmParameterSpec params) throws InvalidAlgorithmParameterException {
    switch (mode) {
      case AES_GCM:
        if (!(params instanceof GCMParameterSpec g) || g.getTLen() != GCM_TAG_BITS || g.getIV().length != GCM_IV_BYTES) {
          throw new InvalidAlgorithmParameterException("AES/GCM decryption needs GCMParameterSpec(128, iv) with the"
              + " 12-byte IV the encryption returned");
        }
        return g.getIV();
      case AES_CBC:
        if (!(params instanceof IvParameterSpec i) || i.getIV().length != AES_BLOCK) {
          throw new InvalidAlgorithmParameterException("AES/CBC decryption needs IvParameterSpec with the 16-byte IV"
              + " the encryption returned");
        }
        return i.getIV();
      default:
        if (params != null) {
          requireOaepSha1(params);
        }
        return null;
    }
  }

  private static void requireOaepSha1(AlgorithmParameterSpec params) throws InvalidAlgorithmParameterException {
    if (!(params instanceof OAEPParameterSpec o) || !o.getDigestAlgorithm().replace("-", "").equalsIgnoreCase("SHA1")
        || !(o.getMGFParameters() instanceof MGF1ParameterSpec m) || !m.getDigestAlgorithm().replace("-", "")
            .equalsIgnoreCase("SHA1")
        || !(o.getPSource() instanceof PSource.PSpecified p) || p.getValue().length != 0) {
      throw new InvalidAlgorithmParameterException("the cluster does RSA-OAEP with SHA-1, MGF1-SHA-1 and no label"
          + " only (OAEPWithSHA-1AndMGF1Padding)");
    }
  }

  @Override
  protected void engineUpdateAAD(byte[] src, int offset, int len) {
    if (mode != Mode.AES_GCM) {
      throw new IllegalStateException("additional authenticated data is for AES/GCM only");
    }
    if (input.size() > 0) {
      throw new IllegalStateException("AAD comes before the data (updateAAD before update)");
    }
    Engines.append(aad, src, offset, len);
  }

  @Override
  protected byte[] engineUpdate(byte[] in, int offset, int len) {
    if (publicKeyCipher != null) {
      return publicKeyCipher.update(in, offset, len);
    }
    requireInit();
    Engines.append(input, in, offset, len);
    return new byte[0];
  }

  @Override
  protected int engineUpdate(byte[] in, int offset, int len, byte[] out, int outOffset) {
    engineUpdate(in, offset, len);
    return 0;
  }

  @Override
  protected byte[] engineDoFinal(byte[] in, int offset, int len) throws IllegalBlockSizeException, BadPaddingException {
    if (publicKeyCipher != null) {
      return publicKeyCipher.doFinal(in, offset, len);
    }
    requireInit();
    if (in != null) {
      Engines.append(input, in, offset, len);
    }
    byte[] data = input.toByteArray();
    byte[] additional = aad.size() == 0 ? null : aad.toByteArray();
    input.reset();
    aad.reset();
    String keyId = key.keyId();
    String alg = mode.algorithm.wireName();
    try {
      if (opmode == Cipher.ENCRYPT_MODE) {
        Ciphertext c = provider.client().call(h -> h.encrypt(keyId, alg, data, additional));
        iv = c.iv();
        return c.ciphertext();
      }
      byte[] decryptionIv = iv;
      return provider.client().call(h -> h.decrypt(keyId, alg, data, decryptionIv, additional));
    } catch (HsmBridgeException e) {
      throw translate(e, keyId);
    } finally {
      Arrays.fill(data, (byte) 0);
    }
  }

  private RuntimeException translate(HsmBridgeException e, String keyId) throws BadPaddingException,
      IllegalBlockSizeException {
    String what = mode.transformation + " with key " + keyId;
    if (e.code() == ErrorCode.CRYPTO_FAILURE && opmode == Cipher.DECRYPT_MODE) {
      if (mode == Mode.AES_GCM) {
        AEADBadTagException bad = new AEADBadTagException(what + ": the tag does not match (wrong key, IV, AAD, or"
            + " altered ciphertext)");
        bad.initCause(e);
        throw bad;
      }
      BadPaddingException bad = new BadPaddingException(what + ": " + e.getMessage());
      bad.initCause(e);
      throw bad;
    }
    if (e.code() == ErrorCode.INPUT_TOO_LARGE || e.code() == ErrorCode.INVALID_PARAMETER) {
      IllegalBlockSizeException bad = new IllegalBlockSizeException(what + ": " + e.getMessage());
      bad.initCause(e);
      throw bad;
    }
    return Engines.failure(what, e);
  }

  @Override
  protected int engineDoFinal(byte[] in, int offset, int len, byte[] out, int outOffset)
      throws ShortBufferException, IllegalBlockSizeException, BadPaddingException {
    int needed = engineGetOutputSize(len);
    if (out.length - outOffset < needed && publicKeyCipher == null && opmode == Cipher.ENCRYPT_MODE) {
      throw new ShortBufferException(needed + " bytes of output are needed");
    }
    byte[] result = engineDoFinal(in, offset, len);
    if (out.length - outOffset < result.length) {
      throw new ShortBufferException(result.length + " bytes of output are needed; the result is lost, init again");
    }
    System.arraycopy(result, 0, out, outOffset, result.length);
    return result.length;
  }

  @Override
  protected int engineGetKeySize(Key key) throws InvalidKeyException {
    if (key instanceof HsmKey h) {
      return h.spec().bits();
    }
    throw new InvalidKeyException("not a cluster key");
  }

  private void requireInit() {
    if (key == null) {
      throw new IllegalStateException("the cipher is not initialised");
    }
  }
}
