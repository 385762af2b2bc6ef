package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NodeLayoutTest {
  @TempDir
  Path tmp;

  private static String mode(Path p) throws IOException {
    return PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
  }

  @Test
  void createsTheDocumentedLayout() throws IOException {
    Home h = new Home(tmp.resolve("home"));
    Path lib = Path.of("/usr/lib/softhsm/libsofthsm2.so");
    NodeLayout.prepare(h, 7701, lib);

    String d = h.dir().toString();
    assertEquals("directories.tokendir = " + d + "/hsm1/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
        Files.readString(h.softhsmConf()));
    assertEquals("hsm.id=hsm1\n"
        + "pkcs11.library=/usr/lib/softhsm/libsofthsm2.so\n"
        + "token.label=hsmbridge-hsm1\n"
        + "token.initialize=true\n"
        + "pin.user.file=" + d + "/hsm1/user.pin\n"
        + "pin.so.file=" + d + "/hsm1/so.pin\n"
        + "bridge.tcp.host=127.0.0.1\n"
        + "bridge.tcp.port=7701\n"
        + "state.dir=" + d + "/hsm1\n", Files.readString(h.nodeProperties()));

    assertEquals("rwx------", mode(h.dir()));
    assertEquals("rwx------", mode(h.hsmDir()));
    assertEquals("rwx------", mode(h.tokensDir()));
    for (Path pin : new Path[] {h.soPin(), h.userPin()}) {
      assertEquals("rw-------", mode(pin));
      assertTrue(Files.readString(pin).matches("[A-Za-z0-9]{24}"), "24 alphanumeric characters");
    }
    assertTrue(!Files.readString(h.soPin()).equals(Files.readString(h.userPin())), "independent PINs");
  }

  @Test
  void pinsAreCreatedOnceAndThePortFollowsEachStart() throws IOException {
    Home h = new Home(tmp);
    Path lib = Path.of("/lib.so");
    NodeLayout.prepare(h, 7701, lib);
    String so = Files.readString(h.soPin());
    String user = Files.readString(h.userPin());
    Files.setPosixFilePermissions(h.userPin(), PosixFilePermissions.fromString("rw-r--r--"));
    NodeLayout.prepare(h, 0, lib);
    assertEquals(so, Files.readString(h.soPin()));
    assertEquals(user, Files.readString(h.userPin()));
    assertEquals("rw-------", mode(h.userPin()), "a loosened PIN file is tightened again");
    assertTrue(Files.readString(h.nodeProperties()).contains("\nbridge.tcp.port=0\n"));
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
