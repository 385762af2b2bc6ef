package io.hsmbridge.cli;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Optional;

/**
 * The bridge's {@code cluster.status} reply: durability, how many HSMs a mutation needs now, and the
 * state of each HSM as the bridge sees it from their heartbeats. Parsing is tolerant: a missing number
 * is -1, a missing text null (printed as "-").
 */
record ClusterStatus(int durability, int required, int members, int healthy, List<Hsm> hsms) {
  static final String SERVING = "SERVING";

  /** One HSM's row. */
  record Hsm(String hsmId, String state, long applied, long objects, long outstanding, long capacity,
      String lastError, long heartbeatAgeMs, String token, long pid) {}

  ClusterStatus {
    hsms = List.copyOf(hsms);
  }

  static ClusterStatus from(JsonObject reply) {
    List<Hsm> hsms = new ArrayList<>();
    JsonArray arr = reply.getValue("hsms") instanceof JsonArray a ? a : new JsonArray();
    for (Object o : arr) {
      if (o instanceof JsonObject h && h.getValue("hsmId") instanceof String id) {
        hsms.add(new Hsm(id, text(h, "state"), number(h, "applied"), number(h, "objects"),
            number(h, "outstanding"), number(h, "capacity"), text(h, "lastError"), number(h, "heartbeatAgeMs"),
            text(h, "token"), number(h, "pid")));
      }
    }
    return new ClusterStatus((int) number(reply, "durability"), (int) number(reply, "required"),
        (int) number(reply, "members"), (int) number(reply, "healthy"), hsms);
  }

  Optional<Hsm> hsm(String hsmId) {
    return hsms.stream().filter(h -> h.hsmId().equals(hsmId)).findFirst();
  }

  boolean isServing(String hsmId) {
    return hsm(hsmId).map(h -> SERVING.equals(h.state())).orElse(false);
  }

  boolean allServing(Collection<String> hsmIds) {
    return hsmIds.stream().allMatch(this::isServing);
  }

  /**
   * Whether the HSM is SERVING as the process with this pid. Right after a SIGKILL the bridge still shows
   * the dead process's last SERVING heartbeat for up to cluster.deadAfterMs; only the new pid counts.
   */
  boolean isServingAs(String hsmId, long pid) {
    return hsm(hsmId).map(h -> SERVING.equals(h.state()) && h.pid() == pid).orElse(false);
  }

  /** The state of an HSM, or "not reported" when the bridge has not heard from it. */
  String stateOf(String hsmId) {
    return hsm(hsmId).map(Hsm::state).filter(s -> s != null).orElse("not reported");
  }

  private static long number(JsonObject o, String key) {
    return o.getValue(key) instanceof Number n ? n.longValue() : -1;
  }

  private static String text(JsonObject o, String key) {
    Object v = o.getValue(key);
    return v == null ? null : v.toString();
  }
}
