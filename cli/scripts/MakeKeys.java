import io.hsmbridge.client.BridgeClient;
import io.hsmbridge.client.ClientTls;
import io.vertx.core.json.JsonObject;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

/** java -cp hsmbridge.jar MakeKeys.java HOME SESSION_FILE N: N AES-256 keys through the cluster, 4 at a time. */
public class MakeKeys {
  public static void main(String[] a) throws Exception {
    Path home = Path.of(a[0]);
    String session = new JsonObject(Files.readString(Path.of(a[1]))).getString("session");
    int n = Integer.parseInt(a[2]);
    JsonObject ep = new JsonObject(Files.readString(home.resolve("bridge").resolve("endpoint.json")));
    final String s = session;
    java.util.concurrent.atomic.AtomicInteger next = new java.util.concurrent.atomic.AtomicInteger();
    long t0 = System.nanoTime();
    Thread[] ts = new Thread[4];
    for (int t = 0; t < ts.length; t++) {
      ts[t] = new Thread(() -> {
        try (BridgeClient c = BridgeClient.connect(ep.getString("host"), ep.getInteger("port"), Duration.ofSeconds(60),
            ClientTls.pinning(home.resolve("bridge").resolve("tls").resolve("ca.pem")))) {
          for (int i = next.getAndIncrement(); i < n; i = next.getAndIncrement()) {
            c.request(new JsonObject().put("op", "key.generate").put("session", s).put("spec", "AES_256").put("label", "k" + i));
          }
        }
      });
      ts[t].start();
    }
    for (Thread t : ts) {
      t.join();
    }
    System.out.printf("made %d keys in %.1f s%n", n, (System.nanoTime() - t0) / 1e9);
    System.exit(0);
  }
}
