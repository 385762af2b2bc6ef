package io.hsmbridge.client;

import io.vertx.core.json.JsonObject;

/**
 * A key description as the server returns it (protocol.md, "Key description"). Holds no key
 * material. {@code spec}, {@code family} and {@code usage} stay strings so that a client keeps
 * working when a newer server adds values.
 *
 * @param keyId 32 lowercase hex characters (the token's CKA_ID)
 */
public record KeyInfo(
    String keyId,
    String label,
    String spec,
    String family,
    String usage,
    boolean exportable,
    boolean extractable,
    boolean sensitive) {

  /** Parses a key description; a missing required field is an INTERNAL error (a server bug). */
  public static KeyInfo fromJson(JsonObject o) {
    return new KeyInfo(
        Replies.string(o, "keyId"),
        Replies.string(o, "label"),
        Replies.string(o, "spec"),
        Replies.optString(o, "family"),
        Replies.optString(o, "usage"),
        Replies.bool(o, "exportable", false),
        Replies.bool(o, "extractable", false),
        Replies.bool(o, "sensitive", false));
  }

  /** The description as protocol JSON. */
  public JsonObject toJson() {
    return new JsonObject()
        .put("keyId", keyId)
        .put("label", label)
        .put("spec", spec)
        .put("family", family)
        .put("usage", usage)
        .put("exportable", exportable)
        .put("extractable", extractable)
        .put("sensitive", sensitive);
  }

}
