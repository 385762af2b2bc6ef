package io.hsmbridge.cli.bench;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;

/** The operations the benchmark measures: a key spec, an algorithm and an input size. */
enum BenchOp {
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
}
