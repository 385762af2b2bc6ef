package io.hsmbridge.containers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.json.JsonObject;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.time.Duration;
import java.util.Base64;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/** Key and crypto requests of the scenarios, and the checks that a key is on every HSM. */
final class Keys {
  private Keys() {}

  static String generate(ContainerCluster c, String spec, String label) {
    return c.request(new JsonObject().put("op", "key.generate").put("spec", spec).put("label", label)).getString("keyId");
  }

  static JsonObject on(String hsm, JsonObject body) {
    return body.put("onHsm", hsm);
  }

  /** The key ids {@code key.list} shows on {@code hsm} alone (a pinned read: no failover). */
  static Set<String> keyIdsOn(ContainerCluster c, String hsm) {
    JsonObject reply = c.request(on(hsm, new JsonObject().put("op", "key.list")));
    assertEquals(hsm, reply.getString("servedBy"));
    Set<String> ids = new HashSet<>();
    reply.getJsonArray("keys").forEach(k -> ids.add(((JsonObject) k).getString("keyId")));
    return ids;
  }

  /** Which of {@code keyIds} each HSM lacks (empty lists when every HSM holds all of them). */
  static Map<String, List<String>> missing(ContainerCluster c, Collection<String> keyIds) {
    Map<String, List<String>> m = new TreeMap<>();
    for (String hsm : ContainerCluster.HSMS) {
      Set<String> on = keyIdsOn(c, hsm);
      m.put(hsm, keyIds.stream().filter(k -> !on.contains(k)).toList());
    }
    return m;
  }

  static void assertOnEveryHsm(ContainerCluster c, Collection<String> keyIds, String what) {
    Map<String, List<String>> missing = missing(c, keyIds);
    missing.forEach((hsm, ids) -> assertTrue(ids.isEmpty(), hsm + " lacks " + ids.size() + " of " + keyIds.size()
        + " " + what + ": " + ids.subList(0, Math.min(10, ids.size()))));
  }

  /** Waits until every HSM reports the same applied sequence in cluster.status. */
  static void awaitAppliedEverywhere(ContainerCluster c, Duration limit) {
    c.await("one applied sequence on " + ContainerCluster.HSMS, limit, 200, c::hsmStatus,
        st -> ContainerCluster.HSMS.stream().allMatch(st::containsKey)
            && ContainerCluster.HSMS.stream().map(h -> st.get(h).getLong("applied")).distinct().count() == 1);
  }

  /** cluster.check until it compares every HSM, skips none and finds one object digest (and one for users). */
  static JsonObject awaitConsistent(ContainerCluster c, Duration limit) {
    return c.await("cluster.check: one digest for " + ContainerCluster.HSMS, limit, 500,
        () -> c.request(new JsonObject().put("op", "cluster.check")),
        r -> r.getBoolean("consistent", false)
            && r.getJsonObject("digests").fieldNames().containsAll(ContainerCluster.HSMS)
            && r.getJsonArray("skipped").isEmpty()
            && distinct(r.getJsonObject("digests")) == 1);
  }

  static long distinct(JsonObject digests) {
    return digests.getMap().values().stream().distinct().count();
  }

  static PublicKey publicKey(ContainerCluster c, String keyId) {
    JsonObject r = c.request(new JsonObject().put("op", "key.publicKey").put("keyId", keyId));
    byte[] spki = Base64.getDecoder().decode(r.getString("spki"));
    for (String alg : List.of("EC", "RSA")) {
      try {
        return KeyFactory.getInstance(alg).generatePublic(new X509EncodedKeySpec(spki));
      } catch (Exception e) {
        // try the next algorithm
      }
    }
    throw new AssertionError("cannot read the public key of " + keyId);
  }

  static boolean verify(PublicKey pub, String alg, byte[] data, String signatureB64) {
    try {
      Signature v = Signature.getInstance(alg);
      v.initVerify(pub);
      v.update(data);
      return v.verify(Base64.getDecoder().decode(signatureB64));
    } catch (Exception e) {
      return false;
    }
  }

  static String b64(byte[] b) {
    return Base64.getEncoder().encodeToString(b);
  }

  static String b64(String s) {
    return b64(s.getBytes(StandardCharsets.UTF_8));
  }
}
