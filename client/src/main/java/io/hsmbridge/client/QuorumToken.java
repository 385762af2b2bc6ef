package io.hsmbridge.client;

import io.vertx.core.json.JsonObject;

/**
 * A quorum token from {@code quorum.token}: approvers sign the UTF-8 bytes of {@code document} with
 * their registered RSA key ({@link QuorumApproval#sign}); the operation it was issued for then runs with
 * the approvals in its {@code quorum} field ({@link Hsm#withQuorum}).
 *
 * @param expiresAt epoch milliseconds
 */
public record QuorumToken(String tokenId, String document, long expiresAt) {

  static QuorumToken fromJson(JsonObject o) {
    return new QuorumToken(Replies.string(o, "tokenId"), Replies.string(o, "document"), Replies.longValue(o, "expiresAt"));
  }

  public JsonObject toJson() {
    return new JsonObject().put("tokenId", tokenId).put("document", document).put("expiresAt", expiresAt);
  }
}
