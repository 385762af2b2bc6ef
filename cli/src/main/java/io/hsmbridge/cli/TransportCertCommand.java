package io.hsmbridge.cli;

import io.hsmbridge.agent.backup.BackupOperations;
import io.hsmbridge.agent.membership.ClusterCa;
import io.hsmbridge.agent.membership.TransportCertificates;
import io.hsmbridge.pkcs11.HsmException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code cluster transport-cert}: the cluster CA certifies a joining HSM's transport key, the only key the
 * cluster key is ever wrapped to (docs/cluster-transport.md, "Joining: the transport key certificate").
 * {@code ./hsmbridge up} and {@code hsm add} do it by themselves for a local cluster, and
 * {@code softhsm-docker/cluster up} for a cluster of containers; this is the same step by hand, for an HSM on
 * another machine.
 */
@Command(name = "transport-cert", description = {
    "Certify a joining HSM's transport key with the cluster CA: the agent wrote REQUEST (transport-request.pem in its"
        + " state directory) from its own token and waits for the certificate (transport-certificate.pem beside it).",
    "Sign only a request you copied from that HSM's host yourself: the cluster key is wrapped to the certified key."})
final class TransportCertCommand extends CliCommand {
  @Option(names = "--hsm-id", required = true, paramLabel = "ID", description = "The joining HSM's id (hsm.id).")
  String hsmId;

  @Option(names = "--request", required = true, paramLabel = "FILE", description = "The agent's transport-request.pem.")
  Path request;

  @Option(names = "--out", required = true, paramLabel = "FILE", description = "Where to write the certificate"
      + " (the agent's transport-certificate.pem; replaced atomically).")
  Path out;

  @Option(names = "--cluster-key-check", required = true, paramLabel = "HEX", description = "The cluster key's check"
      + " value: the file cluster-key-check in the state directory of an HSM that holds the key (its log prints it"
      + " too). The joiner installs no other key, whoever answers it.")
  String clusterKeyCheck;

  @Option(names = "--ca-dir", paramLabel = "DIR", description = "The cluster CA's directory (default: the local"
      + " cluster's, HOME/ca; a container kit's is KIT/ca).")
  Path caDir;

  @Override
  protected int execute() {
    Path dir = caDir != null ? caDir : home().caDir();
    if (!Files.exists(dir.resolve(ClusterCa.CA_KEY_FILE))) {
      throw new CliException("no cluster CA key in " + dir + " (--ca-dir): sign on the machine that created the cluster");
    }
    try {
      X509Certificate cert = TransportCertificates.sign(ClusterCa.load(dir), hsmId, request,
          TransportCertificates.parseCheckValue(clusterKeyCheck), out);
      out().println("certified the transport key of " + hsmId + " (SHA-256 " + BackupOperations.fingerprint(cert.getPublicKey().getEncoded())
          + ") in " + out);
      return ExitCodes.OK;
    } catch (HsmException e) {
      throw new CliException(e.getMessage());
    } catch (IOException e) {
      throw new CliException("cannot write " + out + ": " + e.getMessage());
    }
  }
}
