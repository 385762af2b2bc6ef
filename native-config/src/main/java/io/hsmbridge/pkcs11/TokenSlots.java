package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKF_TOKEN_INITIALIZED;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKU_SO;

import io.hsmbridge.protocol.ErrorCode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.Slot;
import org.xipki.pkcs11.wrapper.Token;
import org.xipki.pkcs11.wrapper.TokenException;
import org.xipki.pkcs11.wrapper.TokenInfo;

/**
 * Finds a token by label or serial (never by slot index: SoftHSM2 derives slot ids from serials) and,
 * when asked, initialises a fresh token on a free slot. PINs go only to the token.
 */
final class TokenSlots {
  private TokenSlots() {}

  /** Finds the configured token, initialising it first when configured and absent. */
  static Token findOrInitialize(Pkcs11Library lib, TokenConfig config) {
    Token token = find(lib, config);
    if (token != null) {
      return token;
    }
    if (!config.initialize()) {
      throw new HsmException(ErrorCode.TOKEN_NOT_FOUND, "no token with " + config.describeToken()
          + " in " + lib.path() + "; tokens present: " + labels(lib));
    }
    initialize(lib, config);
    token = find(lib, config);
    if (token == null) {
      throw new HsmException(ErrorCode.TOKEN_NOT_FOUND, "token " + config.describeToken() + " not found after initialising it");
    }
    return token;
  }

  static Token find(Pkcs11Library lib, TokenConfig config) {
    try {
      for (Slot slot : lib.module().getSlotList(true)) {
        Token token = slot.getToken();
        TokenInfo info = token.getTokenInfo();
        if (!info.isTokenInitialized()) {
          continue;
        }
        boolean labelOk = config.tokenLabel() == null || config.tokenLabel().equals(info.getLabel().trim());
        boolean serialOk = config.tokenSerial() == null || config.tokenSerial().equals(info.getSerialNumber().trim());
        if (labelOk && serialOk) {
          return token;
        }
      }
      return null;
    } catch (TokenException e) {
      throw Ckr.wrap(e, "listing slots");
    }
  }

  private static List<String> labels(Pkcs11Library lib) {
    List<String> labels = new ArrayList<>();
    try {
      for (Slot slot : lib.module().getSlotList(true)) {
        TokenInfo info = slot.getToken().getTokenInfo();
        if (info.isTokenInitialized()) {
          labels.add("'" + info.getLabel().trim() + "'");
        }
      }
    } catch (TokenException e) {
      labels.add("(cannot list: " + Ckr.wrap(e, "listing").getMessage() + ")");
    }
    return labels;
  }

  /** C_InitToken on the first slot holding an uninitialised token, then C_InitPIN for the User. */
  private static void initialize(Pkcs11Library lib, TokenConfig config) {
    // Both PINs must be readable before C_InitToken: failing after it would leave an initialised token
    // without a User PIN, which no later start can repair.
    config.soPin().use(pin -> null);
    config.userPin().use(pin -> null);
    try {
      Slot free = null;
      for (Slot slot : lib.module().getSlotList(true)) {
        if ((slot.getToken().getTokenInfo().getFlags() & CKF_TOKEN_INITIALIZED) == 0) {
          free = slot;
          break;
        }
      }
      if (free == null) {
        throw new HsmException(ErrorCode.TOKEN_NOT_FOUND, "no free slot to initialise token " + config.describeToken());
      }
      long slotId = free.getSlotID();
      char[] label = Arrays.copyOf(config.tokenLabel().toCharArray(), 32);
      Arrays.fill(label, config.tokenLabel().length(), 32, ' ');
      config.soPin().use(so -> {
        lib.module().getPKCS11Module().C_InitToken(slotId, so, label, true);
        return null;
      });
      Token token = find(lib, config);
      if (token == null) {
        throw new HsmException(ErrorCode.TOKEN_NOT_FOUND, "token vanished after C_InitToken");
      }
      Session session = token.openSession(true);
      try {
        config.soPin().use(so -> {
          session.login(CKU_SO, so);
          return null;
        });
        config.userPin().use(user -> {
          session.initPIN(user);
          return null;
        });
        session.logout();
      } finally {
        session.closeSession();
      }
    } catch (iaik.pkcs.pkcs11.wrapper.PKCS11Exception e) {
      throw Ckr.wrap(new org.xipki.pkcs11.wrapper.PKCS11Exception(e.getErrorCode()), "initialising token");
    } catch (TokenException e) {
      throw Ckr.wrap(e, "initialising token");
    }
  }
}
