package io.hsmbridge.pkcs11;

import java.util.logging.Level;
import java.util.logging.Logger;
import org.xipki.pkcs11.wrapper.StaticLogger;

/**
 * Routes the PKCS#11 wrapper's own logging (by default printed to stdout, which would corrupt
 * machine-readable output such as {@code bench --csv}) to java.util.logging, one level down: its
 * per-call INFO lines are debugging detail for us.
 */
final class WrapperLogging implements org.xipki.pkcs11.wrapper.Logger {
  private static final Logger LOG = Logger.getLogger("org.xipki.pkcs11");
  private static boolean installed;

  private WrapperLogging() {}

  static synchronized void install() {
    if (!installed) {
      StaticLogger.setLogger(new WrapperLogging());
      installed = true;
    }
  }

  private static void log(Level level, String format, Object... args) {
    if (LOG.isLoggable(level)) {
      LOG.log(level, format(format, args));
    }
  }

  /** The wrapper uses SLF4J-style "{}" placeholders. */
  private static String format(String format, Object... args) {
    if (format == null || args == null || args.length == 0) {
      return format;
    }
    StringBuilder b = new StringBuilder();
    int from = 0;
    int arg = 0;
    for (int at; (at = format.indexOf("{}", from)) >= 0 && arg < args.length; from = at + 2) {
      b.append(format, from, at).append(args[arg++]);
    }
    return b.append(format.substring(from)).toString();
  }

  @Override
  public void info(String format, Object... args) {
    log(Level.FINE, format, args);
  }

  @Override
  public void warn(String format, Object... args) {
    log(Level.WARNING, format, args);
  }

  @Override
  public void error(String format, Object... args) {
    log(Level.SEVERE, format, args);
  }

  @Override
  public void debug(String format, Object... args) {
    log(Level.FINER, format, args);
  }

  @Override
  public void trace(String format, Object... args) {
    log(Level.FINEST, format, args);
  }

  @Override
  public boolean isDebugEnabled() {
    return LOG.isLoggable(Level.FINER);
  }

  @Override
  public boolean isInfoEnabled() {
    return LOG.isLoggable(Level.FINE);
  }

  @Override
  public boolean isWarnEnabled() {
    return LOG.isLoggable(Level.WARNING);
  }

  @Override
  public boolean isTraceEnabled() {
    return LOG.isLoggable(Level.FINEST);
  }
}
