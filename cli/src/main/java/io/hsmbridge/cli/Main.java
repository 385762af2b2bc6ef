package io.hsmbridge.cli;

import io.hsmbridge.client.HsmBridgeException;
import java.io.PrintWriter;
import java.util.Arrays;
import picocli.CommandLine;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.UnmatchedArgumentException;

/**
 * Entry point of {@code hsmbridge}. Every error is one line {@code hsmbridge: <message>} on stderr
 * with a nonzero exit code; stack traces only with {@code --debug} or {@code HSMBRIDGE_DEBUG=1}.
 */
public final class Main {
  private static final String PREFIX = "hsmbridge: ";

  private Main() {}

  public static void main(String[] args) {
    System.exit(run(args, Cli.system()));
  }

  /** Runs one command line and returns its exit code; never calls System.exit. */
  static int run(String[] args, Cli cli) {
    boolean debug = cli.debugFromEnv() || Arrays.asList(args).contains("--debug");
    CommandLine cl = new CommandLine(new HsmbridgeCommand(cli));
    cl.setOut(new PrintWriter(cli.out(), true));
    cl.setErr(new PrintWriter(cli.err(), true));
    cl.setCaseInsensitiveEnumValuesAllowed(true);
    cl.setParameterExceptionHandler((ex, a) -> {
      cli.err().println(PREFIX + oneLine(usageMessage(ex)) + helpHint(ex));
      if (debug) {
        ex.printStackTrace(cli.err());
      }
      return ExitCodes.USAGE;
    });
    cl.setExecutionExceptionHandler((ex, cmd, parsed) -> {
      int code;
      String message;
      if (ex instanceof CliException c) {
        code = c.exitCode();
        message = c.getMessage();
      } else if (ex instanceof HsmBridgeException h) {
        code = ExitCodes.FAILURE;
        message = AuthHints.explain(h);
      } else if (ex instanceof ParameterException p) {
        code = ExitCodes.USAGE;
        message = usageMessage(p) + helpHint(p);
      } else {
        code = ExitCodes.FAILURE;
        message = "unexpected error: " + ex;
      }
      cli.err().println(PREFIX + oneLine(message));
      if (debug) {
        ex.printStackTrace(cli.err());
      }
      return code;
    });
    int code = cl.execute(args);
    cli.out().flush();
    cli.err().flush();
    return code;
  }

  private static String usageMessage(ParameterException ex) {
    if (ex instanceof UnmatchedArgumentException u && u.getCommandLine().getParent() == null
        && !u.getUnmatched().isEmpty() && !u.getUnmatched().get(0).startsWith("-")) {
      return "unknown command '" + u.getUnmatched().get(0) + "'; one of: "
          + String.join(", ", u.getCommandLine().getSubcommands().keySet());
    }
    String m = ex.getMessage() == null ? "" : ex.getMessage().strip();
    return m.startsWith("Error: ") ? m.substring("Error: ".length()) : m;
  }

  private static String helpHint(ParameterException ex) {
    CommandLine c = ex.getCommandLine();
    String name = c == null ? "hsmbridge" : c.getCommandSpec().qualifiedName();
    return " (see '" + name + " --help')";
  }

  static String oneLine(String s) {
    if (s == null || s.isBlank()) {
      return "error";
    }
    String t = s.strip().replaceAll("\\s*[\\r\\n]+\\s*", "; ");
    return t.length() > 500 ? t.substring(0, 500) + "..." : t;
  }
}
