package io.hsmbridge.client;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.util.Base64;
import java.util.List;
import java.util.Objects;

/**
 * One approver's signature over a {@link QuorumToken}'s document (M-of-N token-sign, docs/users.md).
 * Signing happens offline, with the approver's own RSA key; the bridge checks it against the public key
 * the approver registered ({@code user.registerKey}).
 *
 * @param signature standard base64 of SHA256withRSA over the UTF-8 bytes of the document
 */
public record QuorumApproval(String tokenId, String user, String signature) {
  /** The signature scheme of approvals and of MFA challenges (the wire spec fixes it). */
  public static final String ALGORITHM = "SHA256withRSA";

  public QuorumApproval {
    Objects.requireNonNull(tokenId, "tokenId");
    Objects.requireNonNull(user, "user");
    Objects.requireNonNull(signature, "signature");
  }

  /** Signs the token's document as {@code user}. */
  public static QuorumApproval approve(QuorumToken token, String user, PrivateKey key) {
    return new QuorumApproval(token.tokenId(), user, sign(token.document(), key));
  }

  /** Base64 SHA256withRSA over the UTF-8 bytes of {@code document}. */
  public static String sign(String document, PrivateKey key) {
    return Base64.getEncoder().encodeToString(signBytes(document.getBytes(StandardCharsets.UTF_8), key));
  }

  /** SHA256withRSA over raw bytes (an MFA challenge is signed as the bytes it decodes to). */
  static byte[] signBytes(byte[] data, PrivateKey key) {
    try {
      Signature s = Signature.getInstance(ALGORITHM);
      s.initSign(key);
      s.update(data);
      return s.sign();
    } catch (GeneralSecurityException e) {
      // The key's type is the usual cause ("not an RSA key"); the message never holds key material.
      throw new IllegalArgumentException("cannot sign with this key (" + ALGORITHM + " needs an RSA private key): "
          + e.getMessage(), e);
    }
  }

  /** Whether {@code signature} (base64) is a valid approval of {@code document} for {@code key}. */
  public static boolean verify(String document, String signature, PublicKey key) {
    try {
      Signature s = Signature.getInstance(ALGORITHM);
      s.initVerify(key);
      s.update(document.getBytes(StandardCharsets.UTF_8));
      return s.verify(Base64.getDecoder().decode(signature));
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      return false;
    }
  }

  /** The approval as written to an approval file: {@code {tokenId, user, signature}}. */
  public JsonObject toJson() {
    return new JsonObject().put("tokenId", tokenId).put("user", user).put("signature", signature);
  }

  /**
   * Reads an approval file's JSON.
   *
   * @throws IllegalArgumentException naming the missing field
   */
  public static QuorumApproval fromJson(JsonObject o) {
    for (String f : List.of("tokenId", "user", "signature")) {
      if (!(o.getValue(f) instanceof String)) {
        throw new IllegalArgumentException("an approval needs the string field '" + f + "'");
      }
    }
    return new QuorumApproval(o.getString("tokenId"), o.getString("user"), o.getString("signature"));
  }

  /** The request's {@code quorum} field: {@code {tokenId, approvals: [{user, signature}]}}. */
  public static JsonObject quorumField(String tokenId, List<QuorumApproval> approvals) {
    JsonArray a = new JsonArray();
    for (QuorumApproval q : approvals) {
      if (!q.tokenId().equals(tokenId)) {
        throw new IllegalArgumentException("the approval of " + q.user() + " is for token " + q.tokenId()
            + ", not " + tokenId);
      }
      a.add(new JsonObject().put("user", q.user()).put("signature", q.signature()));
    }
    return new JsonObject().put("tokenId", tokenId).put("approvals", a);
  }
}
