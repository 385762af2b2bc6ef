package io.hsmbridge.client;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.List;

/**
 * A key description as the server returns it (protocol.md, "Key description"). Holds no key
 * material. {@code spec}, {@code family} and {@code usage} stay strings so that a client keeps
 * working when a newer server adds values.
 *
 * @param keyId 32 lowercase hex characters (the token's CKA_ID)
 * @param owner the crypto user who owns the key; null when the server does not say (no users yet)
 * @param sharedWith the users the owner shared the key with; only the owner is told, empty otherwise
 */
public record KeyInfo(
    String keyId,
    String label,
    String spec,
    String family,
    String usage,
    boolean exportable,
    boolean extractable,
    boolean sensitive,
    String owner,
    List<String> sharedWith) {

  public KeyInfo {
    sharedWith = sharedWith == null ? List.of() : List.copyOf(sharedWith);
  }

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
        Replies.bool(o, "sensitive", false),
        Replies.optString(o, "owner"),
        Replies.strings(o, "sharedWith"));
  }

  /** The description as protocol JSON ({@code owner} and {@code sharedWith} only when known). */
  public JsonObject toJson() {
    JsonObject o = new JsonObject()
        .put("keyId", keyId)
        .put("label", label)
        .put("spec", spec)
        .put("family", family)
        .put("usage", usage)
        .put("exportable", exportable)
        .put("extractable", extractable)
        .put("sensitive", sensitive);
    if (owner != null) {
      o.put("owner", owner);
    }
    if (!sharedWith.isEmpty()) {
      o.put("sharedWith", new JsonArray(List.copyOf(sharedWith)));
    }
    return o;
  }
}
