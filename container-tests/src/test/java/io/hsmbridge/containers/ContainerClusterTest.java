package io.hsmbridge.containers;

import static io.hsmbridge.containers.ContainerCluster.HSMS;
import static io.hsmbridge.containers.Keys.b64;
import static io.hsmbridge.containers.Keys.on;
import static io.hsmbridge.containers.Report.ms;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.security.PublicKey;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.testcontainers.containers.Container;

/**
 * (i) The cluster forms across containers: three HSM containers serve, a key created through the bridge
 * is installed on every container's own token (pinned reads on each HSM, equal cluster.check digests, and
 * the object files in each container's token directory), and crypto works across HSMs (encrypted on one,
 * decrypted on another; signatures from each checked with the JDK).
 *
 * <p>Run: {@code mvn -B -o -pl container-tests test -Dtest=ContainerClusterTest} with a container engine
 * (README.md, 'Tests and CI').
 */
@ExtendWith(SharedCluster.class)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(value = 900, unit = TimeUnit.SECONDS) // the first class starts the cluster (and may build the image)
class ContainerClusterTest {
  private static ContainerCluster cluster;

  @BeforeAll
  static void cluster(ContainerCluster c) {
    cluster = c;
  }

  @Test
  @Order(1)
  @Timeout(value = 120, unit = TimeUnit.SECONDS)
  void threeHsmContainersServeBehindTheBridge() {
    cluster.awaitServing(HSMS, Duration.ofSeconds(60));
    JsonObject status = cluster.request(new JsonObject().put("op", "cluster.status"));
    assertEquals(3, status.getInteger("healthy"), status.encodePrettily());
    assertEquals(3, status.getInteger("members"), "Raft group size: " + status.encodePrettily());
    assertEquals(2, status.getInteger("required"));
    Map<String, String> hosts = new TreeMap<>();
    for (String node : List.of("hsm1", "hsm2", "hsm3", "bridge")) {
      Container.ExecResult r = cluster.exec(node, "cat", "/proc/sys/kernel/hostname");
      hosts.put(node, r.getStdout().strip());
      assertEquals(node, r.getStdout().strip(), node + "'s container host name");
    }
    assertEquals(1, cluster.exec("bridge", "test", "-d", "/var/lib/hsmbridge/tokens").getExitCode(),
        "the bridge container holds no token");
    Report.note("(i) status: " + status.getInteger("healthy") + " of " + status.getJsonArray("hsms").size()
        + " HSMs SERVING, Raft group " + status.getInteger("members") + ", durability " + status.getInteger("durability")
        + "; container host names " + hosts);
  }

  @Test
  @Order(2)
  @Timeout(value = 180, unit = TimeUnit.SECONDS)
  void keysCreatedThroughTheBridgeAreOnEveryContainersTokenAndCryptoWorksAcrossThem() {
    long t0 = System.nanoTime();
    Map<String, Integer> objectsBefore = tokenObjects();
    Map<String, String> keys = new LinkedHashMap<>();
    for (String spec : List.of("AES_256", "EC_P256", "RSA_2048", "HMAC_SHA256")) {
      keys.put(spec, Keys.generate(cluster, spec, "i-" + spec));
    }
    long createMs = ms(t0);
    Keys.awaitAppliedEverywhere(cluster, Duration.ofSeconds(30));
    Keys.assertOnEveryHsm(cluster, keys.values(), "keys of (i)");
    for (String hsm : HSMS) {
      for (Map.Entry<String, String> k : keys.entrySet()) {
        JsonObject d = cluster.request(on(hsm, new JsonObject().put("op", "key.describe").put("keyId", k.getValue())));
        assertEquals(hsm, d.getString("servedBy"));
        assertEquals(k.getKey(), d.getString("spec"), hsm);
      }
    }
    // Each container's own token directory gained the same objects (both counts settled, see tokenObjects).
    Map<String, Integer> objectsAfter = tokenObjects();
    Map<String, Integer> gained = new TreeMap<>();
    HSMS.forEach(h -> gained.put(h, objectsAfter.get(h) - objectsBefore.get(h)));
    assertEquals(1, gained.values().stream().distinct().count(), "object files gained per container: " + gained);
    assertTrue(gained.get("hsm1") >= keys.size(), "object files gained per container: " + gained);
    JsonObject check = Keys.awaitConsistent(cluster, Duration.ofSeconds(30));

    // Crypto across HSMs, each request pinned to one HSM.
    long c0 = System.nanoTime();
    int checks = 0;
    PublicKey ec = Keys.publicKey(cluster, keys.get("EC_P256"));
    PublicKey rsa = Keys.publicKey(cluster, keys.get("RSA_2048"));
    for (int i = 0; i < HSMS.size(); i++) {
      String hsm = HSMS.get(i);
      String next = HSMS.get((i + 1) % HSMS.size());
      byte[] data = ("crypto on " + hsm).getBytes(StandardCharsets.UTF_8);
      JsonObject enc = cluster.request(on(hsm, new JsonObject().put("op", "encrypt").put("keyId", keys.get("AES_256"))
          .put("alg", "AES_GCM").put("plaintext", b64(data))));
      JsonObject dec = cluster.request(on(next, new JsonObject().put("op", "decrypt").put("keyId", keys.get("AES_256"))
          .put("alg", "AES_GCM").put("ciphertext", enc.getString("ciphertext")).put("iv", enc.getString("iv"))));
      assertEquals(b64(data), dec.getString("plaintext"), "encrypted on " + hsm + ", decrypted on " + next);
      JsonObject es = cluster.request(on(hsm, new JsonObject().put("op", "sign").put("keyId", keys.get("EC_P256"))
          .put("alg", "ECDSA_SHA256").put("message", b64(data))));
      assertTrue(Keys.verify(ec, "SHA256withECDSA", data, es.getString("signature")), "ECDSA from " + hsm);
      JsonObject rs = cluster.request(on(hsm, new JsonObject().put("op", "sign").put("keyId", keys.get("RSA_2048"))
          .put("alg", "RSA_PKCS1_SHA256").put("message", b64(data))));
      assertTrue(Keys.verify(rsa, "SHA256withRSA", data, rs.getString("signature")), "RSA from " + hsm);
      JsonObject mac = cluster.request(on(hsm, new JsonObject().put("op", "mac").put("keyId", keys.get("HMAC_SHA256"))
          .put("alg", "HMAC_SHA256").put("message", b64(data))));
      JsonObject mv = cluster.request(on(next, new JsonObject().put("op", "mac.verify").put("keyId", keys.get("HMAC_SHA256"))
          .put("alg", "HMAC_SHA256").put("message", b64(data)).put("mac", mac.getString("mac"))));
      assertTrue(mv.getBoolean("valid"), "HMAC made on " + hsm + ", verified on " + next);
      checks += 4;
    }
    assertNotEquals(0, checks);
    Report.note("(i) 4 keys (AES_256, EC_P256, RSA_2048, HMAC_SHA256) created through the bridge in " + createMs
        + " ms; on every HSM (pinned key.list/describe); token object files gained per container " + gained
        + "; cluster.check consistent, digests " + Keys.distinct(check.getJsonObject("digests")) + " distinct at sequence "
        + check.getLong("applied") + "; " + checks + " cross-HSM crypto checks in " + ms(c0) + " ms");
  }

  /**
   * Backups in containers (docs/backups.md): every HSM container mounts one shared store, so a backup one
   * HSM makes is there for the others (a joining or lagging HSM restores it, and the Raft log can be
   * compacted up to it). Made on hsm2, it is READY, and hsm1 and hsm3 see its file and list it.
   */
  @Test
  @Order(3)
  @Timeout(value = 180, unit = TimeUnit.SECONDS)
  void aBackupMadeInOneHsmContainerIsInTheStoreEveryHsmShares() {
    long t0 = System.nanoTime();
    JsonObject made = cluster.request(on("hsm2", new JsonObject().put("op", "backup.create")));
    assertEquals("READY", made.getString("state"), made.encodePrettily());
    assertEquals("hsm2", made.getString("sourceHsm"), made.encodePrettily());
    String id = made.getString("backupId");
    for (String hsm : HSMS) {
      Container.ExecResult r = cluster.exec(hsm, "test", "-s", ContainerCluster.BACKUP_DIR + "/" + id + ".hbk");
      assertEquals(0, r.getExitCode(), hsm + " does not see " + id + ".hbk in the shared store");
    }
    JsonObject listed = cluster.request(on("hsm3", new JsonObject().put("op", "backup.list")));
    assertTrue(listed.getJsonArray("backups").stream().map(JsonObject.class::cast)
        .anyMatch(b -> id.equals(b.getString("backupId")) && "READY".equals(b.getString("state"))), listed.encodePrettily());
    Report.note("(i) backup " + id + " made on hsm2 in " + ms(t0) + " ms (" + made.getLong("sizeBytes") + " bytes, index "
        + made.getLong("appliedIndex") + "); its file is in the store all three HSM containers share; hsm3 lists it READY");
  }

  /** Object files in each HSM container's token directory, counted inside the container. */
  /**
   * The object files in each HSM container's token directory, read until two reads 200 ms apart agree. A
   * record the agent replaces (its applied index, its audit anchor) is briefly two files: DataRecordStore
   * creates the new one before it destroys the old, and a CI run once counted {hsm1=12, hsm2=13, hsm3=12}.
   */
  private static Map<String, Integer> tokenObjects() {
    Map<String, Integer> last = countTokenObjects();
    for (int i = 0; i < 50; i++) {
      ContainerCluster.sleep(200);
      Map<String, Integer> now = countTokenObjects();
      if (now.equals(last)) {
        return now;
      }
      last = now;
    }
    return last;
  }

  private static Map<String, Integer> countTokenObjects() {
    Map<String, Integer> m = new TreeMap<>();
    for (String hsm : HSMS) {
      Container.ExecResult r = cluster.exec(hsm, "sh", "-c", "find /var/lib/hsmbridge/tokens -name '*.object' | wc -l");
      assertEquals(0, r.getExitCode(), hsm + ": " + r.getStderr());
      m.put(hsm, Integer.parseInt(r.getStdout().strip()));
    }
    return m;
  }
}
