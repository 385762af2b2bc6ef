package io.hsmbridge.cli;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/** A plain-text table with left-aligned columns two spaces apart, for terminal output. */
final class TextTable {
  private final List<String[]> rows = new ArrayList<>();
  private final int columns;

  TextTable(String... header) {
    this.columns = header.length;
    rows.add(header);
  }

  /** Adds a row; a null cell prints as "-". */
  TextTable row(Object... cells) {
    if (cells.length != columns) {
      throw new IllegalArgumentException("expected " + columns + " cells, got " + cells.length);
    }
    String[] r = new String[columns];
    for (int i = 0; i < columns; i++) {
      r[i] = cells[i] == null ? "-" : cells[i].toString();
    }
    rows.add(r);
    return this;
  }

  void print(PrintStream out, String indent) {
    int[] width = new int[columns];
    for (String[] r : rows) {
      for (int i = 0; i < columns; i++) {
        width[i] = Math.max(width[i], r[i].length());
      }
    }
    for (String[] r : rows) {
      StringBuilder b = new StringBuilder(indent);
      for (int i = 0; i < columns; i++) {
        b.append(r[i]);
        if (i < columns - 1) {
          b.append(" ".repeat(width[i] - r[i].length() + 2));
        }
      }
      out.println(b);
    }
  }
}
