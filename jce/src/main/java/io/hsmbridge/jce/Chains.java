package io.hsmbridge.jce;

import io.hsmbridge.client.Hsm;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/** The certificate chains the cluster keeps beside key pairs ({@code key.certificates}, {@code key.setCertificates}). */
final class Chains {
  private Chains() {}

  static List<byte[]> read(Hsm h, String keyId) {
    JsonArray a = h.send(new JsonObject().put("op", "key.certificates").put("keyId", keyId)).getJsonArray("certificates");
    List<byte[]> out = new ArrayList<>();
    for (Object o : a) {
      out.add(Base64.getDecoder().decode((String) o));
    }
    return out;
  }

  static void write(Hsm h, String keyId, List<byte[]> der) {
    JsonArray a = new JsonArray();
    der.forEach(d -> a.add(Base64.getEncoder().encodeToString(d)));
    h.send(new JsonObject().put("op", "key.setCertificates").put("keyId", keyId).put("certificates", a));
  }
}
