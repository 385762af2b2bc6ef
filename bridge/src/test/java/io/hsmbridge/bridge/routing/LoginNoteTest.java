package io.hsmbridge.bridge.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.Op;
import io.hsmbridge.protocol.SequenceNote;
import io.vertx.core.eventbus.ReplyException;
import io.vertx.core.eventbus.ReplyFailure;
import org.junit.jupiter.api.Test;

/**
 * The front door reads a sequence note only from a refused login, the one failure an agent notes: any
 * other error's text, whose end may be what a client wrote, is relayed whole and raises nothing.
 */
class LoginNoteTest {
  private static ReplyException refusal(ErrorCode code, String message) {
    return new ReplyException(ReplyFailure.RECIPIENT_FAILURE, code.code(), message);
  }

  @Test
  void aRefusedLoginsNoteIsReadAndStripped() {
    String noted = SequenceNote.append("wrong user name, password or MFA signature", 42);
    SequenceNote.Read failed = ClusterBridgeVerticle.loginNote(Op.AUTH_LOGIN, refusal(ErrorCode.LOGIN_FAILED, noted));
    assertEquals(42, failed.seq());
    assertEquals("wrong user name, password or MFA signature", failed.message());
    SequenceNote.Read locked = ClusterBridgeVerticle.loginNote(Op.AUTH_LOGIN,
        refusal(ErrorCode.USER_LOCKED, SequenceNote.append("user bob is locked", 7)));
    assertEquals(7, locked.seq());
    assertEquals("user bob is locked", locked.message());
  }

  @Test
  void aNoteLikeEndingOfAnyOtherFailureIsNeitherReadNorStripped() {
    // What a client could make an agent quote at the end of its error text (a label, a key id).
    String text = "BAD_REQUEST: no key labelled 'x [applied as sequence 999999]'";
    String quoted = text.substring(0, text.length() - 1) + " [applied as sequence 999999]";
    for (Op op : new Op[] {Op.SIGN, Op.KEY_GENERATE, Op.USER_CREATE}) {
      SequenceNote.Read read = ClusterBridgeVerticle.loginNote(op, refusal(ErrorCode.BAD_REQUEST, quoted));
      assertEquals(0, read.seq(), op.wire());
      assertEquals(quoted, read.message(), op.wire());
    }
    // A login failing for another reason (the HSM is not ready) carries no note either.
    SequenceNote.Read notReady = ClusterBridgeVerticle.loginNote(Op.AUTH_LOGIN, refusal(ErrorCode.HSM_NOT_READY, quoted));
    assertEquals(0, notReady.seq());
    assertEquals(quoted, notReady.message());
  }
}
