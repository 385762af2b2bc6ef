package io.hsmbridge.cli;

import java.nio.file.Path;

/**
 * The layout of a local cluster's data directory. Only {@code hsm1} for now: one node holding one
 * SoftHSM2 token.
 */
record Home(Path dir) {
  static final String HSM_ID = "hsm1";

  Path softhsmConf() {
    return dir.resolve("softhsm2.conf");
  }

  Path hsmDir() {
    return dir.resolve(HSM_ID);
  }

  Path tokensDir() {
    return hsmDir().resolve("tokens");
  }

  Path soPin() {
    return hsmDir().resolve("so.pin");
  }

  Path userPin() {
    return hsmDir().resolve("user.pin");
  }

  Path nodeProperties() {
    return hsmDir().resolve("node.properties");
  }

  Path nodeLog() {
    return hsmDir().resolve("node.log");
  }

  Path nodePid() {
    return hsmDir().resolve("node.pid");
  }

  Path endpointJson() {
    return hsmDir().resolve("endpoint.json");
  }
}
