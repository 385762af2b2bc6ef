import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.ClientTls;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * java -cp hsmbridge.jar CreationProbe.java HOME SESSION_FILE SECONDS: creates AES-256 keys one after the other
 * for SECONDS and prints how many, their p50 and the longest (ms), and the failures: what a backup or a digest
 * running meanwhile costs the cluster's mutations.
 */
public class CreationProbe {
  public static void main(String[] a) throws Exception {
    Path home = Path.of(a[0]);
    String session = new JsonObject(Files.readString(Path.of(a[1]))).getString("session");
    long seconds = Long.parseLong(a[2]);
    JsonObject ep = new JsonObject(Files.readString(home.resolve("bridge").resolve("endpoint.json")));
    List<Double> ms = new ArrayList<>();
    int failed = 0;
    long end = System.nanoTime() + seconds * 1_000_000_000L;
    BridgeClient c = null;
    for (int i = 0; System.nanoTime() < end && i < 100_000; i++) {
      long t = System.nanoTime();
      try {
        if (c == null) {
          c = BridgeClient.connect(ep.getString("host"), ep.getInteger("port"), Duration.ofSeconds(60),
              ClientTls.pinning(home.resolve("bridge").resolve("tls").resolve("ca.pem")));
        }
        c.request(new JsonObject().put("op", "key.generate").put("session", session).put("spec", "AES_256")
            .put("label", "probe" + i).put("requestId", java.util.UUID.randomUUID().toString()));
        ms.add((System.nanoTime() - t) / 1e6);
      } catch (RuntimeException e) {
        failed++;
        System.out.println("failed after " + (System.nanoTime() - t) / 1_000_000 + " ms: " + e.getMessage());
        if (c != null) {
          c.close(); // a connection the client gave up on: a new one, as an application would
          c = null;
        }
        Thread.sleep(200);
      }
    }
    if (c != null) {
      c.close();
    }
    Collections.sort(ms);
    System.out.printf("probe: %d creations in %d s, p50 %.1f ms, max %.1f ms, %d failed%n", ms.size(), seconds,
        ms.isEmpty() ? 0 : ms.get(ms.size() / 2), ms.isEmpty() ? 0 : ms.get(ms.size() - 1), failed);
    System.exit(0);
  }
}
