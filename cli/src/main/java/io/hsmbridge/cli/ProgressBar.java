package io.hsmbridge.cli;

import java.io.PrintStream;

/**
 * How far a long command got (a backup made or restored: keys of all), on standard error so that standard
 * output stays the command's result. On a terminal one bar redrawn in place; otherwise (a script, a log, a
 * test) a line at each tenth, so that a log shows progress without thousands of lines.
 */
final class ProgressBar {
  private static final int WIDTH = 30;

  private final PrintStream err;
  private final boolean terminal;
  private final String what;
  private int lastTenth = -1;
  private boolean drawn;

  /**
   * @param what the work and its unit, e.g. "backup-... made: keys"
   */
  ProgressBar(PrintStream err, boolean terminal, String what) {
    this.err = err;
    this.terminal = terminal;
    this.what = what;
  }

  /** {@code done} of {@code total} (total 0: nothing to count yet). */
  synchronized void update(long done, long total) {
    if (total <= 0) {
      return;
    }
    done = Math.min(Math.max(done, 0), total);
    int tenth = (int) (10 * done / total);
    if (terminal) {
      int filled = (int) (WIDTH * done / total);
      err.print("\r" + what + " [" + "#".repeat(filled) + ".".repeat(WIDTH - filled) + "] " + done + "/" + total);
      err.flush();
      drawn = true;
    } else if (tenth > lastTenth) {
      err.println(what + " " + done + " of " + total + " (" + 10 * tenth + " %)");
      err.flush();
    }
    lastTenth = Math.max(lastTenth, tenth);
  }

  /** Ends the bar's line (on a terminal). */
  synchronized void finish() {
    if (terminal && drawn) {
      err.println();
      err.flush();
      drawn = false;
    }
  }
}
