package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.ErrorCode;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.TreeMap;
import java.util.function.BiFunction;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.Mechanism;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * The numbered generations of one rotated trusted key (the backup key, the cluster key; docs/backups.md,
 * "Rotating the backup key"). Generation 1 keeps the CKA_ID the key always had; generation n > 1 is
 * {@code <prefix><n>}. A rotation is made inside one HSM ({@link #prepare}: the SO makes the key as a
 * session object and wraps it under the carrier) and installed by every HSM's SO from the mutation log
 * ({@link #install}), so every HSM holds the same generations in log order. Older generations are kept.
 */
final class KeyGenerations {
  /** Far more than any cluster rotates in its life; bounds what a token listing is trusted for. */
  static final int MAX_GENERATION = 65_535; // a cluster key blob carries it in 2 bytes (ClusterKeys.markGeneration)

  private final String what;
  private final byte[] firstId;
  private final String idPrefix;
  private final String baseLabel;
  private final BiFunction<Integer, String, AttributeVector> template;

  /**
   * @param what how messages name the key ("backup key")
   * @param template the key's token template for a generation and label (trusted, public: the SO's)
   */
  KeyGenerations(String what, byte[] firstId, String idPrefix, String baseLabel,
      BiFunction<Integer, String, AttributeVector> template) {
    this.what = what;
    this.firstId = firstId.clone();
    this.idPrefix = idPrefix;
    this.baseLabel = baseLabel;
    this.template = template;
  }

  /** The CKA_ID of a generation (1 keeps the id the key always had). */
  byte[] id(int generation) {
    if (generation < 1 || generation > MAX_GENERATION) {
      throw HsmException.badParam("a " + what + " generation is 1.." + MAX_GENERATION + ", not " + generation);
    }
    return generation == 1 ? firstId.clone() : (idPrefix + generation).getBytes(StandardCharsets.US_ASCII);
  }

  /** The generation a CKA_ID names, or 0 when it is none of this key's. */
  int generationOf(byte[] id) {
    if (id == null) {
      return 0;
    }
    if (Arrays.equals(id, firstId)) {
      return 1;
    }
    String s = new String(id, StandardCharsets.US_ASCII);
    if (!s.startsWith(idPrefix) || !s.substring(idPrefix.length()).matches("[1-9][0-9]{0,5}")) {
      return 0;
    }
    int g = Integer.parseInt(s.substring(idPrefix.length()));
    return g >= 2 && g <= MAX_GENERATION ? g : 0;
  }

  /** The token template of a generation. */
  AttributeVector template(int generation, String label) {
    return template.apply(generation, label);
  }

  /** The label of generation 1, and of a generation installed without its rotation's label (a recovery). */
  String label(int generation) {
    return generation == 1 ? baseLabel : baseLabel + " g" + generation;
  }

  /** Generation to handle, in order, read from the token (trusted secret keys whose id names a generation). */
  TreeMap<Integer, Long> held(Session s) throws TokenException {
    TreeMap<Integer, Long> held = new TreeMap<>();
    for (long h : SearchGuard.find(s, new AttributeVector().class_(CKO_SECRET_KEY).trusted(true))) {
      int g;
      try {
        g = generationOf(s.getAttrValues(h, CKA_ID).id());
      } catch (PKCS11Exception e) {
        continue; // gone between find and read
      }
      if (g > 0) {
        held.put(g, h);
      }
    }
    return held;
  }

  /** The generations {@code s}'s token holds, oldest first. */
  List<Integer> list(Session s) throws TokenException {
    return List.copyOf(held(s).keySet());
  }

  /** The label of a generation the token holds, or null. */
  String labelOf(Session s, int generation) throws TokenException {
    long h = ClusterKeys.find(s, CKO_SECRET_KEY, id(generation));
    return h == KeyEntry.NONE ? null : s.getAttrValues(h, CKA_LABEL).label();
  }

  /**
   * Origin of a rotation: the SO makes the next generation as a session object and wraps it under the
   * carrier; nothing is stored in the token. The label carries a random rotation id.
   *
   * @throws HsmException NOT_ALLOWED_BY_POLICY when the token holds no generation of the key, or no carrier
   */
  NextGeneration prepare(SessionPool pool, PinSource soPin) {
    String rotation = HexFormat.of().formatHex(pool.call("random", s -> s.generateRandom(8)));
    return pool.callAsSecurityOfficer(soPin, "make the next " + what, s -> {
      TreeMap<Integer, Long> held = held(s);
      if (held.isEmpty()) {
        throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "this token holds no " + what + " to rotate");
      }
      long carrier = carrier(s);
      int next = held.lastKey() + 1;
      String label = label(next) + " " + rotation;
      long key = s.generateKey(new Mechanism(CKM_AES_KEY_GEN), template(next, label).token(false).valueLen(32));
      try {
        return new NextGeneration(next, label, s.wrapKey(Mechanisms.aesKeyWrapPad(), carrier, key));
      } finally {
        s.destroyObject(key);
      }
    });
  }

  /**
   * Every HSM, applying a rotation: the SO unwraps the generation under the carrier. Idempotent (the same
   * generation with the same label is already here). Decided from this token alone, so every HSM decides alike.
   *
   * @return false when the token held it already
   * @throws HsmException NOT_ALLOWED_BY_POLICY when the token holds this generation from another rotation, or
   *     no carrier; CRYPTO_FAILURE when the blob does not unwrap under the carrier
   */
  boolean install(SessionPool pool, PinSource soPin, int generation, String label, byte[] wrapped) {
    if (generation < 2) {
      throw HsmException.badParam("a rotation makes generation 2 or later, not " + generation);
    }
    byte[] id = id(generation);
    try {
      return pool.callAsSecurityOfficer(soPin, "install " + what + " generation " + generation, s -> {
        long existing = ClusterKeys.find(s, CKO_SECRET_KEY, id);
        if (existing != KeyEntry.NONE) {
          if (label.equals(s.getAttrValues(existing, CKA_LABEL).label())) {
            return false;
          }
          throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, what + " generation " + generation
              + " exists already, from another rotation: rotate again");
        }
        s.unwrapKey(Mechanisms.aesKeyWrapPad(), carrier(s), wrapped, template(generation, label));
        return true;
      });
    } catch (HsmException e) {
      throw ClusterKeys.unwrapFailure(e, what + " generation " + generation + " does not unwrap under the carrier");
    }
  }

  private static long carrier(Session s) throws TokenException {
    long carrier = ClusterKeys.find(s, CKO_SECRET_KEY, BackupKeys.CARRIER_ID);
    if (carrier == KeyEntry.NONE) {
      throw new HsmException(ErrorCode.NOT_ALLOWED_BY_POLICY, "this cluster has no key carrier (it was made before keys"
          + " could be rotated): restore a backup into a new cluster to get one");
    }
    return carrier;
  }
}
