package io.hsmbridge.cli;

import io.hsmbridge.agent.AgentConfig;
import io.hsmbridge.agent.membership.ClusterCa;
import io.hsmbridge.agent.membership.ClusterConfig;
import io.hsmbridge.pkcs11.HsmException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code cluster member-cert NAME --out DIR}: an application certificate of the local cluster's CA for a Vert.x
 * application that joins the cluster's event bus (docs/java.md, "On the cluster's event bus"), and the
 * properties file it joins with ({@code ApplicationMember.join}).
 */
@Command(name = "member-cert", description = "Issue a member certificate (kind application) of the local cluster's CA (or --ca-dir's)"
    + " for a Vert.x application that joins the cluster's event bus, and write DIR/NAME.properties to join with."
    + " The holder may send requests to the front doors, but consume none of hsmbridge's addresses (docs/security.md).")
final class MemberCertCommand extends CliCommand {
  @Parameters(index = "0", paramLabel = "NAME", description = "The member's name (letters, digits, '.', '-', '_').")
  String name;

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "A new or empty directory for the files.")
  Path out;

  @Option(names = "--host", paramLabel = "ADDR", description = "The address the application binds and announces"
      + " (default: 127.0.0.1, a local cluster's).")
  String host = NodeProperties.HOST;

  @Option(names = "--member-port", paramLabel = "N", description = "Its membership port (default: a free one now).")
  Integer memberPort;

  @Option(names = "--ca-dir", paramLabel = "DIR", description = "Another cluster's CA directory (a container kit's"
      + " KIT/ca, or a cluster across machines); then --cluster-name and --members say what to join. Default: the"
      + " local cluster's, with its name and members.")
  Path caDir;

  @Option(names = "--cluster-name", paramLabel = "NAME", description = "With --ca-dir: the cluster's name (cluster.name).")
  String clusterName;

  @Option(names = "--members", paramLabel = "HOST:PORT,...", description = "With --ca-dir: membership addresses of"
      + " the cluster's members (cluster.members).")
  String members;

  @Override
  protected int execute() {
    Path caDir;
    Properties node;
    if (this.caDir != null) {
      if (clusterName == null || members == null) {
        throw new CliException("--ca-dir needs --cluster-name and --members (the local cluster's are not the CA's)");
      }
      try {
        ClusterConfig.checkName(clusterName);
      } catch (HsmException e) {
        throw new CliException("--cluster-name: " + e.getMessage());
      }
      for (String m : members.split(",", -1)) {
        if (!m.trim().matches("(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}")) {
          throw new CliException("--members: '" + m + "' is not host:port (IPv6 as [addr]:port)");
        }
      }
      caDir = this.caDir;
      node = new Properties();
      node.setProperty("cluster.name", clusterName);
      node.setProperty("cluster.members", members);
    } else if (clusterName != null || members != null) {
      throw new CliException("--cluster-name and --members go with --ca-dir; the local cluster's own are used without");
    } else {
      Home home = home();
      caDir = home.caDir();
      if (!Files.exists(caDir.resolve(ClusterCa.CA_CERT_FILE))) {
        throw new CliException("no cluster CA in " + caDir + ": create the cluster first (./hsmbridge up)");
      }
      node = nodeProperties(home);
    }
    if (!Files.exists(caDir.resolve(ClusterCa.CA_KEY_FILE))) {
      throw new CliException("no cluster CA key in " + caDir + ": issue certificates on the machine that created the cluster");
    }
    try {
      if (Files.exists(out) && (!Files.isDirectory(out) || !isEmpty(out))) {
        throw new CliException(out + " exists and is not an empty directory: certificates are never overwritten");
      }
      NodeLayout.privateDir(out);
      ClusterCa.MemberFiles files = ClusterCa.load(caDir).issueMember(name, ClusterCa.MemberKind.APPLICATION,
          List.of(host), out);
      int port = memberPort != null ? memberPort : PortPicker.pick(1, Set.of()).get(0);
      String props = "# Joins cluster '" + node.getProperty("cluster.name") + "' as the member " + name
          + " (docs/java.md, \"On the cluster's event bus\")\n"
          + "cluster.name=" + node.getProperty("cluster.name") + "\n"
          + "cluster.host=" + host + "\n"
          + "cluster.memberPort=" + port + "\n"
          + "cluster.members=" + node.getProperty("cluster.members") + "\n"
          + "cluster.tls.cert=" + files.certificate().toAbsolutePath() + "\n"
          + "cluster.tls.key=" + files.key().toAbsolutePath() + "\n"
          + "cluster.tls.ca=" + files.ca().toAbsolutePath() + "\n";
      Path propsFile = out.resolve(name + ".properties");
      PrivateFiles.create(propsFile, props.getBytes(StandardCharsets.UTF_8));
      out().println("member certificate " + files.certificate() + " (kind application, key " + files.key() + ")");
      out().println("join with " + propsFile + " (ApplicationMember.join); membership port " + port);
      return ExitCodes.OK;
    } catch (HsmException e) {
      throw new CliException(e.getMessage());
    } catch (IOException e) {
      throw new CliException("cannot write to " + out + ": " + e.getMessage());
    }
  }

  private static boolean isEmpty(Path dir) throws IOException {
    try (java.util.stream.Stream<Path> entries = Files.list(dir)) {
      return entries.findAny().isEmpty();
    }
  }

  /** The first HSM's node.properties: the cluster's name and its members' membership addresses. */
  private static Properties nodeProperties(Home home) {
    List<String> hsms = home.hsmDirs();
    if (hsms.isEmpty()) {
      throw new CliException("no HSM in " + home.dir() + ": create the cluster first (./hsmbridge up)");
    }
    Path file = home.dir().resolve(hsms.get(0)).resolve("node.properties");
    Properties p;
    try {
      p = AgentConfig.readProperties(file);
    } catch (HsmException e) {
      throw new CliException(e.getMessage());
    }
    if (p.getProperty("cluster.members") == null) {
      throw new CliException(file + " has no cluster.members");
    }
    return p;
  }
}
