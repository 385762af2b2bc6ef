package io.hsmbridge.cli;

import java.io.PrintStream;
import java.util.concurrent.Callable;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** Base of every leaf command: access to the {@link Cli} context and the global options. */
abstract class CliCommand implements Callable<Integer> {
  @Spec
  CommandSpec spec;

  protected HsmbridgeCommand root() {
    return (HsmbridgeCommand) spec.root().userObject();
  }

  protected Cli cli() {
    return root().cli();
  }

  protected PrintStream out() {
    return cli().out();
  }

  protected Home home() {
    return new Home(root().homeDir());
  }

  /** Where the session of {@code login} is kept ({@code --session-file}, {@code $HSMBRIDGE_SESSION_FILE}, HOME). */
  protected SessionFile sessionFile() {
    return SessionFile.locate(root().sessionFile, cli().env(), home());
  }

  /** A command-line error (exit code 2) detected after parsing. */
  protected ParameterException usage(String message) {
    return new ParameterException(spec.commandLine(), message);
  }

  @Override
  public final Integer call() throws Exception {
    return execute();
  }

  protected abstract int execute() throws Exception;
}
