package io.hsmbridge.client;

import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.Base64;

/** Typed reads of reply fields; a missing or ill-typed field is a server bug, reported as INTERNAL. */
final class Replies {
  private Replies() {}

  static String string(JsonObject o, String field) {
    if (o.getValue(field) instanceof String s) {
      return s;
    }
    throw malformed(field, "string");
  }

  static String optString(JsonObject o, String field) {
    Object v = o.getValue(field);
    if (v == null || v instanceof String) {
      return (String) v;
    }
    throw malformed(field, "string");
  }

  static boolean bool(JsonObject o, String field) {
    if (o.getValue(field) instanceof Boolean b) {
      return b;
    }
    throw malformed(field, "boolean");
  }

  static boolean bool(JsonObject o, String field, boolean dflt) {
    Object v = o.getValue(field);
    if (v == null) {
      return dflt;
    }
    if (v instanceof Boolean b) {
      return b;
    }
    throw malformed(field, "boolean");
  }

  static JsonArray array(JsonObject o, String field) {
    if (o.getValue(field) instanceof JsonArray a) {
      return a;
    }
    throw malformed(field, "array");
  }

  static byte[] bytes(JsonObject o, String field) {
    String s = string(o, field);
    try {
      return Base64.getDecoder().decode(s);
    } catch (IllegalArgumentException e) {
      throw malformed(field, "standard base64");
    }
  }

  static byte[] optBytes(JsonObject o, String field) {
    return o.getValue(field) == null ? null : bytes(o, field);
  }

  static String b64(byte[] b) {
    return Base64.getEncoder().encodeToString(b);
  }

  private static HsmBridgeException malformed(String field, String type) {
    return new HsmBridgeException(ErrorCode.INTERNAL, "malformed reply: field '" + field + "' is not a " + type);
  }
}
