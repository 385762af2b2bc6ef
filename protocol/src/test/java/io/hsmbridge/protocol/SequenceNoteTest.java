package io.hsmbridge.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class SequenceNoteTest {
  @Test
  void aNotedSequenceIsReadBackAndStripped() {
    String noted = SequenceNote.append("LOGIN_FAILED: wrong user name, password or MFA signature", 4711);
    SequenceNote.Read read = SequenceNote.read(noted);
    assertEquals("LOGIN_FAILED: wrong user name, password or MFA signature", read.message());
    assertEquals(4711, read.seq());
  }

  @Test
  void textWithoutANoteIsLeftAsItIs() {
    for (String text : new String[] {"USER_LOCKED: user alice is locked", "x [applied as sequence ]",
        "x [applied as sequence 12a]", "x [applied as sequence -3]", "x [applied as sequence 99999999999999999999]",
        "[other]", ""}) {
      SequenceNote.Read read = SequenceNote.read(text);
      assertEquals(text, read.message(), text);
      assertEquals(0, read.seq(), text);
    }
    assertEquals(0, SequenceNote.read(null).seq());
  }
}
