package io.hsmbridge.pkcs11;

import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_OBJECT_HANDLE_INVALID;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_USER_ALREADY_LOGGED_IN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKR_USER_NOT_LOGGED_IN;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKS_RW_USER_FUNCTIONS;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKU_SO;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CKU_USER;
import static org.xipki.pkcs11.wrapper.PKCS11Constants.CK_EFFECTIVELY_INFINITE;

import io.hsmbridge.protocol.ErrorCode;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.xipki.pkcs11.wrapper.PKCS11Exception;
import org.xipki.pkcs11.wrapper.Session;
import org.xipki.pkcs11.wrapper.Token;
import org.xipki.pkcs11.wrapper.TokenException;

/**
 * A pool of logged-in read/write sessions on one token. Each session has one borrower at a time (two
 * threads on one session crash SoftHSM2). The pool is capped by the smaller of the configured limit
 * and the token's max session count; borrowers wait up to the borrow timeout, then get
 * SESSION_POOL_EXHAUSTED. A session whose call failed on the token is closed instead of returned: a
 * failed call can leave an operation active on it (SoftHSM2 answers CKR_ARGUMENTS_BAD without ending
 * the operation, and every later call on that session then fails with CKR_OPERATION_ACTIVE). Login is
 * per token per process: a fresh session logs in when the token is not already in the User state, and
 * a call that meets CKR_USER_NOT_LOGGED_IN logs in again and is retried once.
 *
 * <p>{@link #loginNow()} also opens an anchor session that is never lent out and stays open until
 * {@link #close()}. Closing an application's last session on a token logs it out, and SoftHSM2 then
 * drops every object handle it gave out: without the anchor, discarding one broken session of a
 * one-session pool would invalidate the whole key handle cache.
 *
 * <p>Thread-safe. Calls block: never use this from an event loop.
 */
public final class SessionPool implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(SessionPool.class.getName());

  /** Work done with a session; may throw the token's exceptions. */
  @FunctionalInterface
  public interface SessionWork<T> {
    T apply(Session session) throws TokenException;
  }

  private final Token token;
  private final PinSource userPin;
  private final int capacity;
  private final Duration borrowTimeout;
  private final Semaphore permits;
  private final Deque<Session> idle = new ArrayDeque<>();
  private Session anchor;
  private volatile boolean closed;

  SessionPool(Token token, PinSource userPin, int configuredMax, Duration borrowTimeout) {
    this.token = token;
    this.userPin = userPin;
    this.capacity = capacity(token, configuredMax);
    this.borrowTimeout = borrowTimeout;
    this.permits = new Semaphore(capacity, true);
  }

  private static int capacity(Token token, int configuredMax) {
    try {
      long tokenMax = token.getTokenInfo().getMaxSessionCount();
      if (tokenMax == CK_EFFECTIVELY_INFINITE || tokenMax < 0 || tokenMax > Integer.MAX_VALUE) {
        return configuredMax;
      }
      // one of the token's sessions is the anchor
      return (int) Math.max(1, Math.min(configuredMax, tokenMax - 1));
    } catch (TokenException e) {
      throw Ckr.wrap(e, "reading token info");
    }
  }

  /** The number of sessions this pool may open at once. */
  public int capacity() {
    return capacity;
  }

  /** Sessions currently lent out. */
  public int inUse() {
    return capacity - permits.availablePermits();
  }

  /**
   * Opens the anchor session and logs the User in now, so a wrong PIN fails start-up instead of the
   * first request.
   */
  synchronized void loginNow() {
    if (closed) {
      throw new HsmException(ErrorCode.TOKEN_UNAVAILABLE, "token session pool is closed");
    }
    if (anchor == null) {
      anchor = open();
    }
  }

  /**
   * Borrows a session, runs {@code work}, returns the session. Token errors become
   * {@link HsmException}s named after {@code what} (which must hold no secret).
   */
  public <T> T call(String what, SessionWork<T> work) {
    Session session = borrow();
    boolean broken = false;
    try {
      try {
        return work.apply(session);
      } catch (PKCS11Exception e) {
        if (e.getErrorCode() == CKR_OBJECT_HANDLE_INVALID) {
          // SoftHSM2 rewrites a token object's file when an attribute changes (a relabel applied from the
          // log); a call that reads the object at that moment finds it invalid for an instant (seen: an
          // encrypt beside a relabel). A handle that is really gone fails the same way again.
          pauseBriefly();
          return work.apply(session);
        }
        if (e.getErrorCode() != CKR_USER_NOT_LOGGED_IN) {
          throw e;
        }
        login(session);
        return work.apply(session);
      }
    } catch (TokenException e) {
      // The session may still hold the failed operation (or be dead): never lend it again.
      broken = true;
      throw Ckr.wrap(e, what);
    } catch (RuntimeException e) {
      broken = !(e instanceof HsmException);
      throw e;
    } finally {
      release(session, broken);
    }
  }

  /** Run after each piece of SO work, on the User's session, before any other work may borrow one. */
  private volatile SessionWork<?> afterSecurityOfficer;

  /**
   * Registers what re-resolves cached handles to private objects after SO work (SoftHSM2 invalidates them
   * when the User is logged out): {@link #callAsSecurityOfficer} runs it before it lets other work in.
   * It must not borrow a session (it gets one) nor take a lock that work waiting for a session holds.
   */
  void afterSecurityOfficer(SessionWork<?> refresh) {
    this.afterSecurityOfficer = refresh;
  }

  private static void pauseBriefly() {
    try {
      Thread.sleep(2);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /**
   * Runs {@code work} logged in as the token's Security Officer, with the whole pool held so no User
   * work runs meanwhile: PKCS#11 allows one login state per application, so the User is logged out for
   * the duration and logged in again afterwards, whatever happens. SoftHSM2 invalidates handles to
   * private objects on logout, so callers must re-resolve cached handles after this returns.
   */
  public <T> T callAsSecurityOfficer(PinSource soPin, String what, SessionWork<T> work) {
    if (soPin == null) {
      throw new HsmException(ErrorCode.CONFIG_INVALID, what + " needs the token's SO PIN (pin.so.file or pin.so.env)");
    }
    try {
      if (!permits.tryAcquire(capacity, borrowTimeout.toMillis() * 4, TimeUnit.MILLISECONDS)) {
        throw new HsmException(ErrorCode.SESSION_POOL_EXHAUSTED, what + ": token sessions stayed busy");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new HsmException(ErrorCode.TOKEN_UNAVAILABLE, "interrupted while waiting for the token");
    }
    try {
      synchronized (this) {
        if (anchor == null || closed) {
          throw new HsmException(ErrorCode.TOKEN_UNAVAILABLE, "token session pool is not open");
        }
        Session s = anchor;
        try {
          logoutTolerant(s);
          soPin.use(pin -> {
            s.login(CKU_SO, pin);
            return null;
          });
          try {
            return work.apply(s);
          } finally {
            logoutTolerant(s);
          }
        } catch (TokenException e) {
          throw Ckr.wrap(e, what);
        } finally {
          try {
            login(s);
            // Still holding every session: no User work ran with the handles the logout killed, and none
            // runs before they are found again (seen: a key creation's HMAC failed with
            // CKR_OBJECT_HANDLE_INVALID right after a backup's SO step).
            SessionWork<?> refresh = afterSecurityOfficer;
            if (refresh != null) {
              refresh.apply(s);
            }
          } catch (TokenException e) {
            throw Ckr.wrap(e, "login to token after SO work");
          }
        }
      }
    } finally {
      permits.release(capacity);
    }
  }

  private static void logoutTolerant(Session s) throws TokenException {
    try {
      s.logout();
    } catch (PKCS11Exception e) {
      if (e.getErrorCode() != CKR_USER_NOT_LOGGED_IN) {
        throw e;
      }
    }
  }

  private Session borrow() {
    if (closed) {
      throw new HsmException(ErrorCode.TOKEN_UNAVAILABLE, "token session pool is closed");
    }
    try {
      if (!permits.tryAcquire(borrowTimeout.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new HsmException(ErrorCode.SESSION_POOL_EXHAUSTED,
            "all " + capacity + " token sessions busy for " + borrowTimeout.toMillis() + " ms");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new HsmException(ErrorCode.TOKEN_UNAVAILABLE, "interrupted while waiting for a token session");
    }
    try {
      Session session;
      synchronized (idle) {
        session = idle.pollFirst();
      }
      return session != null ? session : open();
    } catch (RuntimeException e) {
      permits.release();
      throw e;
    }
  }

  private Session open() {
    try {
      Session session = token.openSession(true);
      try {
        if (session.getSessionInfo().getState() != CKS_RW_USER_FUNCTIONS) {
          login(session);
        }
        return session;
      } catch (TokenException | RuntimeException e) {
        closeQuietly(session);
        throw e;
      }
    } catch (TokenException e) {
      throw Ckr.wrap(e, "opening a token session");
    }
  }

  private void login(Session session) throws TokenException {
    try {
      userPin.use(pin -> {
        session.login(CKU_USER, pin);
        return null;
      });
    } catch (PKCS11Exception e) {
      if (e.getErrorCode() != CKR_USER_ALREADY_LOGGED_IN) {
        HsmException h = Ckr.wrap(e, "login to token");
        throw new HsmException(ErrorCode.TOKEN_LOGIN_FAILED, h.getMessage(), h.ckr(), h.serverDetail(), null);
      }
    }
  }

  private void release(Session session, boolean broken) {
    try {
      if (broken || closed) {
        closeQuietly(session);
      } else {
        synchronized (idle) {
          idle.addFirst(session);
        }
      }
    } finally {
      permits.release();
    }
  }

  private static void closeQuietly(Session session) {
    try {
      session.closeSession();
    } catch (TokenException | RuntimeException e) {
      LOG.log(Level.FINE, "closing a broken session failed", e);
    }
  }

  @Override
  public void close() {
    closed = true;
    synchronized (idle) {
      while (!idle.isEmpty()) {
        closeQuietly(idle.pollFirst());
      }
    }
    synchronized (this) {
      if (anchor != null) {
        closeQuietly(anchor);
        anchor = null;
      }
    }
  }
}
