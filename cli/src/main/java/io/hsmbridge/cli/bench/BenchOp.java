package io.hsmbridge.cli.bench;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/** The operations the benchmark measures: a key spec, an algorithm and an input size. */
public enum BenchOp {
  RSA2048_SIGN("rsa2048_pkcs1_sha256_sign", KeySpec.RSA_2048, KeyUsage.SIGN_VERIFY, Algorithm.RSA_PKCS1_SHA256, 32),
  ECDSA_P256_SIGN("ecdsa_p256_sha256_sign", KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, Algorithm.ECDSA_SHA256, 32),
  AES256_GCM_4K("aes256_gcm_encrypt_4k", KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, Algorithm.AES_GCM, 4096),
  HMAC_SHA256_1K("hmac_sha256_1k", KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, Algorithm.HMAC_SHA256, 1024);

  final String id;
  final KeySpec spec;
  final KeyUsage usage;
  final Algorithm alg;
  final int inputBytes;

  BenchOp(String id, KeySpec spec, KeyUsage usage, Algorithm alg, int inputBytes) {
    this.id = id;
    this.spec = spec;
    this.usage = usage;
    this.alg = alg;
    this.inputBytes = inputBytes;
  }

  /** The row name: {@code rsa2048_pkcs1_sha256_sign}, ... */
  public String id() {
    return id;
  }

  /** The request body of one operation on {@code keyId} with {@code input} (a fresh body each call). */
  JsonObject request(String keyId, byte[] input) {
    String b64 = Base64.getEncoder().encodeToString(input);
    JsonObject body = new JsonObject().put("keyId", keyId).put("alg", alg.wireName());
    switch (alg.kind()) {
      case SIGNATURE:
        return body.put("op", "sign").put("message", b64);
      case MAC:
        return body.put("op", "mac").put("message", b64);
      default:
        return body.put("op", "encrypt").put("plaintext", b64);
    }
  }

  /** The field a successful reply to {@link #request} carries. */
  String resultField() {
    switch (alg.kind()) {
      case SIGNATURE:
        return "signature";
      case MAC:
        return "mac";
      default:
        return "ciphertext";
    }
  }

  /** Parses {@code a,b}: each an op's id or its enum name. */
  public static List<BenchOp> parseList(String csv) {
    List<BenchOp> out = new ArrayList<>();
    for (String s : csv.split(",")) {
      BenchOp match = null;
      for (BenchOp op : values()) {
        if (op.id.equals(s.trim()) || op.name().equalsIgnoreCase(s.trim())) {
          match = op;
        }
      }
      if (match == null) {
        throw new IllegalArgumentException("unknown op '" + s.trim() + "' (one of " + ids() + ")");
      }
      if (out.contains(match)) {
        throw new IllegalArgumentException("op " + match.id + " is named twice");
      }
      out.add(match);
    }
    return out;
  }

  /** Every op's id, comma-separated. */
  public static String ids() {
    List<String> ids = new ArrayList<>();
    for (BenchOp op : values()) {
      ids.add(op.id);
    }
    return String.join(", ", ids);
  }
}
