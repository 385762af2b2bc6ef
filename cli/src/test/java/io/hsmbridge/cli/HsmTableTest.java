package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vertx.core.json.JsonObject;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class HsmTableTest {
  private static final ClusterStatus STATUS = ClusterStatus.from(new JsonObject("""
      {"durability":2,"required":2,"members":3,"healthy":2,"hsms":[
        {"hsmId":"hsm1","state":"SERVING","applied":12,"objects":5,"outstanding":0,"capacity":2,"lastError":null,
         "heartbeatAgeMs":120,"token":"hsmbridge-hsm1"},
        {"hsmId":"hsm3","state":"UNHEALTHY","applied":9,"objects":4,"outstanding":1,"capacity":2,
         "lastError":"TOKEN_NOT_FOUND:  no token\\n labelled hsmbridge-hsm3","heartbeatAgeMs":9000,"token":"hsmbridge-hsm3"},
        {"hsmId":"hsm9","state":"CATCHING_UP"}]}"""));

  private static String print(boolean full, List<String> ids, ClusterStatus st, Map<String, Long> pids) {
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    PrintStream out = new PrintStream(buf, true, StandardCharsets.UTF_8);
    if (full) {
      HsmTable.full(out, ids, st, pids);
    } else {
      HsmTable.compact(out, ids, st, pids);
    }
    return buf.toString(StandardCharsets.UTF_8);
  }

  @Test
  void fullTableHasEveryRecordedAndReportedHsm() {
    assertEquals(2, STATUS.healthy());
    assertEquals(-1, STATUS.hsm("hsm9").orElseThrow().applied(), "missing numbers are -1");
    assertEquals(""
        + "  HSM   STATE          APPLIED  OBJECTS  OUTSTANDING  CAPACITY  PID  LAST ERROR\n"
        + "  hsm1  SERVING        12       5        0            2         101  -\n"
        + "  hsm2  (not running)  -        -        -            -         -    -\n"
        + "  hsm3  UNHEALTHY      9        4        1            2         103  TOKEN_NOT_FOUND: no token labelled hsmbridge-hsm3\n"
        + "  hsm9  CATCHING_UP    -        -        -            -         -    -\n",
        print(true, List.of("hsm1", "hsm2", "hsm3"), STATUS, Map.of("hsm1", 101L, "hsm3", 103L)));
  }

  @Test
  void compactTableWithoutABridge() {
    assertEquals(""
        + "HSM   STATE           TOKEN  OBJECTS  PID\n"
        + "hsm1  (not reported)  -      -        101\n"
        + "hsm2  (not running)   -      -        -\n",
        print(false, List.of("hsm1", "hsm2"), null, Map.of("hsm1", 101L)));
  }
}
