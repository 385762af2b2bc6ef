package io.hsmbridge.bridge.routing;

import io.vertx.core.Future;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.List;

/**
 * The shape {@code cluster check} reads from an agent's digest reply ({@link AntiEntropy}). Only agents can
 * answer a digest (AddressPolicy), but a reply from an agent that lies or runs other code must neither make
 * the whole check fail (a field of another type throws where it is read) nor stand in for another HSM (the
 * report is keyed by the reply's {@code hsmId}): such a reply counts as that HSM's failed answer, and the report
 * names the HSM as skipped, with what was wrong.
 */
final class DigestReplies {
  /** How much of a wrong value a reason quotes: the reply comes from outside this process. */
  private static final int QUOTED = 40;

  private DigestReplies() {}

  /** {@code replies}, each answered by {@code hsms.get(i)}, with every malformed reply turned into a failure. */
  static List<Future<JsonObject>> checked(List<HsmView> hsms, List<Future<JsonObject>> replies) {
    List<Future<JsonObject>> out = new ArrayList<>(replies.size());
    for (int i = 0; i < replies.size(); i++) {
      Future<JsonObject> f = replies.get(i);
      String problem = f.succeeded() ? problem(f.result(), hsms.get(i).hsmId) : null;
      out.add(problem == null ? f : Future.failedFuture("malformed digest reply: " + problem));
    }
    return out;
  }

  /** What is wrong with a digest reply from {@code askedHsmId}; null when it has the shape the check reads. */
  static String problem(JsonObject reply, String askedHsmId) {
    if (reply == null) {
      return "no reply body";
    }
    Object id = reply.getValue("hsmId");
    if (!askedHsmId.equals(id)) {
      return "it answers as " + quoted(id) + ", not " + askedHsmId;
    }
    for (String field : List.of("applied", "appliedAfter")) {
      if (!(reply.getValue(field) instanceof Number)) {
        return field + " is " + quoted(reply.getValue(field)) + ", not a number";
      }
    }
    for (String field : List.of("digest", "usersDigest")) {
      if (!(reply.getValue(field) instanceof String)) {
        return field + " is " + quoted(reply.getValue(field)) + ", not a string";
      }
    }
    Object unconfirmed = reply.getValue("driftUnconfirmed");
    if (unconfirmed != null && !(unconfirmed instanceof Boolean)) {
      return "driftUnconfirmed is " + quoted(unconfirmed) + ", not true or false";
    }
    if (!(reply.getValue("keys") instanceof JsonArray keys)) {
      return "keys is " + quoted(reply.getValue("keys")) + ", not a list";
    }
    for (Object k : keys) {
      String wrong = keyProblem(k);
      if (wrong != null) {
        return "a key " + wrong;
      }
    }
    Object records = reply.getValue("usersRecords");
    if (records != null) {
      if (!(records instanceof JsonObject r)) {
        return "usersRecords is " + quoted(records) + ", not an object";
      }
      for (String name : r.fieldNames()) {
        if (!(r.getValue(name) instanceof String)) {
          return "the users record " + quoted(name) + " has " + quoted(r.getValue(name)) + ", not a string";
        }
      }
    }
    return null;
  }

  private static String keyProblem(Object k) {
    if (!(k instanceof JsonObject key)) {
      return "is " + quoted(k) + ", not an object";
    }
    for (String field : List.of("keyId", "spec", "usage")) {
      if (!(key.getValue(field) instanceof String)) {
        return "has " + field + " " + quoted(key.getValue(field)) + ", not a string";
      }
    }
    Object label = key.getValue("label");
    if (label != null && !(label instanceof String)) {
      return "has label " + quoted(label) + ", not a string";
    }
    for (String field : List.of("exportable", "extractable")) {
      Object b = key.getValue(field);
      if (b != null && !(b instanceof Boolean)) {
        return "has " + field + " " + quoted(b) + ", not true or false";
      }
    }
    return null;
  }

  private static String quoted(Object value) {
    if (value == null) {
      return "missing";
    }
    String s = String.valueOf(value);
    return "'" + (s.length() > QUOTED ? s.substring(0, QUOTED) + "..." : s) + "'";
  }
}
