package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.*;

import io.hsmbridge.protocol.ErrorCode;
import java.util.Map;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.TokenException;

/** Translates PKCS#11 return values into hsmbridge's typed errors, in one table. */
public final class Ckr {
  private static final Map<Long, ErrorCode> TABLE = Map.ofEntries(
      Map.entry(CKR_PIN_INCORRECT, ErrorCode.TOKEN_LOGIN_FAILED),
      Map.entry(CKR_PIN_INVALID, ErrorCode.TOKEN_LOGIN_FAILED),
      Map.entry(CKR_PIN_LEN_RANGE, ErrorCode.TOKEN_LOGIN_FAILED),
      Map.entry(CKR_PIN_LOCKED, ErrorCode.TOKEN_LOGIN_FAILED),
      Map.entry(CKR_PIN_EXPIRED, ErrorCode.TOKEN_LOGIN_FAILED),
      Map.entry(CKR_USER_PIN_NOT_INITIALIZED, ErrorCode.TOKEN_LOGIN_FAILED),
      Map.entry(CKR_KEY_HANDLE_INVALID, ErrorCode.UNKNOWN_KEY),
      Map.entry(CKR_OBJECT_HANDLE_INVALID, ErrorCode.UNKNOWN_KEY),
      Map.entry(CKR_KEY_TYPE_INCONSISTENT, ErrorCode.WRONG_KEY_TYPE),
      Map.entry(CKR_KEY_FUNCTION_NOT_PERMITTED, ErrorCode.WRONG_KEY_TYPE),
      Map.entry(CKR_MECHANISM_INVALID, ErrorCode.WRONG_KEY_TYPE),
      Map.entry(CKR_KEY_NOT_WRAPPABLE, ErrorCode.NOT_ALLOWED_BY_POLICY),
      Map.entry(CKR_KEY_UNEXTRACTABLE, ErrorCode.NOT_ALLOWED_BY_POLICY),
      Map.entry(CKR_ENCRYPTED_DATA_INVALID, ErrorCode.CRYPTO_FAILURE),
      Map.entry(CKR_ENCRYPTED_DATA_LEN_RANGE, ErrorCode.CRYPTO_FAILURE),
      Map.entry(CKR_WRAPPED_KEY_INVALID, ErrorCode.CRYPTO_FAILURE),
      Map.entry(CKR_WRAPPED_KEY_LEN_RANGE, ErrorCode.CRYPTO_FAILURE),
      Map.entry(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, ErrorCode.WRONG_KEY_TYPE),
      Map.entry(CKR_WRAPPING_KEY_TYPE_INCONSISTENT, ErrorCode.WRONG_KEY_TYPE),
      Map.entry(CKR_SIGNATURE_INVALID, ErrorCode.CRYPTO_FAILURE),
      Map.entry(CKR_SIGNATURE_LEN_RANGE, ErrorCode.CRYPTO_FAILURE),
      Map.entry(CKR_MECHANISM_PARAM_INVALID, ErrorCode.INVALID_PARAMETER),
      Map.entry(CKR_DATA_LEN_RANGE, ErrorCode.INVALID_PARAMETER),
      Map.entry(CKR_DATA_INVALID, ErrorCode.INVALID_PARAMETER),
      Map.entry(CKR_ARGUMENTS_BAD, ErrorCode.INVALID_PARAMETER),
      Map.entry(CKR_TEMPLATE_INCONSISTENT, ErrorCode.INVALID_PARAMETER),
      Map.entry(CKR_ATTRIBUTE_VALUE_INVALID, ErrorCode.INVALID_PARAMETER),
      Map.entry(CKR_KEY_SIZE_RANGE, ErrorCode.INVALID_PARAMETER),
      Map.entry(CKR_DEVICE_ERROR, ErrorCode.TOKEN_UNAVAILABLE),
      Map.entry(CKR_DEVICE_REMOVED, ErrorCode.TOKEN_UNAVAILABLE),
      Map.entry(CKR_TOKEN_NOT_PRESENT, ErrorCode.TOKEN_UNAVAILABLE),
      Map.entry(CKR_SESSION_CLOSED, ErrorCode.TOKEN_UNAVAILABLE),
      Map.entry(CKR_SESSION_HANDLE_INVALID, ErrorCode.TOKEN_UNAVAILABLE),
      Map.entry(CKR_CRYPTOKI_NOT_INITIALIZED, ErrorCode.TOKEN_UNAVAILABLE),
      Map.entry(CKR_OPERATION_ACTIVE, ErrorCode.TOKEN_UNAVAILABLE),
      Map.entry(CKR_DEVICE_MEMORY, ErrorCode.TOKEN_UNAVAILABLE));

  private Ckr() {}

  /** The typed error for a CKR value; unknown values are INTERNAL. */
  public static ErrorCode errorCode(long ckr) {
    return TABLE.getOrDefault(ckr, ErrorCode.INTERNAL);
  }

  /** The symbolic name of a CKR value, e.g. {@code CKR_PIN_INCORRECT}. */
  public static String name(long ckr) {
    String n = ckrCodeToName(ckr);
    return n == null ? String.format("CKR_0x%08X", ckr) : n;
  }

  /**
   * Wraps a token exception. {@code what} names the operation ("sign", "login") and must hold no
   * secret; it is used in the client message.
   */
  public static HsmException wrap(TokenException e, String what) {
    if (e instanceof PKCS11Exception) {
      long ckr = ((PKCS11Exception) e).getErrorCode();
      ErrorCode code = errorCode(ckr);
      String name = name(ckr);
      String client = code == ErrorCode.INTERNAL ? what + " failed on the token" : what + " failed (" + name + ")";
      return new HsmException(code, client, ckr, what + ": " + name, e);
    }
    return new HsmException(ErrorCode.INTERNAL, what + " failed on the token", null, what + ": " + e.getMessage(), e);
  }
}
