package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The standalone node's files (demo, bench) and the token files every agent gets. */
class NodeLayoutTest {
  @TempDir
  Path tmp;

  static String mode(Path p) throws IOException {
    return PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
  }

  @Test
  void createsTheStandaloneLayout() throws IOException {
    Home h = new Home(tmp.resolve("home"));
    Path lib = Path.of("/usr/lib/softhsm/libsofthsm2.so");
    NodeDir n = NodeLayout.prepareStandalone(h, 7701, lib);

    String d = h.dir().toString();
    assertEquals(h.dir().resolve("hsm1"), n.dir());
    assertEquals("directories.tokendir = " + d + "/hsm1/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
        Files.readString(n.softhsmConf()));
    assertEquals("hsm.id=hsm1\n"
        + "pkcs11.library=/usr/lib/softhsm/libsofthsm2.so\n"
        + "token.label=hsmbridge-hsm1\n"
        + "token.initialize=true\n"
        + "pin.user.file=" + d + "/hsm1/user.pin\n"
        + "pin.so.file=" + d + "/hsm1/so.pin\n"
        + "bridge.tcp.host=127.0.0.1\n"
        + "bridge.tcp.port=7701\n"
        + "bridge.tls=false\n"
        + "state.dir=" + d + "/hsm1\n", Files.readString(n.nodeProperties()));

    assertEquals("rwx------", mode(h.dir()));
    assertEquals("rwx------", mode(n.dir()));
    assertEquals("rwx------", mode(n.tokensDir()));
    for (Path pin : new Path[] {n.soPin(), n.userPin()}) {
      assertEquals("rw-------", mode(pin));
      assertTrue(Files.readString(pin).matches("[A-Za-z0-9]{24}"), "24 alphanumeric characters");
    }
    assertNotEquals(Files.readString(n.soPin()), Files.readString(n.userPin()), "independent PINs");
  }

  @Test
  void pinsAreCreatedOnceAndThePortFollowsEachStart() throws IOException {
    Home h = new Home(tmp);
    Path lib = Path.of("/lib.so");
    NodeDir n = NodeLayout.prepareStandalone(h, 7701, lib);
    String so = Files.readString(n.soPin());
    String user = Files.readString(n.userPin());
    Files.setPosixFilePermissions(n.userPin(), PosixFilePermissions.fromString("rw-r--r--"));
    NodeLayout.prepareStandalone(h, 0, lib);
    assertEquals(so, Files.readString(n.soPin()));
    assertEquals(user, Files.readString(n.userPin()));
    assertEquals("rw-------", mode(n.userPin()), "a loosened PIN file is tightened again");
    assertTrue(Files.readString(n.nodeProperties()).contains("\nbridge.tcp.port=0\n"));
  }

  @Test
  void libraryOverrideMustExist() throws IOException {
    CliException e = assertThrows(CliException.class,
        () -> NodeLayout.findLibrary(Map.of(NodeLayout.LIBRARY_ENV, tmp.resolve("nope.so").toString())));
    assertTrue(e.getMessage().contains("nope.so"));
    Path lib = Files.createFile(tmp.resolve("lib.so"));
    assertEquals(lib, NodeLayout.findLibrary(Map.of(NodeLayout.LIBRARY_ENV, lib.toString())));
  }
}
