package io.hsmbridge.cli;

import io.hsmbridge.client.Ciphertext;
import io.hsmbridge.client.Hsm;
import io.hsmbridge.client.HsmBridgeException;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import io.vertx.core.json.JsonObject;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javax.crypto.Cipher;

/**
 * The checks of {@code hsmbridge demo}: every key spec, every family's operations, and what can be
 * checked independently is checked with the JDK's own crypto (signatures verified with the public
 * key, RSA-OAEP ciphertext produced by the JDK). One line per check: {@code ok   <what>} or
 * {@code FAIL <what>: <why>}.
 */
final class DemoTour {
  private static final byte[] MESSAGE = "hsmbridge demo: the quick brown fox".getBytes(StandardCharsets.UTF_8);
  private static final byte[] AAD = "demo-aad".getBytes(StandardCharsets.UTF_8);

  private final Hsm hsm;
  private final PrintStream out;
  private final List<String> keys = new ArrayList<>();
  private int passed;
  private int failed;
  private boolean nodeGone;

  /** A check's body; returns an optional detail for the "ok" line. */
  @FunctionalInterface
  interface Check {
    String run() throws Exception;
  }

  /** A failed expectation (as opposed to an error from the HSM or the JDK). */
  static final class Failure extends Exception {
    private static final long serialVersionUID = 1L;

    Failure(String message) {
      super(message);
    }
  }

  DemoTour(Hsm hsm, PrintStream out) {
    this.hsm = hsm;
    this.out = out;
  }

  int passed() {
    return passed;
  }

  int failed() {
    return failed;
  }

  /** Runs every check; the caller prints the summary. */
  void run() {
    check("health", () -> {
      JsonObject h = hsm.health();
      require("OK".equals(h.getValue("status")), "status is " + h.getValue("status"));
      return h.getValue("hsmId") + ", token " + h.getValue("token");
    });
    for (KeySpec spec : KeySpec.values()) {
      if (spec.family() == KeySpec.Family.EDWARDS) {
        edwards(spec);
        continue;
      }
      String keyId = generate(spec, null);
      if (keyId == null) {
        continue;
      }
      switch (spec.family()) {
        case AES -> aes(spec, keyId);
        case HMAC -> hmac(spec, keyId);
        case RSA -> {
          PublicKey pk = publicKey(spec, keyId, "RSA");
          signature(spec, keyId, pk, "RSA_PKCS1_SHA256", "SHA256withRSA", null);
          signature(spec, keyId, pk, "RSA_PSS_SHA256", "RSASSA-PSS",
              new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1));
        }
        case EC -> {
          PublicKey pk = publicKey(spec, keyId, "EC");
          boolean p384 = spec == KeySpec.EC_P384;
          signature(spec, keyId, pk, p384 ? "ECDSA_SHA384" : "ECDSA_SHA256",
              p384 ? "SHA384withECDSA" : "SHA256withECDSA", null);
        }
        default -> check(spec + " has a demo", () -> {
          throw new Failure("no checks for family " + spec.family());
        });
      }
    }
    rsaOaep();
    check("digest SHA256 equals the JDK's", () -> {
      byte[] expected = MessageDigest.getInstance("SHA-256").digest(MESSAGE);
      require(Arrays.equals(expected, hsm.digest("SHA256", MESSAGE)), "digests differ");
      return null;
    });
    check("random: 32 bytes, two calls differ", () -> {
      byte[] a = hsm.random(32);
      byte[] b = hsm.random(32);
      require(a.length == 32 && b.length == 32, "lengths " + a.length + ", " + b.length);
      require(!Arrays.equals(a, b), "two calls returned the same bytes");
      return null;
    });
    deleteAll();
  }

  /**
   * Ed25519: replicated like every key when the token can wrap it; SoftHSM2 cannot (CKR_KEY_NOT_WRAPPABLE),
   * so the cluster refuses that with a typed error, and the key is made never-extractable instead: in a
   * one-HSM cluster it lives on that HSM only.
   */
  private void edwards(KeySpec spec) {
    String[] id = new String[1];
    check("generate " + spec + " (replicated, or refused as not wrappable)", () -> {
      try {
        id[0] = hsm.generateKey(spec, "demo-" + spec.name().toLowerCase(), null, false).keyId();
        keys.add(id[0]);
        return id[0];
      } catch (HsmBridgeException e) {
        require(e.code() == ErrorCode.NOT_ALLOWED_BY_POLICY && e.getMessage().contains("cannot be replicated"),
            "expected NOT_ALLOWED_BY_POLICY (cannot be replicated), got " + e.getMessage());
        return "refused: this token cannot wrap it";
      }
    });
    if (id[0] == null) {
      check("generate " + spec + " never-extractable (lives on this HSM only)", () -> {
        JsonObject k = hsm.send(new JsonObject().put("op", "key.generate").put("spec", spec.name())
            .put("label", "demo-" + spec.name().toLowerCase() + "-local").put("extractable", false));
        require(Boolean.FALSE.equals(k.getBoolean("replicated")), "expected replicated=false: " + k.encode());
        id[0] = k.getString("keyId");
        keys.add(id[0]);
        return id[0];
      });
    }
    if (id[0] != null) {
      signature(spec, id[0], publicKey(spec, id[0], "Ed25519"), "ED25519", "Ed25519", null);
    }
  }

  private String generate(KeySpec spec, KeyUsage usage) {
    String label = "demo-" + spec.name().toLowerCase() + (usage == null ? "" : "-" + usage.name().toLowerCase());
    String[] id = new String[1];
    check("generate " + spec + (usage == null ? "" : " " + usage), () -> {
      id[0] = hsm.generateKey(spec, label, usage, false).keyId();
      keys.add(id[0]);
      return id[0];
    });
    return id[0];
  }

  private void aes(KeySpec spec, String keyId) {
    Ciphertext[] gcm = new Ciphertext[1];
    check(spec + " AES_GCM round trip with AAD", () -> {
      Ciphertext c = hsm.encrypt(keyId, "AES_GCM", MESSAGE, AAD);
      require(c.iv() != null && c.iv().length == 12, "IV is not 12 bytes");
      require(c.ciphertext().length == MESSAGE.length + 16, "ciphertext is not plaintext + 16-byte tag");
      require(Arrays.equals(MESSAGE, hsm.decrypt(keyId, "AES_GCM", c, AAD)), "decrypted text differs");
      gcm[0] = c;
      return null;
    });
    if (gcm[0] != null) {
      check(spec + " AES_GCM tampered ciphertext -> CRYPTO_FAILURE", () -> {
        byte[] ct = gcm[0].ciphertext();
        ct[0] ^= 1;
        expectError(ErrorCode.CRYPTO_FAILURE, () -> hsm.decrypt(keyId, "AES_GCM", ct, gcm[0].iv(), AAD));
        return null;
      });
      check(spec + " AES_GCM wrong AAD -> CRYPTO_FAILURE", () -> {
        expectError(ErrorCode.CRYPTO_FAILURE, () -> hsm.decrypt(keyId, "AES_GCM", gcm[0], "other".getBytes()));
        return null;
      });
    }
    check(spec + " AES_CBC_PAD round trip", () -> {
      Ciphertext c = hsm.encrypt(keyId, "AES_CBC_PAD", MESSAGE, null);
      require(c.iv() != null && c.iv().length == 16, "IV is not 16 bytes");
      require(c.ciphertext().length % 16 == 0 && c.ciphertext().length > MESSAGE.length, "not padded blocks");
      require(Arrays.equals(MESSAGE, hsm.decrypt(keyId, "AES_CBC_PAD", c, null)), "decrypted text differs");
      return null;
    });
  }

  private void hmac(KeySpec spec, String keyId) {
    byte[][] mac = new byte[1][];
    check(spec + " mac, then mac.verify -> valid", () -> {
      byte[] m = hsm.mac(keyId, "HMAC_SHA256", MESSAGE);
      require(m.length == 32, "mac is " + m.length + " bytes, not 32");
      require(hsm.macVerify(keyId, "HMAC_SHA256", MESSAGE, m), "mac.verify said invalid");
      mac[0] = m;
      return null;
    });
    if (mac[0] != null) {
      check(spec + " flipped mac -> invalid", () -> {
        byte[] m = mac[0].clone();
        m[m.length - 1] ^= 1;
        require(!hsm.macVerify(keyId, "HMAC_SHA256", MESSAGE, m), "mac.verify said valid");
        return null;
      });
    }
  }

  private PublicKey publicKey(KeySpec spec, String keyId, String jdkAlg) {
    PublicKey[] pk = new PublicKey[1];
    check(spec + " public key is a valid SPKI", () -> {
      pk[0] = KeyFactory.getInstance(jdkAlg).generatePublic(new X509EncodedKeySpec(hsm.publicKey(keyId)));
      return null;
    });
    return pk[0];
  }

  private void signature(KeySpec spec, String keyId, PublicKey pk, String alg, String jdkAlg,
      PSSParameterSpec pss) {
    if (pk == null) {
      return;
    }
    check(spec + " " + alg + " signature verifies in the JDK (" + jdkAlg + ")", () -> {
      byte[] sig = hsm.sign(keyId, alg, MESSAGE);
      Signature v = Signature.getInstance(jdkAlg);
      if (pss != null) {
        v.setParameter(pss);
      }
      v.initVerify(pk);
      v.update(MESSAGE);
      require(v.verify(sig), "the JDK rejects the signature");
      require(hsm.verify(keyId, alg, MESSAGE, sig), "hsmbridge verify says invalid");
      byte[] other = MESSAGE.clone();
      other[0] ^= 1;
      require(!hsm.verify(keyId, alg, other, sig), "hsmbridge verify accepts a changed message");
      return null;
    });
  }

  private void rsaOaep() {
    String keyId = generate(KeySpec.RSA_2048, KeyUsage.ENCRYPT_DECRYPT);
    if (keyId == null) {
      return;
    }
    PublicKey pk = publicKey(KeySpec.RSA_2048, keyId, "RSA");
    if (pk == null) {
      return;
    }
    check("RSA_2048 RSA_OAEP: JDK encrypts, hsmbridge decrypts", () -> {
      Cipher c = Cipher.getInstance("RSA/ECB/OAEPWithSHA-1AndMGF1Padding");
      c.init(Cipher.ENCRYPT_MODE, pk);
      byte[] ct = c.doFinal(MESSAGE);
      require(Arrays.equals(MESSAGE, hsm.decrypt(keyId, "RSA_OAEP", ct, null, null)), "decrypted text differs");
      return null;
    });
  }

  private void deleteAll() {
    List<String> all = List.copyOf(keys);
    check("delete all " + all.size() + " keys (describe -> UNKNOWN_KEY afterwards)", () -> {
      List<String> problems = new ArrayList<>();
      for (String id : all) {
        try {
          hsm.delete(id);
          keys.remove(id);
          expectError(ErrorCode.UNKNOWN_KEY, () -> hsm.describe(id));
        } catch (HsmBridgeException | Failure e) {
          problems.add(id + ": " + e.getMessage());
        }
      }
      require(problems.isEmpty(), String.join("; ", problems));
      return null;
    });
  }

  private void check(String what, Check c) {
    if (nodeGone) {
      return;
    }
    try {
      String detail = c.run();
      passed++;
      out.println("ok   " + what + (detail == null ? "" : " (" + detail + ")"));
    } catch (Exception | AssertionError e) {
      failed++;
      out.println("FAIL " + what + ": " + why(e));
      if (e instanceof HsmBridgeException h && h.code() == ErrorCode.NO_HSM_AVAILABLE) {
        nodeGone = true;
        out.println("the node went away; skipping the remaining checks");
      }
    }
    out.flush();
  }

  private static String why(Throwable e) {
    if (e instanceof HsmBridgeException || e instanceof Failure) {
      return e.getMessage();
    }
    if (e instanceof GeneralSecurityException) {
      return "JDK: " + e;
    }
    return e.toString();
  }

  private static void require(boolean ok, String why) throws Failure {
    if (!ok) {
      throw new Failure(why);
    }
  }

  private static void expectError(ErrorCode code, Runnable r) throws Failure {
    try {
      r.run();
    } catch (HsmBridgeException e) {
      require(e.code() == code, "expected " + code + ", got " + e.getMessage());
      return;
    }
    throw new Failure("expected " + code + ", but it succeeded");
  }
}
