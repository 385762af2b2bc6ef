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

  static long longValue(JsonObject o, String field) {
    if (o.getValue(field) instanceof Number n) {
      return n.longValue();
    }
    throw malformed(field, "number");
  }

  static long longValue(JsonObject o, String field, long dflt) {
    return o.getValue(field) == null ? dflt : longValue(o, field);
  }

  /** An optional array of strings; empty when absent. */
  static java.util.List<String> strings(JsonObject o, String field) {
    if (o.getValue(field) == null) {
      return java.util.List.of();
    }
    java.util.List<String> out = new java.util.ArrayList<>();
    for (Object v : array(o, field)) {
      if (!(v instanceof String s)) {
        throw malformed(field, "array of strings");
      }
      out.add(s);
    }
    return java.util.List.copyOf(out);
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
