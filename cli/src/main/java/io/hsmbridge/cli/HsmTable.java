package io.hsmbridge.cli;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The per-HSM tables of {@code status} and {@code hsm list}: each HSM of the record (and any other the
 * bridge reports), its state as the bridge sees it, and its local process. An HSM the bridge does not
 * report shows "(not reported)" when its process runs and "(not running)" when it does not.
 */
final class HsmTable {
  private static final int MAX_ERROR = 100;

  private HsmTable() {}

  /** status: state, log position, objects, in-flight requests, capacity, pid, last error. */
  static void full(PrintStream out, List<String> hsmIds, ClusterStatus status, Map<String, Long> pids) {
    TextTable t = new TextTable("HSM", "STATE", "APPLIED", "OBJECTS", "OUTSTANDING", "CAPACITY", "PID", "LAST ERROR");
    for (String id : ids(hsmIds, status)) {
      ClusterStatus.Hsm h = status == null ? null : status.hsm(id).orElse(null);
      t.row(id, state(h, pids.get(id)), num(h == null ? -1 : h.applied()), num(h == null ? -1 : h.objects()),
          num(h == null ? -1 : h.outstanding()), num(h == null ? -1 : h.capacity()), pids.get(id),
          h == null ? null : oneLine(h.lastError()));
    }
    t.print(out, "  ");
  }

  /** hsm list: state, token, objects, pid. */
  static void compact(PrintStream out, List<String> hsmIds, ClusterStatus status, Map<String, Long> pids) {
    TextTable t = new TextTable("HSM", "STATE", "TOKEN", "OBJECTS", "PID");
    for (String id : ids(hsmIds, status)) {
      ClusterStatus.Hsm h = status == null ? null : status.hsm(id).orElse(null);
      t.row(id, state(h, pids.get(id)), h == null ? null : h.token(), num(h == null ? -1 : h.objects()),
          pids.get(id));
    }
    t.print(out, "");
  }

  private static List<String> ids(List<String> hsmIds, ClusterStatus status) {
    Set<String> ids = new LinkedHashSet<>(hsmIds);
    if (status != null) {
      status.hsms().forEach(h -> ids.add(h.hsmId()));
    }
    return new ArrayList<>(ids);
  }

  private static String state(ClusterStatus.Hsm h, Long pid) {
    if (h != null && h.state() != null) {
      return h.state();
    }
    return pid != null ? "(not reported)" : "(not running)";
  }

  private static String num(long n) {
    return n < 0 ? null : Long.toString(n);
  }

  private static String oneLine(String s) {
    if (s == null || s.isBlank()) {
      return null;
    }
    String t = s.strip().replaceAll("\\s+", " ");
    return t.length() > MAX_ERROR ? t.substring(0, MAX_ERROR) + "..." : t;
  }
}
