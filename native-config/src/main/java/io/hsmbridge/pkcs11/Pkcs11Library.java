package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_CRYPTOKI_ALREADY_INITIALIZED;

import io.hsmbridge.protocol.ErrorCode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.xipki.pkcs11.wrapper.ModuleInfo;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.PKCS11Module;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * A loaded and initialised PKCS#11 library. A library can be initialised once per process, so
 * instances are shared per real path. {@code C_Initialize} is called with CKF_OS_LOCKING_OK (the
 * wrapper's default): without it SoftHSM2 runs without locks and crashes under threads.
 */
public final class Pkcs11Library {
  private static final Map<Path, Pkcs11Library> LOADED = new HashMap<>();

  private final Path path;
  private final PKCS11Module module;
  private final ModuleInfo info;

  private Pkcs11Library(Path path, PKCS11Module module, ModuleInfo info) {
    this.path = path;
    this.module = module;
    this.info = info;
  }

  /** Loads (once per process) and initialises the library at {@code path}. */
  public static synchronized Pkcs11Library load(Path path) {
    WrapperLogging.install();
    Path real;
    try {
      real = path.toRealPath();
    } catch (IOException e) {
      throw new HsmException(ErrorCode.TOKEN_NOT_FOUND, "PKCS#11 library " + path + " does not exist"
          + (path.toString().contains("softhsm") ? " (install the softhsm2 package)" : ""));
    }
    Pkcs11Library loaded = LOADED.get(real);
    if (loaded != null) {
      return loaded;
    }
    if (!Files.isRegularFile(real)) {
      throw new HsmException(ErrorCode.TOKEN_NOT_FOUND, "PKCS#11 library " + path + " is not a file");
    }
    try {
      PKCS11Module module = PKCS11Module.getInstance(real.toString());
      try {
        module.initialize();
      } catch (PKCS11Exception e) {
        if (e.getErrorCode() != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
          throw e;
        }
      }
      Pkcs11Library lib = new Pkcs11Library(real, module, module.getInfo());
      LOADED.put(real, lib);
      return lib;
    } catch (IOException e) {
      throw new HsmException(ErrorCode.TOKEN_NOT_FOUND, "cannot load PKCS#11 library " + path + ": " + e.getMessage());
    } catch (TokenException e) {
      throw Ckr.wrap(e, "initialising PKCS#11 library " + path);
    }
  }

  public Path path() {
    return path;
  }

  PKCS11Module module() {
    return module;
  }

  public String manufacturer() {
    return info.getManufacturerID().trim();
  }

  public String description() {
    return info.getLibraryDescription().trim();
  }

  public int versionMajor() {
    return info.getLibraryVersion().getMajor() & 0xff;
  }

  public int versionMinor() {
    return info.getLibraryVersion().getMinor() & 0xff;
  }

  @Override
  public String toString() {
    return "Pkcs11Library[" + path + ", " + description() + " " + versionMajor() + "." + versionMinor() + "]";
  }
}
