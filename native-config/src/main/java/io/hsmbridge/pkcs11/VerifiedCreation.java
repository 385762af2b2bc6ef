package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.ErrorCode;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.logging.Logger;
import org.xipki.pkcs11.wrapper.AttributeVector;
import org.xipki.pkcs11.wrapper.KeyPairTemplate;
import org.xipki.pkcs11.wrapper.Mechanism;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.PKCS11KeyPair;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.TokenException;
import org.xipki.pkcs11.wrapper.attrs.Attribute;

/**
 * Creation of token objects that checks what the token stored: every attribute the template asked for is
 * read back from the new object and compared; an object that differs is destroyed and made again.
 *
 * <p>Why: SoftHSM2 2.6.1 can store a new token object with some of the template's attributes replaced by
 * their defaults, and report success. A new object is written to its file several times before the template
 * is applied (each default attribute, outside any transaction); a search in another thread meanwhile sees the
 * file change and re-reads the object in memory (ObjectFile::refresh: drop every attribute, then read the
 * file), and when that re-read overlaps the creator's transaction the attributes the creator had set so far
 * are lost, and its commit writes the defaults in their place. Measured with 4 threads scanning beside one
 * writer and no guard: 1 record in 1,832 stored with CKA_TOKEN false, CKA_MODIFIABLE true and no CKA_VALUE,
 * invisible to every search for it; with this check and still no guard, 2 caught in 2,121 and made again. In a
 * 3-HSM cluster the HSM that made such a record dropped the ACL once its settles confirmed the token did not
 * hold it ({@code cluster check}: users inconsistent). On a key the same race could lose CKA_SENSITIVE or
 * CKA_EXTRACTABLE=false. It can also surface as CKR_GENERAL_ERROR or CKR_TEMPLATE_INCONSISTENT from the
 * creation itself (seen in agents' logs): those are tried again too (not for an unwrap, where they also mean a
 * blob that does not unwrap). After {@link #ATTEMPTS} attempts the error stands (TOKEN_UNAVAILABLE).
 *
 * <p>The check alone is not enough (a key passed it and was missing from a later rescan), so the creation runs
 * under {@link SearchGuard}, which keeps this process's searches away from it; the check catches what the
 * guard cannot (another process on the token, a vendor library with a bug of its own).
 *
 * <p>Session objects ({@code CKA_TOKEN} false) live in memory and are not checked; nor are creations made while
 * logged in as SO, which hold every session of the pool (no other thread searches meanwhile). Never logs a
 * value: only the names of the attributes that differed.
 */
final class VerifiedCreation {
  private static final Logger LOG = Logger.getLogger(VerifiedCreation.class.getName());
  static final int ATTEMPTS = 3;
  /**
   * Not compared: sizes the token works out itself (and does not record for an unwrapped key); attribute maps
   * (CKA_UNWRAP_TEMPLATE, ...: the wrapper reads them back as new objects that do not compare equal); and
   * CKA_EC_POINT, which did not compare equal on SoftHSM2 for an imported public key that is fine (an encoding
   * difference, not investigated further).
   */
  private static final Set<Long> NOT_COMPARED = Set.of(CKA_VALUE_LEN, CKA_MODULUS_BITS, CKA_UNWRAP_TEMPLATE,
      CKA_WRAP_TEMPLATE, CKA_DERIVE_TEMPLATE, CKA_EC_POINT);

  private VerifiedCreation() {}

  static long createObject(Session s, AttributeVector template) throws TokenException {
    return made(s, "create object", true, () -> new long[] {s.createObject(template)}, template)[0];
  }

  static long generateKey(Session s, Mechanism mechanism, AttributeVector template) throws TokenException {
    return made(s, "generate key", true, () -> new long[] {s.generateKey(mechanism, template)}, template)[0];
  }

  static PKCS11KeyPair generateKeyPair(Session s, Mechanism mechanism, KeyPairTemplate template) throws TokenException {
    long[] h = made(s, "generate key pair", true, () -> {
      PKCS11KeyPair pair = s.generateKeyPair(mechanism, template);
      return new long[] {pair.getPublicKey(), pair.getPrivateKey()};
    }, template.publicKey(), template.privateKey());
    return new PKCS11KeyPair(h[0], h[1]);
  }

  static long unwrapKey(Session s, Mechanism mechanism, long unwrappingKey, byte[] wrapped, AttributeVector template)
      throws TokenException {
    // Not tried again on an error: for a blob that does not unwrap SoftHSM2 says CKR_GENERAL_ERROR too.
    return made(s, "unwrap key", false, () -> new long[] {s.unwrapKey(mechanism, unwrappingKey, wrapped, template)},
        template)[0];
  }

  /**
   * {@code attempt} gives the handles it made in the order of the templates they must match; with
   * {@code againOnError}, a failure that may be SoftHSM2's race ({@link #mayBeTheRace}) is tried again.
   */
  private static long[] made(Session s, String what, boolean againOnError, SearchGuard.Creation<long[]> attempt,
      AttributeVector... templates) throws TokenException {
    boolean onToken = false;
    for (AttributeVector t : templates) {
      onToken |= Boolean.TRUE.equals(t.token());
    }
    for (int n = 1; ; n++) {
      long[] handles;
      try {
        handles = SearchGuard.creating(attempt);
      } catch (PKCS11Exception e) {
        if (!onToken || !againOnError || n == ATTEMPTS || !mayBeTheRace(e)) {
          throw e;
        }
        LOG.info(what + " failed (" + Ckr.name(e.getErrorCode()) + "), attempt " + n + " of " + ATTEMPTS + "; trying again");
        continue;
      }
      if (!onToken) {
        return handles;
      }
      List<String> differing = differing(s, handles, templates);
      if (differing.isEmpty()) {
        return handles;
      }
      for (long h : handles) {
        destroyQuietly(s, h);
      }
      LOG.warning("the token stored the new object(s) of a " + what + " with " + differing + " other than asked"
          + " (attempt " + n + " of " + ATTEMPTS + "); destroyed them" + (n < ATTEMPTS ? ", trying again" : ""));
      if (n == ATTEMPTS) {
        throw new HsmException(ErrorCode.TOKEN_UNAVAILABLE, what + " failed: the token stored other attributes than"
            + " asked " + ATTEMPTS + " times");
      }
    }
  }

  /** What SoftHSM2's creation race also reports as a plain failure of the creation. */
  private static boolean mayBeTheRace(PKCS11Exception e) {
    return e.getErrorCode() == CKR_GENERAL_ERROR || e.getErrorCode() == CKR_TEMPLATE_INCONSISTENT;
  }

  /** The names of the template attributes that object {@code handles[i]} does not hold as {@code templates[i]} asked. */
  static List<String> differing(Session s, long[] handles, AttributeVector... templates) {
    List<String> out = new ArrayList<>();
    for (int i = 0; i < handles.length; i++) {
      List<Attribute> asked = new ArrayList<>();
      for (Attribute a : templates[i].snapshot()) {
        if (!NOT_COMPARED.contains(a.type())) {
          asked.add(a);
        }
      }
      long[] types = asked.stream().mapToLong(Attribute::type).toArray();
      AttributeVector stored;
      try {
        stored = s.getAttrValues(handles[i], types);
      } catch (TokenException | RuntimeException e) {
        out.add("unreadable attributes (" + e.getClass().getSimpleName() + ")");
        continue;
      }
      for (Attribute a : asked) {
        Attribute now = stored.getAttribute(a.type());
        if (now == null || !Objects.deepEquals(a.getValue(), now.getValue())) {
          out.add(ckaName(a.type()));
        }
      }
    }
    return out;
  }

  private static String ckaName(long type) {
    String name = ckaCodeToName(type);
    return name == null ? String.format("CKA_0x%08X", type) : name;
  }

  private static void destroyQuietly(Session s, long handle) {
    try {
      s.destroyObject(handle);
    } catch (TokenException | RuntimeException ignored) {
      // what matters is the object that differed; a leftover is an unmatched object the scans skip
    }
  }
}
