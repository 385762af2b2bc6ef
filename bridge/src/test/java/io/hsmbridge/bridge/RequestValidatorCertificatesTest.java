package io.hsmbridge.bridge;

import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Op;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.Base64;
import org.junit.jupiter.api.Test;

/** The front door's shape and bounds checks of key.setCertificates / key.certificates (no HSM time spent). */
class RequestValidatorCertificatesTest {
  private static final String ID = "0123456789abcdef0123456789abcdef";

  private static JsonObject set(JsonArray certificates) {
    return new JsonObject().put("op", "key.setCertificates").put("keyId", ID).put("certificates", certificates);
  }

  private static String b64(int bytes) {
    return Base64.getEncoder().encodeToString(new byte[bytes]);
  }

  private static void refused(ErrorCode code, JsonObject body) {
    HsmException e = assertThrows(HsmException.class, () -> RequestValidator.validate(body));
    assertEquals(code, e.code(), e.getMessage());
  }

  @Test
  void wellFormedChainsPassAndEverythingElseIsRefusedAtTheDoor() {
    assertEquals(Op.KEY_SET_CERTIFICATES, RequestValidator.validate(set(new JsonArray())));
    JsonArray ten = new JsonArray();
    for (int i = 0; i < 10; i++) {
      ten.add(b64(6 * 1024));
    }
    assertEquals(Op.KEY_SET_CERTIFICATES, RequestValidator.validate(set(ten)), "10 entries, 60 KiB: the largest shape");
    assertEquals(Op.KEY_CERTIFICATES, RequestValidator.validate(new JsonObject().put("op", "key.certificates").put("keyId", ID)));

    refused(ErrorCode.BAD_REQUEST, new JsonObject().put("op", "key.setCertificates").put("keyId", ID));
    refused(ErrorCode.BAD_REQUEST, new JsonObject().put("op", "key.setCertificates").put("keyId", ID).put("certificates", b64(10)));
    refused(ErrorCode.BAD_REQUEST, set(new JsonArray().add(42)));
    refused(ErrorCode.BAD_REQUEST, set(new JsonArray().add("not base64!")));
    refused(ErrorCode.INVALID_PARAMETER, set(ten.copy().add(b64(10))));
    refused(ErrorCode.INVALID_PARAMETER, set(new JsonArray().add(b64(16 * 1024 + 1))));
    refused(ErrorCode.INVALID_PARAMETER, set(new JsonArray().add("A".repeat(1_000_000))));
    refused(ErrorCode.INVALID_PARAMETER, set(new JsonArray().add(b64(16 * 1024)).add(b64(16 * 1024)).add(b64(16 * 1024))
        .add(b64(16 * 1024)).add(b64(1))));
    refused(ErrorCode.INVALID_PARAMETER, set(new JsonArray().add("")));
    refused(ErrorCode.INVALID_PARAMETER, set(new JsonArray()).put("keyId", "0123"));
    refused(ErrorCode.INVALID_PARAMETER, set(new JsonArray()).put("onHsm", "hsm-1"));
    refused(ErrorCode.BAD_REQUEST, new JsonObject().put("op", "key.certificates"));
  }
}
