package io.hsmbridge.bridge.routing;

import static org.junit.jupiter.api.Assertions.*;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.Test;

/**
 * A heartbeat's backup progress reaches an operator's terminal (`cluster status`, `backup create`'s progress
 * bar): only its documented shape is kept, anything a faulty or hostile member sends instead is dropped.
 */
class BackupProgressViewTest {
  private static JsonObject progress(Object id, Object wrapped, Object keys) {
    return new JsonObject().put("backupId", id).put("wrapped", wrapped).put("keys", keys);
  }

  @Test
  void theDocumentedShapeIsShownInTheStatus() {
    HsmView v = new HsmView("hsm1");
    v.heartbeat(new JsonObject().put("hsmId", "hsm1").put("state", "SERVING").put("backingUp", true)
        .put("backup", progress("backup-abcdefghijk234", 12, 40)), System.nanoTime());
    assertEquals(progress("backup-abcdefghijk234", 12, 40), v.toJson(System.nanoTime()).getJsonObject("backup"));
    v.heartbeat(new JsonObject().put("hsmId", "hsm1").put("state", "SERVING"), System.nanoTime());
    assertNull(v.toJson(System.nanoTime()).getValue("backup"), "gone once the backup is made");
  }

  @Test
  void anythingElseIsDropped() {
    Object[] bad = {
        "backup-abcdefghijk234", // not an object
        progress("backup-abcdefghijk234\u001b[2J", 1, 2), // a terminal escape in the id
        progress("../../etc", 1, 2),
        progress("backup-abcdefghijk234", 3, 2), // more wrapped than keys
        progress("backup-abcdefghijk234", -1, 2),
        progress("backup-abcdefghijk234", "1", 2),
        progress("backup-abcdefghijk234", 1, 2).put("extra", "x".repeat(10_000)),
        new JsonObject()};
    for (Object b : bad) {
      assertNull(HsmView.backupProgress(b), String.valueOf(b));
    }
  }
}
