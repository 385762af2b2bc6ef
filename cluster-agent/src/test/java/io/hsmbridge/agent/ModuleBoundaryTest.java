package io.hsmbridge.agent;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The module graph is protocol <- native-config <- cluster-agent <- bridge <- cli: the agent process
 * (start-up, membership, cluster key, Raft join, catch-up, heartbeats) must not reach up into the front
 * door or the CLI. Maven refuses a cycle, and the parent pom's enforcer rule bans the dependency; this test
 * guards the sources: no file of cluster-agent names a class of {@code io.hsmbridge.bridge} or
 * {@code io.hsmbridge.cli} (an import, a fully qualified name, or a class name in a string for reflection),
 * and every file lives under {@code io.hsmbridge.agent} (a package named {@code io.hsmbridge.bridge...}
 * inside this module would get round the import check).
 */
class ModuleBoundaryTest {
  private static final Pattern UPPER_MODULE = Pattern.compile("\\bio\\.hsmbridge\\.(bridge|cli)\\b");
  private static final Pattern PACKAGE = Pattern.compile("^\\s*package\\s+([\\w.]+)\\s*;", Pattern.MULTILINE);
  private static final Pattern COMMENTS = Pattern.compile("/\\*.*?\\*/|//[^\\n]*", Pattern.DOTALL);

  @Test
  void clusterAgentSourcesDoNotReferToTheBridgeOrTheCli() throws IOException {
    List<Path> files = mainSources();
    assertTrue(files.stream().anyMatch(f -> f.endsWith(Paths.get("io/hsmbridge/agent/node/AgentNode.java"))),
        "expected the agent process among the scanned sources: " + files.size() + " files under " + sourceRoot());
    List<String> offences = new ArrayList<>();
    for (Path f : files) {
      String text = Files.readString(f, StandardCharsets.UTF_8);
      String code = COMMENTS.matcher(text).replaceAll(" ");
      String[] lines = code.split("\n", -1);
      for (int i = 0; i < lines.length; i++) {
        Matcher m = UPPER_MODULE.matcher(lines[i]);
        if (m.find()) {
          offences.add(sourceRoot().relativize(f) + ": refers to io.hsmbridge." + m.group(1) + ": " + lines[i].trim());
        }
      }
      Matcher pkg = PACKAGE.matcher(code);
      if (!pkg.find() || !(pkg.group(1).equals("io.hsmbridge.agent") || pkg.group(1).startsWith("io.hsmbridge.agent."))) {
        offences.add(sourceRoot().relativize(f) + ": not in a package under io.hsmbridge.agent");
      }
    }
    assertTrue(offences.isEmpty(), "cluster-agent must not depend on bridge or cli (docs/architecture.md):\n  "
        + String.join("\n  ", offences));
  }

  private static Path sourceRoot() {
    return Paths.get(System.getProperty("basedir", ".")).resolve("src/main/java").toAbsolutePath().normalize();
  }

  private static List<Path> mainSources() throws IOException {
    try (Stream<Path> s = Files.walk(sourceRoot())) {
      return s.filter(p -> p.toString().endsWith(".java")).sorted().toList();
    }
  }
}
