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

/** The token files every agent gets, and the token-only properties of bench's direct baseline. */
class NodeLayoutTest {
  @TempDir
  Path tmp;

  static String mode(Path p) throws IOException {
    return PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
  }

  @Test
  void createsTheDirectTokenLayout() throws IOException {
    Home h = new Home(tmp.resolve("home"));
    Path lib = Path.of("/usr/lib/softhsm/libsofthsm2.so");
    NodeDir n = NodeLayout.prepareDirectToken(h, lib);

    String d = h.dir().toString();
    assertEquals(h.dir().resolve("hsm1"), n.dir());
    assertEquals("directories.tokendir = " + d + "/hsm1/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
        Files.readString(n.softhsmConf()));
    assertEquals("hsm.id=hsm1\n"
        + "pkcs11.library=/usr/lib/softhsm/libsofthsm2.so\n"
        + "token.label=hsmbridge-hsm1\n"
        + "token.initialize=true\n"
        + "pin.user.file=" + d + "/hsm1/user.pin\n"
        + "pin.so.file=" + d + "/hsm1/so.pin\n", Files.readString(n.nodeProperties()),
        "the token keys only: no node starts on it, so no role, endpoint or state directory");

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
  void pinsAreCreatedOnceAndTheLibraryFollowsEachPreparation() throws IOException {
    Home h = new Home(tmp);
    Path lib = Path.of("/lib.so");
    NodeDir n = NodeLayout.prepareDirectToken(h, lib);
    String so = Files.readString(n.soPin());
    String user = Files.readString(n.userPin());
    Files.setPosixFilePermissions(n.userPin(), PosixFilePermissions.fromString("rw-r--r--"));
    NodeLayout.prepareDirectToken(h, Path.of("/other/lib.so"));
    assertEquals(so, Files.readString(n.soPin()));
    assertEquals(user, Files.readString(n.userPin()));
    assertEquals("rw-------", mode(n.userPin()), "a loosened PIN file is tightened again");
    assertTrue(Files.readString(n.nodeProperties()).contains("\npkcs11.library=/other/lib.so\n"));
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
